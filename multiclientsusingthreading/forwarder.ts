/**
 * Portable forwarding (macOS, Windows, or `--portable`): the main thread
 * accepts every connection and forwards its bytes to a worker, and the
 * worker's replies back, since a `Deno.Conn` cannot be sent to a worker.
 *
 * Each connection may have a window of bytes read and not yet handled
 * (acknowledged) by its worker; past it, the main thread reads no more from
 * that client, so a fast sender cannot pile bytes up in a busy worker.
 * Within the window the main thread keeps reading while the worker works:
 * one post per connection is out at a time, and what is read meanwhile is
 * held and goes as one post when the worker acknowledges the last (fewer,
 * larger batches: fewer messages between threads, fewer writes to clients).
 * All connections together have at most one window posted and not yet
 * acknowledged (a command's bytes leave it once the worker has decoded
 * them: answered to their sender alone, they relay nothing), and nothing
 * more is posted while an outbox is congested:
 * what is posted is relayed before pacing can see it, so however many
 * clients send at once, the relays of their bytes stay within half an
 * outbox.
 * Replies go out through each connection's bounded outbox, paced like the
 * other servers (see `lib/outbox.ts`). A broadcast comes as one message,
 * whichever worker sent it, and goes to every client in the chat but the
 * sender: the workers say who entered and who left (`fan_out_room.ts`).
 * It counts as handled (`mesh.ts`) once no outbox is congested, which holds
 * back browsers, whose sockets a worker reads itself.
 *
 * @example
 * ```ts ignore
 * import { Forwarder } from "./forwarder.ts";
 * const forwarder = new Forwarder(pool, { outboxLimit: 1 << 20, stats });
 * pool.forwarding = forwarder;
 * await forwarder.serve(listener);
 * ```
 *
 * @module
 */

import { notice } from "../lib/chat_room.ts";
import { cooperate } from "../lib/coop.ts";
import { encodeLine } from "../lib/encoders.ts";
import { readFailure } from "../lib/errors.ts";
import {
  FIRST_READ_BUFFER_SIZE,
  firstReadBuffer,
  freeBuffer,
  grownBuffer,
  newBuffer,
} from "../lib/io.ts";
import { LeaveCollector } from "../lib/leave_collector.ts";
import { accepted, addressOf } from "../lib/net.ts";
import { Outbox, Pacer, repliesLimit } from "../lib/outbox.ts";
import type { PendingLimit } from "../lib/pending_limit.ts";
import type { FromWorker, ToWorker } from "./messages.ts";
import { mainHandled } from "./mesh.ts";
import type { ForwardingHandler } from "./pool.ts";
import type { SharedStats } from "./shared_stats.ts";
import type { WireLog } from "../lib/wire.ts";
import { wireAccepted } from "../lib/wire_conn.ts";
import { acceptHandshake, isTls } from "../lib/tls.ts";
import { log } from "../lib/log.ts";

/** The workers, as the forwarder sees them. */
export interface Workers {
  /** A live worker for a new connection. */
  pick(): number;
  /** Posts to worker `index`. */
  post(index: number, message: ToWorker, transfer?: Transferable[]): void;
}

/** Options of {@linkcode Forwarder}. */
export interface ForwarderOptions {
  /** Bound on bytes queued for one client; the window derives from it. */
  outboxLimit: number;
  /** Bytes of replies unread by all clients together (default 32 MiB; see `Outbox`). */
  maxReplies?: number;
  /** Where client ids come from (shared with the workers). */
  stats: SharedStats;
  /** `--wire`: show every socket call and its bytes. */
  wire?: WireLog;
  /**
   * The workers' backlog counters (`mesh.ts`): this thread counts each
   * broadcast handled once no outbox is congested, so that a worker holds
   * back its browsers' messages while a client here reads slowly.
   */
  backlog?: SharedArrayBuffer;
}

/** A line's end: a short read without one is a stall mid-line. */
const LF = 0x0a;

/**
 * Connections handed to a worker that has not answered yet. Past this,
 * accept() waits: a crowd connecting faster than the workers welcome it
 * waits in the kernel's queue, not among this thread's sockets, where every
 * client's reads would wait behind it (a connect-and-reset storm held an
 * honest client's lines up for seconds with 64, well under half a second
 * with 8).
 */
