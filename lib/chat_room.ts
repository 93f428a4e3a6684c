/**
 * The chat room: who is in it, and one place that decides who gets what.
 *
 * As in tokio's chat example, the room keeps its members by id, and a
 * broadcast goes to everyone but the sender. It deals in encoded bytes: a
 * message is encoded once (line or length framing) and the same bytes are
 * queued in each member's {@linkcode Outbox}, which never blocks the room;
 * a member whose outbox overflowed or failed is dropped.
 *
 * The wire text of the chat (see PROTOCOLS.md): a message is
 * `NAME: TEXT`, a server notice starts with `* `.
 *
 * @example
 * ```ts ignore
 * import { ChatRoom, chatMessage } from "./chat_room.ts";
 * import { encodeLine } from "./encoders.ts";
 *
 * const room = new ChatRoom();
 * room.join({ id: 1, name: "alice", outbox: aliceOutbox });
 * room.join({ id: 2, name: "bob", outbox: bobOutbox });
 * room.broadcast(encodeLine(chatMessage("alice", "hi")), 1); // bob gets "alice: hi"
 * ```
 *
 * @module
 */

import { encodeFrames, encodeLine } from "./encoders.ts";
import { type Framing } from "./framing.ts";

/** Where a member's bytes go; an {@linkcode Outbox} fits. */
export interface Sink {
  /** Queues bytes; `false` when the member can take no more. */
  send(bytes: Uint8Array): boolean;
}

/** One client in the room. */
export interface Member {
  /** Unique within the server. */
  readonly id: number;
  /** What others see before the member's messages. */
  name: string;
  /** Where bytes for this member go. */
  readonly outbox: Sink;
}

/**
 * `NAME: TEXT`, a chat message as others see it.
 *
 * @example
 * ```ts
 * import { chatMessage } from "./chat_room.ts";
 * chatMessage("alice", "hello"); // "alice: hello"
 * ```
 */
export function chatMessage(name: string, text: string): string {
  return `${name}: ${text}`;
}

/**
 * `* TEXT`, a notice from the server.
 *
 * @example
 * ```ts
 * import { notice } from "./chat_room.ts";
 * notice("alice has joined"); // "* alice has joined"
 * ```
 */
export function notice(text: string): string {
  return `* ${text}`;
}

/**
 * The members of one room, and broadcast.
 *
 * @example
 * ```ts
 * import { ChatRoom } from "./chat_room.ts";
 * const got: string[] = [];
 * const sink = (name: string) => ({ send: (b: Uint8Array) => got.push(name) > 0 });
 * const room = new ChatRoom();
 * room.join({ id: 1, name: "a", outbox: sink("a") });
 * room.join({ id: 2, name: "b", outbox: sink("b") });
 * room.broadcast(new Uint8Array(1), 1);
 * got; // ["b"]
 * ```
 */
export class ChatRoom<M extends Member = Member> {
  readonly #members = new Map<number, M>();

  /** How many members. */
  get size(): number {
    return this.#members.size;
  }

  /** Adds a member. */
  join(member: M): void {
    this.#members.set(member.id, member);
  }

  /** Removes a member; returns it, if it was there. */
  leave(id: number): M | undefined {
    const member = this.#members.get(id);
    this.#members.delete(id);
    return member;
  }

  /** The member with this id. */
  get(id: number): M | undefined {
    return this.#members.get(id);
  }

  /** Every member, in order of joining. */
  members(): IterableIterator<M> {
    return this.#members.values();
  }

  /** The member called `name` (case-insensitive), if any. */
  byName(name: string): M | undefined {
    const wanted = name.toLowerCase();
    for (const member of this.#members.values()) {
      if (member.name.toLowerCase() === wanted) return member;
    }
    return undefined;
  }

  /**
   * Queues `bytes` for every member but `exceptId`; returns how many got
   * them. Members whose outbox refuses are left to their own session to
   * remove (their outbox closed their connection).
   */
  broadcast(bytes: Uint8Array, exceptId?: number): number {
    let delivered = 0;
    for (const member of this.#members.values()) {
      if (member.id !== exceptId && member.outbox.send(bytes)) delivered++;
    }
    return delivered;
  }
}

/** What a chat line is: a message to relay, or a command for the server. */
export type ChatInput =
  | { kind: "message"; text: string }
  | { kind: "command"; name: string; arg: string };

/**
 * Tells messages from commands: `/name arg` is a command; `//text` is the
 * message `/text` (the escape for text that starts with `/`).
 *
 * @example
 * ```ts
 * import { parseChatInput } from "./chat_room.ts";
 * parseChatInput("/nick alice"); // { kind: "command", name: "/nick", arg: "alice" }
 * parseChatInput("//shrug"); // { kind: "message", text: "/shrug" }
 * ```
 */
export function parseChatInput(text: string): ChatInput {
  if (!text.startsWith("/")) return { kind: "message", text };
  if (text.startsWith("//")) return { kind: "message", text: text.slice(1) };
  const space = text.indexOf(" ");
  return space === -1 ? { kind: "command", name: text, arg: "" } : {
    kind: "command",
    name: text.slice(0, space),
    arg: text.slice(space + 1).trim(),
  };
}

/**
 * The `/help` text: one notice per command, aligned.
 *
 * @example
 * ```ts
 * import { helpLines } from "./chat_room.ts";
 * helpLines([["/who", "who is here"]]); // ["* commands:", "*   /who  who is here"]
 * ```
 */
export function helpLines(
  commands: readonly (readonly [string, string])[],
): string[] {
  const width = Math.max(...commands.map(([usage]) => usage.length)) + 2;
  return [
    notice("commands:"),
    ...commands.map(([usage, what]) =>
      notice(`  ${usage.padEnd(width)}${what}`)
    ),
  ];
}

/**
 * The chat messages of one read, collected to go out as one block: one
 * encode and one queueing per receiver instead of one per message.
 *
 * @example
 * ```ts
 * import { MessageBatch } from "./chat_room.ts";
 * import { FRAMINGS } from "./framing.ts";
 * const batch = new MessageBatch(FRAMINGS.line);
 * batch.add("alice: hi");
 * batch.add("alice: there");
 * new TextDecoder().decode(batch.take()!); // "alice: hi\nalice: there\n"
 * ```
 */
export class MessageBatch {
  readonly #framing: Framing;
  #texts: string[] = [];

  /** A batch encoded with `framing`. */
  constructor(framing: Framing) {
    this.#framing = framing;
  }

  /** Messages collected so far. */
  get size(): number {
    return this.#texts.length;
  }

  /** Adds one message. */
  add(text: string): void {
    this.#texts.push(text);
  }

  /** The encoded block, emptying the batch; `null` if it was empty. */
  take(): Uint8Array | null {
    const texts = this.#texts;
    if (texts.length === 0) return null;
    this.#texts = [];
    if (this.#framing.name === "line") return encodeLine(texts.join("\n"));
    return encodeFrames(texts);
  }
}
