/**
 * A server-wide bound on bytes that connections hold each for themselves.
 *
 * Each connection may hold the start of one message, up to the largest
 * message allowed; thousands of connections that each send most of a
 * message and then nothing would hold gigabytes. Every read loop reports
 * what its decoder holds; when the total passes the limit, the connection
 * holding the most is cut off (an attacker holds far more than a client
 * whose line merely arrived in two reads), until the total fits again.
 * The same bound serves the replies a server queues for clients that do
 * not read them (`Outbox`'s `replies` option).
 *
 * @example
 * ```ts
 * import { PendingLimit } from "./pending_limit.ts";
 * const limit = new PendingLimit(100);
 * const evicted: string[] = [];
 * const a = { evict: () => evicted.push("a") };
 * const b = { evict: () => evicted.push("b") };
 * limit.hold(a, 80);
 * limit.hold(b, 30); // 110 > 100: a, the largest, is cut off
 * evicted; // ["a"]
 * limit.total; // 30
 * ```
 *
 * @module
 */

/** One connection's share: what to do when it must go. */
export interface PendingHolder {
  /** Cut this connection off; called at most once. */
  evict(held: number): void;
}

/** The default server-wide limit: 32 MiB. */
export const DEFAULT_PENDING_LIMIT = 32 * 1024 * 1024;

/**
 * The bytes every connection holds in unfinished messages, and the limit.
 *
 * @example
 * ```ts
 * import { PendingLimit } from "./pending_limit.ts";
 * const limit = new PendingLimit(1 << 20);
 * const holder = { evict: () => {} };
 * limit.hold(holder, 512);
 * limit.release(holder);
 * limit.total; // 0
 * ```
 */
export class PendingLimit {
  /** The most bytes all holders together may hold. */
  readonly limit: number;
  readonly #held = new Map<PendingHolder, number>();
  #total = 0;

  /** A limit of `limit` bytes across every holder. */
  constructor(limit: number = DEFAULT_PENDING_LIMIT) {
    this.limit = limit;
  }

  /** Bytes held now, all holders together. */
  get total(): number {
    return this.#total;
  }

  /**
   * Records that `holder` now holds `bytes`; past the limit, evicts the
   * largest holders (maybe this one) until the total fits.
   */
  hold(holder: PendingHolder, bytes: number): void {
    const before = this.#held.get(holder) ?? 0;
    if (bytes === before) return;
    if (bytes === 0) this.#held.delete(holder);
    else this.#held.set(holder, bytes);
    this.#total += bytes - before;
    while (this.#total > this.limit) this.#evictLargest();
  }

  /** Forgets `holder` (its connection ended). */
  release(holder: PendingHolder): void {
    this.hold(holder, 0);
  }

  #evictLargest(): void {
    let largest: PendingHolder | undefined;
    let most = 0;
    for (const [holder, bytes] of this.#held) {
      if (bytes > most) [largest, most] = [holder, bytes];
    }
    if (largest === undefined) return;
    this.#held.delete(largest);
    this.#total -= most;
    largest.evict(most);
  }
}