const MAX_OPENING = 8;

/** A connection this thread owns. */
interface Forwarded {
  id: number;
  conn: Deno.Conn;
  outbox: Outbox;
  worker: number;
  /** In the chat (its worker said so, after the welcome): broadcasts reach it. */
  entered: boolean;
  /** Bytes read and not yet acknowledged: held here, or posted. */
  inFlight: number;
  /** A post to the worker is not acknowledged yet: new bytes are held. */
  posted: boolean;
  /** Bytes read while a post was out, in order; posted as one with the ack. */
  held: Uint8Array<ArrayBuffer> | null;
  /** How many bytes of `held` are filled. */
  heldLength: number;
  /** Waiting in the queue to post what it holds. */
  queued: boolean;
  /** Its worker has not answered yet (counted against {@linkcode MAX_OPENING}). */
  opening: boolean;
  /** Bytes of its posts not yet acknowledged (part of the forwarder's total). */
  postedBytes: number;
  resume?: () => void;
  /** Called once what it held is posted (its end waits for that). */
  flushed?: () => void;
}

/** Accepts, forwards, writes back: the main thread's side of portable mode. */
export class Forwarder implements ForwardingHandler {
  readonly #workers: Workers;
  readonly #options: ForwarderOptions;
  /** The replies waiting in every outbox here, all clients', and their bound. */
  readonly #replies: PendingLimit;
  /**
   * Bytes of one connection in flight to its worker. What is in flight is
   * not paced yet, and relayed with names and escapes to every receiver it
   * can grow ~8 times over, so it must stay well within half an outbox:
   * a sixteenth of it (64 KiB for the default 1 MiB).
   */
  readonly #window: number;
  readonly #conns = new Map<number, Forwarded>();
  /** Bytes posted to the workers and not yet acknowledged, all connections. */
  #posted = 0;
  /** Connections holding bytes to post once there is room, in order. */
  readonly #queue: Forwarded[] = [];
  #pumpWaiting = false;
  /** Outboxes flushing their last bytes: a shutdown waits for them. */
  readonly #closing = new Set<Promise<void>>();
  readonly #pacer = new Pacer(() => this.#outboxes());
  /**
   * Bytes held here (read, not yet posted), all connections together, and
   * the most there may be: a quarter of an outbox. Past it no connection
   * reads on, so thousands of clients sending at once wait in their own
   * sockets, not in this thread's memory.
   */
  #held = 0;
  readonly #heldLimit: number;
  #heldWaiters: (() => void)[] = [];
  /** This thread's garbage after a crowd leaves (see lib/leave_collector.ts). */
  readonly #collector = new LeaveCollector();
  /** The workers' backlog counters, if given (see {@linkcode ForwarderOptions.backlog}). */
  readonly #backlog: Int32Array | undefined;
  /** Connections accepted and not yet answered by their worker. */
  #opening = 0;
  #acceptWaiters: (() => void)[] = [];

