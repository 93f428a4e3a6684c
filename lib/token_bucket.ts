/**
 * A token bucket: a burst, then a steady rate.
 *
 * What a chat lets one client (or everyone) do that costs the others is
 * budgeted this way: join and leave notices (`notice_budget.ts`), renames
 * and `/who` (`chat_server.ts`). The bucket holds up to `burst` tokens and
 * gains `perSecond` of them a second; an action takes one.
 *
 * @example
 * ```ts
 * import { TokenBucket } from "./token_bucket.ts";
 * const renames = new TokenBucket({ burst: 5, perSecond: 1 });
 * renames.take(); // true, four times more; then false until a second passed
 * ```
 *
 * @module
 */

/** Options of {@linkcode TokenBucket}. */
export interface TokenBucketOptions {
  /** Tokens it holds at most, and starts with. */
  burst: number;
  /** Tokens it gains a second. */
  perSecond: number;
  /** The clock, in ms (default `performance.now`). */
  now?: () => number;
}

/**
 * A burst of `burst` actions, then `perSecond` a second.
 *
 * @example
 * ```ts
 * import { TokenBucket } from "./token_bucket.ts";
 * let now = 0;
 * const bucket = new TokenBucket({ burst: 1, perSecond: 2, now: () => now });
 * bucket.take(); // true
 * bucket.take(); // false
 * now += 500;
 * bucket.take(); // true: half a second brought one token
 * ```
 */
export class TokenBucket {
  readonly #burst: number;
  readonly #perMs: number;
  readonly #now: () => number;
  #tokens: number;
  #filled: number;

  /** A full bucket; see {@linkcode TokenBucketOptions}. */
  constructor(options: TokenBucketOptions) {
    this.#burst = options.burst;
    this.#perMs = options.perSecond / 1000;
    this.#now = options.now ?? (() => performance.now());
    this.#tokens = this.#burst;
    this.#filled = this.#now();
  }

  /** Takes a token: `true` if there was one, `false` (and nothing taken) if not. */
  take(): boolean {
    const now = this.#now();
    this.#tokens = Math.min(
      this.#burst,
      this.#tokens + (now - this.#filled) * this.#perMs,
    );
    this.#filled = now;
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }
}
