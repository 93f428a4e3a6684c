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
 * Replies go out through each connection's bounded outbox, paced like the
 * other servers (see `lib/outbox.ts`).
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
import { encodeLine } from "../lib/encoders.ts";
import { isDisconnect } from "../lib/errors.ts";
import { FIRST_READ_BUFFER_SIZE, grownBuffer } from "../lib/io.ts";
import { accepted, addressOf } from "../lib/net.ts";
import { Outbox, Pacer } from "../lib/outbox.ts";
import type { FromWorker, ToWorker } from "./messages.ts";
import type { ForwardingHandler } from "./pool.ts";
import type { SharedStats } from "./shared_stats.ts";
import type { WireLog } from "../lib/wire.ts";
import { wireAccepted } from "../lib/wire_conn.ts";
import { acceptHandshake } from "../lib/tls.ts";
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
  /** Where client ids come from (shared with the workers). */
  stats: SharedStats;
  /** `--wire`: show every socket call and its bytes. */
  wire?: WireLog;
}

/** A connection this thread owns. */
interface Forwarded {
  conn: Deno.Conn;
  outbox: Outbox;
  worker: number;
  /** Bytes read and not yet acknowledged: held here, or posted. */
  inFlight: number;
  /** A post to the worker is not acknowledged yet: new bytes are held. */
  posted: boolean;
  /** Bytes read while a post was out, in order; posted as one with the ack. */
  held: Uint8Array<ArrayBuffer> | null;
  /** How many bytes of `held` are filled. */
  heldLength: number;
  resume?: () => void;
}

/** Accepts, forwards, writes back: the main thread's side of portable mode. */
export class Forwarder implements ForwardingHandler {
  readonly #workers: Workers;
  readonly #options: ForwarderOptions;
  /**
   * Bytes of one connection in flight to its worker. What is in flight is
   * not paced yet, and relayed with names and escapes to every receiver it
   * can grow ~8 times over, so it must stay well within half an outbox:
   * a sixteenth of it (64 KiB for the default 1 MiB).
   */
  readonly #window: number;
  readonly #conns = new Map<number, Forwarded>();
  /** Outboxes flushing their last bytes: a shutdown waits for them. */
  readonly #closing = new Set<Promise<void>>();
  readonly #pacer = new Pacer(() => this.#outboxes());

  /** Forwards to `workers`; see {@linkcode ForwarderOptions}. */
  constructor(workers: Workers, options: ForwarderOptions) {
    this.#workers = workers;
    this.#options = options;
    this.#window = Math.max(1024, Math.floor(options.outboxLimit / 16));
  }

  /** Every connection's outbox, for the pacer (no array made per read). */
  *#outboxes(): Generator<Outbox> {
    for (const forwarded of this.#conns.values()) yield forwarded.outbox;
  }

  /** accept() forever; each connection is forwarded to a worker. */
  async serve(listener: Deno.Listener): Promise<void> {
    for await (const conn of accepted(listener)) void this.#forward(conn);
  }