  /** Forwards to `workers`; see {@linkcode ForwarderOptions}. */
  constructor(workers: Workers, options: ForwarderOptions) {
    this.#workers = workers;
    this.#options = options;
    this.#replies = repliesLimit(options.maxReplies);
    this.#backlog = options.backlog && new Int32Array(options.backlog);
    this.#window = Math.max(1024, Math.floor(options.outboxLimit / 16));
    this.#heldLimit = Math.max(
      this.#window,
      Math.floor(options.outboxLimit / 4),
    );
  }

  /** Bytes read and not yet posted, all connections together (about a quarter of an outbox at most). */
  get held(): number {
    return this.#held;
  }

  /** Every connection's outbox, for the pacer (no array made per read). */
  *#outboxes(): Generator<Outbox> {
    for (const forwarded of this.#conns.values()) yield forwarded.outbox;
  }

  /** accept() forever; each connection is forwarded to a worker. */
  async serve(listener: Deno.Listener): Promise<void> {
    for await (const conn of accepted(listener)) {
      // Counted from here, or once its TLS handshake is done: that may take
      // a client 10 s, and must not hold the others out meanwhile.
      if (!isTls(conn)) this.#opening++;
      void this.#forward(conn);
      while (this.#opening >= MAX_OPENING) {
        await new Promise<void>((resolve) => this.#acceptWaiters.push(resolve));
      }
    }
  }

  /** One connection less is waiting for its worker's first answer. */
  #opened(): void {
    this.#opening--;
    // Each accept loop looks again (one per listener).
    for (const wake of this.#acceptWaiters.splice(0)) wake();
  }

  async #forward(accepted: Deno.Conn): Promise<void> {
    // TLS: the handshake first; nothing is said to a client before it.
    const failure = await acceptHandshake(accepted);
    if (failure) return log(`${addressOf(accepted.remoteAddr)} ${failure}`);
    const conn = wireAccepted(accepted, this.#options.wire);
    const id = this.#options.stats.nextClientId();
    const forwarded: Forwarded = {
      id,
      conn,
      worker: this.#workers.pick(),
      entered: false,
      inFlight: 0,
      posted: false,
      held: null,
      heldLength: 0,
      queued: false,
      opening: true,
      postedBytes: 0,
      outbox: new Outbox(conn, {
        limit: this.#options.outboxLimit,
        replies: this.#replies,
      }),
    };
    this.#conns.set(id, forwarded);
    if (isTls(accepted)) this.#opening++;
    this.#workers.post(forwarded.worker, {
      type: "open",
      id,
      peer: addressOf(conn.remoteAddr),
    });
    let buffer = new Uint8Array(FIRST_READ_BUFFER_SIZE);
    let reason = "";
    let finished = false; // the peer ended its stream cleanly (FIN)
    for (;;) {
      if (forwarded.inFlight >= this.#window) {
        await new Promise<void>((resolve) => (forwarded.resume = resolve));
      }
      await this.#pacer.wait(); // this thread holds every outbox
      while (this.#held >= this.#heldLimit) {
        await new Promise<void>((resolve) => this.#heldWaiters.push(resolve));
      }
      if (this.#conns.get(id) !== forwarded) break; // closed while it waited
      const room = this.#window - forwarded.inFlight;
      const into = buffer.length > room ? buffer.subarray(0, room) : buffer;
      let n: number | null;
      try {
        n = await conn.read(into);
      } catch (error) {
        // whatever a read throws ends this connection only
        reason = readFailure(error) ?? "";
        break;
      }
      if (n === null) {
        finished = true;
        break;
      }
      const turn = cooperate(); // a flood must not starve the others
      if (turn) await turn;
      if (this.#conns.get(id) !== forwarded) break; // closed: nobody takes these
      this.#collector.busy(); // traffic: no collection now
      forwarded.inFlight += n;
      if (!forwarded.posted && !forwarded.queued && this.#mayPost(n)) {
        // its own memory, moved (not copied) to the worker
        this.#post(forwarded, buffer.slice(0, n));
      } else {
        this.#hold(forwarded, buffer.subarray(0, n));
        this.#enqueue(forwarded);
      }
      // Larger while reads fill it; back to the first size after a short
      // read that ends no line (a stall mid-line), as lib/read_loop.ts does.
      const next = n === into.length
        ? grownBuffer(buffer, n)
        : buffer.lastIndexOf(LF, n - 1) === -1
        ? firstReadBuffer(buffer)
        : buffer;
      if (next !== buffer) freeBuffer(buffer); // now, not at a collection
      buffer = next;
    }
    if (finished) {
      // A reset whose error a write took reads as an end of stream: its
      // outbox knows, once that write's callbacks ran.
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (forwarded.outbox.reason !== undefined) finished = false;
    }
    // A line cut by a reset is never relayed: what it held of one need not
    // wait for room (a crowd connecting, sending half a line and resetting
    // would otherwise hold everyone's reads up behind it).
    if (!finished) this.#dropUnfinished(forwarded);
    if (forwarded.held !== null && this.#conns.has(id)) {
      // The last bytes go before the end.
      await new Promise<void>((resolve) => (forwarded.flushed = resolve));
    }
    if (!this.#conns.has(id)) return; // closed meanwhile, by its worker or a shutdown
    reason = forwarded.outbox.reason ?? reason;
    this.#workers.post(forwarded.worker, { type: "end", id, reason, finished });
    // A half-closed client is still owed its answers: its worker says `close`.
    if (finished) return;
    this.#remove(forwarded);
    await this.#close(forwarded);
  }

  /** Whether `size` more bytes fit the window of all connections. */
  #fits(size: number): boolean {
    return this.#posted === 0 || this.#posted + size <= this.#window;
  }

  /** Whether `size` more bytes may be posted now: they fit, no outbox congested. */
  #mayPost(size: number): boolean {
    return this.#fits(size) && this.#pacer.wait() === undefined;
  }

  /** Posts `bytes` (moved, not copied) to the connection's worker. */
  #post(forwarded: Forwarded, bytes: Uint8Array<ArrayBuffer>): void {
    forwarded.posted = true;
    forwarded.postedBytes += bytes.length;
    this.#posted += bytes.length;
    this.#workers.post(
      forwarded.worker,
      { type: "data", id: forwarded.id, bytes },
      [bytes.buffer],
    );
  }

  /** Keeps `bytes` (copied) for the next post; within the window, so bounded. */
  #hold(forwarded: Forwarded, bytes: Uint8Array): void {
    const length = forwarded.heldLength + bytes.length;
    let held = forwarded.held;
    if (held === null || held.length < length) {
      const size = Math.min(
        Math.max(length, 2 * (held?.length ?? 0), 4096),
        this.#window,
      );
      const grown = newBuffer(size);
      if (held) {
        grown.set(held.subarray(0, forwarded.heldLength));
        freeBuffer(held);
      }
      held = forwarded.held = grown;
    }
    held.set(bytes, forwarded.heldLength);
    forwarded.heldLength = length;
    this.#held += bytes.length;
  }

  /** Queues a connection that holds bytes and has no post out. */
  #enqueue(forwarded: Forwarded): void {
    if (forwarded.queued || forwarded.posted || forwarded.held === null) return;
    forwarded.queued = true;
    this.#queue.push(forwarded);
    this.#pump();
  }

  /** Posts what queued connections hold, in turn, while there is room. */
  #pump(): void {
    while (this.#queue.length > 0) {
      const forwarded = this.#queue[0];
      if (
        this.#conns.get(forwarded.id) !== forwarded || forwarded.held === null
      ) {
        this.#queue.shift(); // closed meanwhile, or what it held dropped
        forwarded.queued = false;
        forwarded.flushed?.();
        continue;
      }
      if (!this.#fits(forwarded.heldLength)) return; // the next ack pumps again
      const congested = this.#pacer.wait();
      if (congested) {
        if (!this.#pumpWaiting) {
          this.#pumpWaiting = true;
          congested.then(() => {
            this.#pumpWaiting = false;
            this.#pump();
          });
        }
        return;
      }
      this.#queue.shift();
      forwarded.queued = false;
      const bytes = forwarded.held!.subarray(0, forwarded.heldLength);
      this.#unhold(forwarded);
      this.#post(forwarded, bytes);
      forwarded.flushed?.();
    }
  }

  /** Drops what `forwarded` holds after its last complete line. */
  #dropUnfinished(forwarded: Forwarded): void {
    const held = forwarded.held;
    if (held === null) return;
    const end = held.lastIndexOf(LF, forwarded.heldLength - 1) + 1;
    if (end === 0) {
      this.#unhold(forwarded);
      return freeBuffer(held); // now, not at a collection
    }
    this.#held -= forwarded.heldLength - end;
    forwarded.heldLength = end;
    this.#wakeHeld();
  }

  /** Lets go of what `forwarded` held (posted, or dropped); wakes the readers waiting for room. */
  #unhold(forwarded: Forwarded): void {
    this.#held -= forwarded.heldLength;
    forwarded.held = null;
    forwarded.heldLength = 0;
    this.#wakeHeld();
  }

  /** Wakes the readers waiting for room among the bytes held, if there is. */
  #wakeHeld(): void {
    if (this.#held < this.#heldLimit && this.#heldWaiters.length > 0) {
      const waiters = this.#heldWaiters;
      this.#heldWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** Forgets a connection: its posts will not be acknowledged, so they leave the total. */
  #remove(forwarded: Forwarded): void {
    this.#conns.delete(forwarded.id);
    this.#answered(forwarded);
    this.#posted -= forwarded.postedBytes;
    forwarded.postedBytes = 0;
    this.#unhold(forwarded);
    forwarded.resume?.(); // its reader, if it waits for an ack, sees it is gone
    forwarded.flushed?.();
    this.#pump();
    this.#collector.left();
  }

  /** Closes a connection's outbox (flushing it, never tearing a message). */
  #close(forwarded: Forwarded, last?: Uint8Array): Promise<void> {
    const closing = forwarded.outbox.close(last);
    this.#closing.add(closing);
    return closing.finally(() => this.#closing.delete(closing));
  }

  /** `reply`, `entered`, `exited`, `broadcast`, `close`, `release` and `ack` from a worker. */
  handle(index: number, message: FromWorker): void {
    switch (message.type) {
      case "reply": {
        const forwarded = this.#conns.get(message.id);
        if (!forwarded) return;
        this.#answered(forwarded); // its welcome: the worker has it
        forwarded.outbox.reply(message.bytes); // for this client alone
        return;
      }
      case "entered":
      case "exited": {
        const forwarded = this.#conns.get(message.id);
        if (forwarded) forwarded.entered = message.type === "entered";
        return;
      }
      case "broadcast": {
        // Every client in the chat, on every worker, but the sender.
        let congested = false;
        for (const forwarded of this.#conns.values()) {
          if (forwarded.entered && forwarded.id !== message.except) {
            forwarded.outbox.send(message.bytes);
            congested ||= forwarded.outbox.congested;
          }
        }
        if (!this.#backlog) return;
        const handled = { index, size: message.bytes.length };
        const backlog = this.#backlog;
        const settled = congested ? this.#pacer.wait() : undefined;
        if (settled) void settled.finally(() => mainHandled(backlog, handled));
        else mainHandled(backlog, handled);
        return;
      }
      case "close": {
        const forwarded = this.#conns.get(message.id);
        if (!forwarded) return;
        this.#remove(forwarded);
        void this.#close(forwarded, message.last);
        return;
      }
      case "release": {
        const forwarded = this.#conns.get(message.id);
        if (!forwarded) return;
        forwarded.postedBytes -= message.bytes;
        this.#posted -= message.bytes;
        this.#pump(); // room for the others
        return;
      }
      case "ack": {
        const forwarded = this.#conns.get(message.id);
        if (!forwarded) return;
        forwarded.inFlight -= message.bytes;
        // one post out at a time: what it still counted leaves the total
        this.#posted -= forwarded.postedBytes;
        forwarded.postedBytes = 0;
        forwarded.posted = false;
        this.#enqueue(forwarded); // what was read meanwhile
        this.#pump(); // room for the others
        if (forwarded.inFlight < this.#window) forwarded.resume?.();
        return;
      }
    }
  }

  /** `forwarded`'s worker answered (or it is gone): accept() may go on. */
  #answered(forwarded: Forwarded): void {
    if (!forwarded.opening) return;
    forwarded.opening = false;
    this.#opened();
  }

  /** Worker `index` crashed: its clients are told and disconnected. */
  workerGone(index: number): void {
    const last = encodeLine(
      notice(`server error in worker ${index}; disconnecting`),
    );
    for (const forwarded of [...this.#conns.values()]) {
      if (forwarded.worker !== index) continue;
      this.#remove(forwarded);
      void this.#close(forwarded, last);
    }
  }

  /** Every connection still here gets a goodbye; resolves once all closed. */
  async shutdown(): Promise<void> {
    const bye = encodeLine(notice("server shutting down"));
    for (const forwarded of [...this.#conns.values()]) {
      this.#remove(forwarded);
      void this.#close(forwarded, bye);
    }
    this.#collector.stop();
    await Promise.all(this.#closing);
  }
}
