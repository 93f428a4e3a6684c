/**
 * Counters shared by every thread through one `SharedArrayBuffer`.
 *
 * Each worker changes them with `Atomics` (an atomic read-modify-write, so
 * no update is lost when two threads add at the same instant: the lock-free
 * answer to the original's "use locks if you mutate a global list"), and
 * any thread reads them at any time without asking anyone.
 *
 * @example
 * ```ts
 * import { SharedStats } from "./shared_stats.ts";
 * const stats = new SharedStats();
 * const id = stats.nextClientId(); // 1, then 2, ... across all threads
 * stats.relayed(3);
 * stats.snapshot().messages; // 3
 * ```
 *
 * @module
 */

const CLIENTS = 0; // connected now
const JOINED = 1; // connected ever
const MESSAGES = 2; // chat messages relayed
const NEXT_ID = 3; // last client id handed out
const FIELDS = 4;

/** A moment's reading of the counters. */
export interface StatsSnapshot {
  /** Clients connected now. */
  clients: number;
  /** Clients connected since the start. */
  joined: number;
  /** Chat messages relayed since the start. */
  messages: number;
}

/** The shared counters; pass `buffer` to every worker. */
export class SharedStats {
  /** The shared memory: post it to workers, who wrap it again. */
  readonly buffer: SharedArrayBuffer;
  readonly #cells: BigInt64Array;

  /** Wraps `buffer`, or makes a new one. */
  constructor(
    buffer = new SharedArrayBuffer(FIELDS * BigInt64Array.BYTES_PER_ELEMENT),
  ) {
    this.buffer = buffer;
    this.#cells = new BigInt64Array(buffer);
  }

  /** A client id no other thread will get. */
  nextClientId(): number {
    return Number(Atomics.add(this.#cells, NEXT_ID, 1n) + 1n);
  }

  /** A client joined. */
  joined(): void {
    Atomics.add(this.#cells, CLIENTS, 1n);
    Atomics.add(this.#cells, JOINED, 1n);
  }

  /** A client left. */
  left(): void {
    Atomics.sub(this.#cells, CLIENTS, 1n);
  }

  /** `count` chat messages were relayed. */
  relayed(count: number): void {
    Atomics.add(this.#cells, MESSAGES, BigInt(count));
  }

  /** Reads every counter. */
  snapshot(): StatsSnapshot {
    return {
      clients: Number(Atomics.load(this.#cells, CLIENTS)),
      joined: Number(Atomics.load(this.#cells, JOINED)),
      messages: Number(Atomics.load(this.#cells, MESSAGES)),
    };
  }
}
