/**
 * The relay between workers: a `MessagePort` to each other worker for the
 * bytes, and a bound on how far a worker may run ahead of the others.
 *
 * Why ports and not one `BroadcastChannel`: a chat must keep each sender's
 * order, and in Deno 2.9 a BroadcastChannel between workers does not (a
 * test here saw 40,887 of 200,000 messages out of order); a MessagePort
 * delivers in the order posted. The main thread makes one MessageChannel
 * per pair of workers and hands each end over.
 *
 * A port has no backpressure either: a worker reading a fast sender could
 * post faster than a busy worker handles, and the difference would pile up
 * in memory. So each worker's backlog (bytes posted to it, not yet handled)
 * is a counter in shared memory: senders add, the receiver subtracts and
 * wakes waiters with `Atomics.notify`. A worker that finds some backlog
 * over the bound stops reading its clients (TCP then slows the senders
 * down) until `Atomics.waitAsync` sees it drain.
 *
 * @example
 * ```ts ignore
 * import { Relay } from "./relay.ts";
 * const relay = new Relay(1, backlogBuffer, (bytes) => room.broadcast(bytes));
 * relay.connect(2, portToWorker2);
 * relay.send(bytes);
 * if (relay.congested()) await relay.drained(); // before reading on
 * ```
 *
 * @module
 */

/** The bound on one worker's backlog: 256 KiB, well inside an outbox's slack (see outbox.ts). */
export const RELAY_BACKLOG_LIMIT = 256 * 1024;

/**
 * Shared memory for the backlogs: cell 0 unused, then one counter per
 * worker (1-based).
 *
 * @example
 * ```ts
 * import { relayBacklogBuffer } from "./relay.ts";
 * const buffer = relayBacklogBuffer(4); // 5 cells
 * ```
 */
export function relayBacklogBuffer(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer((workers + 1) * Int32Array.BYTES_PER_ELEMENT);
}

/** A worker's end of the relay. */
export class Relay {
  readonly #index: number;
  readonly #backlog: Int32Array;
  readonly #deliver: (bytes: Uint8Array) => Promise<void> | undefined;
  readonly #peers = new Map<number, MessagePort>();

  /**
   * Joins the relay as worker `index`. `deliver` gets others' bytes; if it
   * returns a promise (its clients are congested), the bytes count as
   * handled only once it resolves, so the senders wait for them.
   */
  constructor(
    index: number,
    backlog: SharedArrayBuffer,
    deliver: (bytes: Uint8Array) => Promise<void> | undefined,
  ) {
    this.#index = index;
    this.#backlog = new Int32Array(backlog);
    this.#deliver = deliver;
    Atomics.store(this.#backlog, index, 0); // a replacement starts clean
  }

  /** Adds (or replaces) the port to worker `index`. */
  connect(index: number, port: MessagePort): void {
    this.#peers.get(index)?.close();
    this.#peers.set(index, port);
    port.onmessage = (event: MessageEvent<Uint8Array>) => {
      const size = event.data.length;
      const handled = (): void => {
        if (
          Atomics.sub(this.#backlog, this.#index, size) - size <=
            RELAY_BACKLOG_LIMIT
        ) {
          Atomics.notify(this.#backlog, this.#index);
        }
      };
      const waiting = this.#deliver(event.data);
      if (waiting) waiting.then(handled);
      else handled();
    };
  }

  /** Drops the port to worker `index` (it is gone). */
  disconnect(index: number): void {
    this.#peers.get(index)?.close();
    this.#peers.delete(index);
  }

  /** Posts bytes to every other worker, in order. */
  send(bytes: Uint8Array): void {
    for (const [index, port] of this.#peers) {
      Atomics.add(this.#backlog, index, bytes.length);
      port.postMessage(bytes);
    }
  }

  /** Whether some other worker's backlog is over the bound. */
  congested(): boolean {
    for (const index of this.#peers.keys()) {
      if (Atomics.load(this.#backlog, index) > RELAY_BACKLOG_LIMIT) return true;
    }
    return false;
  }

  /** Resolves once no other worker's backlog is over the bound. */
  async drained(): Promise<void> {
    for (const index of this.#peers.keys()) {
      for (;;) {
        const backlog = Atomics.load(this.#backlog, index);
        if (backlog <= RELAY_BACKLOG_LIMIT || !this.#peers.has(index)) break;
        // Re-check every 100 ms too: a worker that died never notifies.
        const wait = Atomics.waitAsync(this.#backlog, index, backlog, 100);
        if (wait.async) await wait.value;
      }
    }
  }

  /** Leaves the relay. */
  close(): void {
    for (const port of this.#peers.values()) port.close();
    this.#peers.clear();
  }
}
