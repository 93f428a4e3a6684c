/**
 * The chat room: who is in it, and one place that decides who gets what.
 *
 * As in tokio's chat example, the room keeps its members by id, and a
 * broadcast goes to everyone but the sender. A message is encoded once per
 * framing its receivers speak ({@linkcode Outgoing}), and the same bytes
 * are queued in each member's outbox, which never blocks the room; a
 * member whose outbox refuses is left to its own session to remove.
 *
 * The wire text of the chat (as the README shows it): a message is
 * `NAME: TEXT`, a server notice starts with `* `.
 *
 * @example
 * ```ts
 * import { ChatRoom, chatMessage, Outgoing } from "./chat_room.ts";
 * import { FRAMINGS } from "./framing.ts";
 *
 * const got: Uint8Array[] = [];
 * const room = new ChatRoom();
 * const sink = { send: (bytes: Uint8Array) => got.push(bytes) > 0 };
 * const outbox = { send: sink.send, reply: sink.send };
 * room.join({ id: 1, name: "alice", framing: FRAMINGS.line, outbox });
 * room.join({ id: 2, name: "bob", framing: FRAMINGS.line, outbox });
 * room.broadcast(Outgoing.of([chatMessage("alice", "hi")]), 1); // bob gets "alice: hi\n"
 * ```
 *
 * @module
 */

import { encodeFrames, encodeLine } from "./encoders.ts";
import type { Framing, FramingName } from "./framing.ts";
import { decodeLines } from "./sanitize.ts";

/** Where a member's bytes go; an `Outbox` fits. */
export interface Sink {
  /** Queues bytes that other members may get too (a broadcast's); `false` when the member can take no more. */
  send(bytes: Uint8Array): boolean;
  /** Queues bytes made for this member alone (an answer); `false` when the member can take no more. */
  reply(bytes: Uint8Array): boolean;
}

/** One client in the room. */
export interface Member {
  /** Unique within the server. */
  readonly id: number;
  /** What others see before the member's messages. */
  name: string;
  /** How bytes for this member are framed. */
  readonly framing: Framing;
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
 * Lines to send, encoded at most once per framing, however many members
 * get them. Lines relayed from another worker arrive encoded already.
 *
 * @example
 * ```ts
 * import { Outgoing } from "./chat_room.ts";
 * import { FRAMINGS } from "./framing.ts";
 * const out = Outgoing.of(["* hello", "bob: hi"]);
 * new TextDecoder().decode(out.bytes(FRAMINGS.line)); // "* hello\nbob: hi\n"
 * out.count; // 2
 * ```
 */
export class Outgoing {
  readonly #texts: readonly string[] | null;
  readonly #encoded = new Map<FramingName, Uint8Array>();

  private constructor(texts: readonly string[] | null) {
    this.#texts = texts;
  }

  /** Lines of text, each one message. */
  static of(texts: readonly string[]): Outgoing {
    return new Outgoing(texts);
  }

  /** Messages already encoded in `framing` (the only one a relay speaks: line). */
  static encoded(framing: FramingName, bytes: Uint8Array): Outgoing {
    const out = new Outgoing(null);
    out.#encoded.set(framing, bytes);
    return out;
  }

  /** How many messages (for lines encoded elsewhere: unknown, 0). */
  get count(): number {
    return this.#texts?.length ?? 0;
  }

  /** The messages in `framing`, encoded on first use. */
  bytes(framing: Framing): Uint8Array {
    let bytes = this.#encoded.get(framing.name);
    if (bytes === undefined) {
      const texts = this.#texts ?? decodeLines(this.#encoded.get("line")!);
      bytes = framing.name === "line"
        ? encodeLine(texts.join("\n"))
        : encodeFrames(texts);
      this.#encoded.set(framing.name, bytes);
    }
    return bytes;
  }
}

/**
 * The members of one room, and broadcast.
 *
 * @example
 * ```ts
 * import { ChatRoom, Outgoing } from "./chat_room.ts";
 * import { FRAMINGS } from "./framing.ts";
 * const got: string[] = [];
 * const member = (id: number, name: string) => ({
 *   id, name, framing: FRAMINGS.line,
 *   outbox: { send: () => got.push(name) > 0, reply: () => true },
 * });
 * const room = new ChatRoom();
 * room.join(member(1, "a"));
 * room.join(member(2, "b"));
 * room.broadcast(Outgoing.of(["* hi"]), 1);
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

  /**
   * Queues `message` for every member but `exceptId`; returns how many got
   * it. Members whose outbox refuses are left to their own session to
   * remove (their outbox closed their connection).
   */
  broadcast(message: Outgoing, exceptId?: number): number {
    return this.sendEach(this.#members.values(), message, exceptId);
  }

  /** Queues `message` for each of `members` but `exceptId`; returns how many got it. */
  protected sendEach(
    members: Iterable<M>,
    message: Outgoing,
    exceptId?: number,
  ): number {
    let delivered = 0;
    for (const member of members) {
      if (
        member.id !== exceptId &&
        member.outbox.send(message.bytes(member.framing))
      ) delivered++;
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
  if (!isCommand(text)) {
    const escaped = text.startsWith("//");
    return { kind: "message", text: escaped ? text.slice(1) : text };
  }
  const space = text.indexOf(" ");
  return space === -1 ? { kind: "command", name: text, arg: "" } : {
    kind: "command",
    name: text.slice(0, space),
    arg: text.slice(space + 1).trim(),
  };
}

/**
 * Whether `text` is a command: it starts with `/`, but not `//` (a message
 * that starts with `/`). No object made: for counting on a hot path.
 *
 * @example
 * ```ts
 * import { isCommand } from "./chat_room.ts";
 * isCommand("/who"); // true
 * isCommand("//shrug"); // false
 * ```
 */
export function isCommand(text: string): boolean {
  return text.charCodeAt(0) === SLASH && text.charCodeAt(1) !== SLASH;
}

const SLASH = 0x2f;

/**
 * Whether `text` is `/quit`, with or without a last word: the command
 * {@linkcode parseChatInput} names `/quit`. No object made.
 *
 * @example
 * ```ts
 * import { isQuit } from "./chat_room.ts";
 * isQuit("/quit see you"); // true
 * isQuit("/quitter"); // false
 * ```
 */
export function isQuit(text: string): boolean {
  return text.startsWith("/quit") && (text.length === 5 || text[5] === " ");
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
