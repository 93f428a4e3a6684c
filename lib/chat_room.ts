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
 * import { encodeLine } from "./framing.ts";
 *
 * const room = new ChatRoom();
 * room.join({ id: 1, name: "alice", outbox: aliceOutbox });
 * room.join({ id: 2, name: "bob", outbox: bobOutbox });
 * room.broadcast(encodeLine(chatMessage("alice", "hi")), 1); // bob gets "alice: hi"
 * ```
 *
 * @module
 */

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
