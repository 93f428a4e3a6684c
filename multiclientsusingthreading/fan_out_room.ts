/**
 * A worker's room in portable mode, where the main thread holds the
 * connections of the clients it forwards: a broadcast to them is one
 * message to the main thread, which writes it to everyone in the chat on
 * every worker, instead of one relay to each other worker and one message
 * back from each. Members whose socket this worker holds itself (browsers,
 * on worker 1) are served here, as in any room.
 *
 * The main thread learns who is in the chat from this room: `entered`
 * once a client joined it (after its welcome, so no broadcast overtakes
 * that), `exited` once it left (before its leave notice). Each worker's
 * messages arrive in the order it posted them.
 *
 * @example
 * ```ts
 * import { FanOutRoom } from "./fan_out_room.ts";
 * import { Outgoing } from "../lib/chat_room.ts";
 * import { FRAMINGS } from "../lib/framing.ts";
 * import type { FromWorker } from "./messages.ts";
 *
 * const posted: FromWorker[] = [];
 * const room = new FanOutRoom({ post: (m) => posted.push(m), forwarded: () => true });
 * room.join({ id: 7, name: "ada", framing: FRAMINGS.line, outbox: { send: () => true, reply: () => true } });
 * room.broadcast(Outgoing.of(["ada: hi"]), 7);
 * posted.map((m) => m.type); // ["entered", "broadcast"]
 * ```
 *
 * @module
 */

import { ChatRoom, type Member, type Outgoing } from "../lib/chat_room.ts";
import { FRAMINGS } from "../lib/framing.ts";
import type { FromWorker } from "./messages.ts";

/** Options of {@linkcode FanOutRoom}. */
export interface FanOutRoomOptions<M extends Member> {
  /** Posts to the main thread, after what this worker sent before. */
  post(message: FromWorker): void;
  /** Whether the main thread holds `member`'s connection. */
  forwarded(member: M): boolean;
}

/** The room of a portable worker; see the module's notes. */
export class FanOutRoom<M extends Member = Member> extends ChatRoom<M> {
  readonly #options: FanOutRoomOptions<M>;
  /** The members whose socket this worker holds. */
  readonly #here = new Map<number, M>();

  /** A room whose forwarded members' broadcasts the main thread fans out. */
  constructor(options: FanOutRoomOptions<M>) {
    super();
    this.#options = options;
  }

  /** Adds a member; the main thread is told if it holds its connection. */
  override join(member: M): void {
    super.join(member);
    if (this.#options.forwarded(member)) {
      this.#options.post({ type: "entered", id: member.id });
    } else this.#here.set(member.id, member);
  }

  /** Removes a member; the main thread is told if it holds its connection. */
  override leave(id: number): M | undefined {
    const member = super.leave(id);
    if (member && !this.#here.delete(id)) {
      this.#options.post({ type: "exited", id });
    }
    return member;
  }

  /**
   * `message` to everyone in the chat but `exceptId`: forwarded clients on
   * every worker through the main thread, the rest of this room here.
   * Returns how many members here got it (the forwarded ones are not counted).
   */
  override broadcast(message: Outgoing, exceptId?: number): number {
    this.#options.post({
      type: "broadcast",
      bytes: message.bytes(FRAMINGS.line),
      except: exceptId,
    });
    return this.here(message, exceptId);
  }

  /**
   * `message` to the members here whose socket this worker holds: for what
   * another worker relayed, whose forwarded clients the main thread served.
   */
  here(message: Outgoing, exceptId?: number): number {
    return this.sendEach(this.#here.values(), message, exceptId);
  }
}
