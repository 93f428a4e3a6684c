/**
 * How many join, leave and rename notices a chat says one by one.
 *
 * Each notice goes to every member, so a crowd that connects and resets
 * over and over makes a server write N times per connection: thousands of
 * connections a second are enough to bury the chat under notices and hold
 * the honest members' messages up for seconds. A {@linkcode NoticeBudget}
 * lets a burst of notices through (50 by default), then a steady rate (20 a
 * second); past that they are counted, and one summary a second says how
 * many joined, left and changed names meanwhile. A member whose join was
 * counted is counted again when it leaves or renames, so nobody reads of
 * someone leaving who was never seen coming. Renames share the budget: a
 * member has a rename budget of its own, but one that reconnects gets a new
 * one.
 *
 * @example
 * ```ts
 * import { NoticeBudget } from "./notice_budget.ts";
 * const said: string[] = [];
 * const budget = new NoticeBudget({ burst: 1, say: (text) => said.push(text) });
 * budget.joined(1); // true: announce it
 * budget.joined(2); // false: counted; a summary follows in a second
 * budget.stop();
 * ```
 *
 * @module
 */

import { TokenBucket } from "./token_bucket.ts";

/** Notices said one by one in a burst (default 50). */
export const DEFAULT_NOTICE_BURST = 50;

/** Notices said one by one each second after a burst (default 20). */
export const DEFAULT_NOTICES_PER_SECOND = 20;

/** How long after the first counted notice its summary is said, in ms (1 s). */
export const DEFAULT_SUMMARY_MS = 1000;

/** Options of {@linkcode NoticeBudget}. */
export interface NoticeBudgetOptions {
  /** Says a summary of the counted notices to everyone (a notice's text). */
  say: (text: string) => void;
  /** Notices said one by one in a burst (default 50). */
  burst?: number;
  /** Notices said one by one each second after that (default 20). */
  perSecond?: number;
  /** How long after the first counted notice the summary comes, in ms (default 1,000). */
  summaryMs?: number;
  /** The clock, in ms (default `performance.now`). */
  now?: () => number;
}

/**
 * A token bucket ({@linkcode TokenBucket}) for join, leave and rename
 * notices, with a summary of the rest.
 *
 * @example
 * ```ts
 * import { NoticeBudget } from "./notice_budget.ts";
 * const budget = new NoticeBudget({ say: console.log });
 * if (budget.joined(7)) console.log("* guest-7 has joined");
 * if (budget.left(7)) console.log("* guest-7 has left");
 * budget.stop();
 * ```
 */
export class NoticeBudget {
  readonly #say: (text: string) => void;
  readonly #bucket: TokenBucket;
  readonly #summaryMs: number;
  /** Members whose join was counted, not said: their leave and renames are counted too. */
  readonly #unannounced = new Set<number>();
  #joins = 0;
  #leaves = 0;
  #renames = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  /** See {@linkcode NoticeBudgetOptions}. */
  constructor(options: NoticeBudgetOptions) {
    this.#say = options.say;
    this.#bucket = new TokenBucket({
      burst: options.burst ?? DEFAULT_NOTICE_BURST,
      perSecond: options.perSecond ?? DEFAULT_NOTICES_PER_SECOND,
      now: options.now,
    });
    this.#summaryMs = options.summaryMs ?? DEFAULT_SUMMARY_MS;
  }

  /** Member `id` joined: `true` to announce it now; `false` if it was counted. */
  joined(id: number): boolean {
    if (this.#bucket.take()) return true;
    this.#unannounced.add(id);
    this.#joins++;
    this.#arm();
    return false;
  }

  /** Member `id` left: `true` to announce it now; `false` if it was counted. */
  left(id: number): boolean {
    if (!this.#unannounced.delete(id) && this.#bucket.take()) return true;
    this.#leaves++;
    this.#arm();
    return false;
  }

  /** Member `id` changed its name: `true` to announce it now; `false` if it was counted. */
  renamed(id: number): boolean {
    if (!this.#unannounced.has(id) && this.#bucket.take()) return true;
    this.#renames++;
    this.#arm();
    return false;
  }

  /** No more summaries; one pending is called off. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The summary, once, `summaryMs` after the first notice it counts. */
  #arm(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    const timer = setTimeout(() => {
      this.#timer = undefined;
      const text = summary({
        joins: this.#joins,
        leaves: this.#leaves,
        renames: this.#renames,
      });
      this.#joins = this.#leaves = this.#renames = 0;
      this.#say(text);
    }, this.#summaryMs);
    Deno.unrefTimer(timer); // never what keeps a program running
    this.#timer = timer;
  }
}

/** What a summary counts, for {@linkcode summary}. */
export interface NoticeCounts {
  /** Joins counted. */
  joins: number;
  /** Leaves counted. */
  leaves: number;
  /** Name changes (default 0). */
  renames?: number;
}

/**
 * `312 joined, 309 left and 40 changed names just now (too many to announce
 * one by one; /who lists who is here)`, leaving out a part that is zero.
 *
 * @example
 * ```ts
 * import { summary } from "./notice_budget.ts";
 * summary({ joins: 3, leaves: 0 }); // "3 joined just now (too many to announce one by one; /who lists who is here)"
 * ```
 */
export function summary(counts: NoticeCounts): string {
  const { joins, leaves, renames = 0 } = counts;
  const parts = [
    ...(joins > 0 ? [`${joins} joined`] : []),
    ...(leaves > 0 ? [`${leaves} left`] : []),
    ...(renames > 0
      ? [`${renames} changed ${renames === 1 ? "name" : "names"}`]
      : []),
  ];
  const listed = parts.length > 1
    ? `${parts.slice(0, -1).join(", ")} and ${parts.at(-1)}`
    : parts[0];
  return `${listed} just now (too many to announce one by one; /who lists who is here)`;
}