  async #forward(accepted: Deno.Conn): Promise<void> {
    // TLS: the handshake first; nothing is said to a client before it.
    const failure = await acceptHandshake(accepted);
    if (failure) return log(`${addressOf(accepted.remoteAddr)} ${failure}`);
    const conn = wireAccepted(accepted, this.#options.wire);
    const id = this.#options.stats.nextClientId();
    const forwarded: Forwarded = {
      conn,
      worker: this.#workers.pick(),
      inFlight: 0,
      posted: false,
      held: null,
      heldLength: 0,
      outbox: new Outbox(conn, { limit: this.#options.outboxLimit }),
    };
    this.#conns.set(id, forwarded);
    this.#workers.post(forwarded.worker, {
      type: "open",
      id,
      peer: addressOf(conn.remoteAddr),
    });
    let buffer = new Uint8Array(FIRST_READ_BUFFER_SIZE);
    let reason = "";
    let finished = false; // the peer ended its stream cleanly (FIN)
    try {
      for (;;) {
        if (forwarded.inFlight >= this.#window) {
          await new Promise<void>((resolve) => (forwarded.resume = resolve));
        }
        await this.#pacer.wait(); // this thread holds every outbox
        const room = this.#window - forwarded.inFlight;
        const n = await conn.read(
          buffer.length > room ? buffer.subarray(0, room) : buffer,
        );
        if (n === null) {
          finished = true;
          break;
        }
        forwarded.inFlight += n;
        if (forwarded.posted) {
          this.#hold(forwarded, buffer.subarray(0, n));
        } else {
          // its own memory, moved (not copied) to the worker
          this.#post(id, forwarded, buffer.slice(0, n));
        }
        buffer = grownBuffer(buffer, n);
      }
    } catch (error) {
      if (isDisconnect(error)) {
        reason = error instanceof Deno.errors.ConnectionReset
          ? "connection reset"
          : "connection lost";
      } else if (
        !(error instanceof Deno.errors.BadResource ||
          error instanceof Deno.errors.Interrupted)
      ) {
        throw error;
      }
    }
    if (!this.#conns.has(id)) return; // closed meanwhile, by its worker or a shutdown
    this.#postHeld(id, forwarded); // the last bytes go before the end
    reason = forwarded.outbox.reason ?? reason;
    this.#workers.post(forwarded.worker, { type: "end", id, reason, finished });
    // A half-closed client is still owed its answers: its worker says `close`.
    if (finished) return;
    this.#conns.delete(id);
    await this.#close(forwarded);
  }

  /** Posts `bytes` (moved, not copied) to the connection's worker. */
  #post(
    id: number,
    forwarded: Forwarded,
    bytes: Uint8Array<ArrayBuffer>,
  ): void {
    forwarded.posted = true;
    this.#workers.post(forwarded.worker, { type: "data", id, bytes }, [
      bytes.buffer,
    ]);
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
      const grown = new Uint8Array(size);
      if (held) grown.set(held.subarray(0, forwarded.heldLength));
      held = forwarded.held = grown;
    }
    held.set(bytes, forwarded.heldLength);
    forwarded.heldLength = length;
  }

  /** Posts what was held, if anything, as one message. */
  #postHeld(id: number, forwarded: Forwarded): void {
    const held = forwarded.held;
    if (held === null) return;
    const bytes = held.subarray(0, forwarded.heldLength);
    forwarded.held = null;
    forwarded.heldLength = 0;
    this.#post(id, forwarded, bytes);
  }

  /** Closes a connection's outbox (flushing it, never tearing a message). */
  #close(forwarded: Forwarded, last?: Uint8Array): Promise<void> {
    const closing = forwarded.outbox.close(last);
    this.#closing.add(closing);
    return closing.finally(() => this.#closing.delete(closing));
  }

  /** `send`, `close` and `ack` from a worker. */
  handle(_index: number, message: FromWorker): void {
    switch (message.type) {
      case "send":
        for (const id of message.ids) {
          this.#conns.get(id)?.outbox.send(message.bytes);
        }
        return;
      case "close": {
        const forwarded = this.#conns.get(message.id);
        if (!forwarded) return;
        this.#conns.delete(message.id);
        void this.#close(forwarded, message.last);
        return;
      }
      case "ack": {
        const forwarded = this.#conns.get(message.id);
        if (!forwarded) return;
        forwarded.inFlight -= message.bytes;
        forwarded.posted = false;
        this.#postHeld(message.id, forwarded); // what was read meanwhile
        if (forwarded.inFlight < this.#window) forwarded.resume?.();
        return;
      }
    }
  }

  /** Worker `index` crashed: its clients are told and disconnected. */
  workerGone(index: number): void {
    const last = encodeLine(
      notice(`server error in worker ${index}; disconnecting`),
    );
    for (const [id, forwarded] of this.#conns) {
      if (forwarded.worker !== index) continue;
      this.#conns.delete(id);
      void this.#close(forwarded, last);
    }
  }

  /** Every connection still here gets a goodbye; resolves once all closed. */
  async shutdown(): Promise<void> {
    const bye = encodeLine(notice("server shutting down"));
    for (const forwarded of this.#conns.values()) {
      void this.#close(forwarded, bye);
    }
    this.#conns.clear();
    await Promise.all(this.#closing);
  }
}
