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

/** Options of {@linkcode PendingLimit}. */
export interface PendingLimitOptions {
  /**
   * Judge only what has been held this long, in ms: past the limit, a check
   * runs every half of it until the total fits, each time cutting off the
   * largest holder whose bytes have been held (without a break) at least
   * this long. For bytes on their way out (replies being written), of
   * which a burst makes many for a moment. The total may then pass the
   * limit by what holders add within the grace time. 0, the default: past
   * the limit the largest goes at once.
   */
  graceMs?: number;
}

/** What one holder holds, and since when without a break. */
interface Held {
  bytes: number;
  since: number;
}

/**
 * The bytes every connection holds for itself, and the limit.
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
  readonly #graceMs: number;
  readonly #held = new Map<PendingHolder, Held>();
  #total = 0;
  /** The next check, while the total is past the limit (with a grace time). */
  #check: ReturnType<typeof setTimeout> | undefined;

  /** A limit of `limit` bytes across every holder; see {@linkcode PendingLimitOptions}. */
  constructor(
    limit: number = DEFAULT_PENDING_LIMIT,
    options: PendingLimitOptions = {},
  ) {
    this.limit = limit;
    this.#graceMs = options.graceMs ?? 0;
  }

  /** Bytes held now, all holders together. */
  get total(): number {
    return this.#total;
  }

  /**
   * Records that `holder` now holds `bytes`; past the limit, evicts the
   * largest holders (maybe this one) until the total fits, at once or
   * after the grace time (see {@linkcode PendingLimitOptions.graceMs}).
   */
  hold(holder: PendingHolder, bytes: number): void {
    const held = this.#held.get(holder);
    const before = held?.bytes ?? 0;
    if (bytes === before) return;
    if (bytes === 0) this.#held.delete(holder);
    else if (held) held.bytes = bytes;
    else {
      const since = this.#graceMs > 0 ? Date.now() : 0;
      this.#held.set(holder, { bytes, since });
    }
    this.#total += bytes - before;
    if (this.#total <= this.limit) return;
    if (this.#graceMs === 0) {
      while (this.#total > this.limit) this.#evictLargest(Infinity);
      return;
    }
    this.#checkLater();
  }

  /** Forgets `holder` (its connection ended). */
  release(holder: PendingHolder): void {
    this.hold(holder, 0);
  }

  /** Past the limit: cuts off the largest holders held past the grace time, again until it fits. */
  #checkLater(): void {
    if (this.#check !== undefined) return;
    const check = setTimeout(() => {
      this.#check = undefined;
      const heldLongEnough = Date.now() - this.#graceMs;
      while (this.#total > this.limit && this.#evictLargest(heldLongEnough));
      if (this.#total > this.limit) this.#checkLater();
    }, this.#graceMs / 2);
    Deno.unrefTimer(check); // a server's limit keeps no program alive
    this.#check = check;
  }

  /** Evicts the largest holder holding since `since` or before; whether there was one. */
  #evictLargest(since: number): boolean {
    let largest: PendingHolder | undefined;
    let most = 0;
    for (const [holder, held] of this.#held) {
      if (held.bytes > most && held.since <= since) {
        [largest, most] = [holder, held.bytes];
      }
    }
    if (largest === undefined) return false;
    this.#held.delete(largest);
    this.#total -= most;
    largest.evict(most);
    return true;
  }
}
