/**
 * Gives memory back after a crowd leaves, as at the end of an attack.
 *
 * V8 collects garbage as JavaScript allocates, and once more when it sees a
 * program go quiet, but only once: a server that went quiet while the
 * attackers were held, and again after they left, keeps the garbage of their
 * leaving (each one's last line relayed, everyone told of each leave)
 * resident until something allocates again, for minutes or for good. So a
 * {@linkcode LeaveCollector} counts leaves: once `leaves` clients left, and
 * then the thread went `quietMs` with no leave and no read, it runs one full
 * collection.
 *
 * Quiet means no reads too: the collection stops the thread for tens of
 * milliseconds (50 to 120 on the portable main thread after 1,000 clients
 * left), which a busy chat would feel, and a busy thread needs none: it
 * allocates, so V8 collects.
 *
 * V8's `gc` is reached as Node programs reach it without a command-line
 * flag: set `--expose-gc` (`node:v8`), then take `gc` from a new context
 * (`node:vm`). Both are loaded only the first time a collection runs.
 *
 * @example
 * ```ts
 * import { LeaveCollector } from "./leave_collector.ts";
 * const collector = new LeaveCollector({ leaves: 100, quietMs: 5000 });
 * collector.left(); // at each client's leave
 * collector.busy(); // at each read
 * collector.stop(); // at shutdown
 * ```
 *
 * @module
 */

/** Leaves that call for a collection once quiet (default 100). */
export const DEFAULT_LEAVES = 100;

/** How long no client may leave, and nothing be read, before the collection runs, in ms (default 5 s). */
export const DEFAULT_QUIET_MS = 5000;

/** Options of {@linkcode LeaveCollector}. */
export interface LeaveCollectorOptions {
  /** Leaves since the last collection that call for one (default 100; 0: never). */
  leaves?: number;
  /** How long no client may leave, and nothing be read, before it runs, in ms (default 5,000). */
  quietMs?: number;
  /** The collection (default {@linkcode collectGarbage}). */
  collect?: () => Promise<unknown>;
}

/**
 * Runs one full garbage collection once `leaves` clients left and then the
 * thread went `quietMs` with no leave and no read
 * ({@linkcode LeaveCollector.busy}).
 *
 * @example
 * ```ts
 * import { LeaveCollector } from "./leave_collector.ts";
 * const collector = new LeaveCollector({ leaves: 2, quietMs: 10, collect: async () => {} });
 * collector.left();
 * collector.left(); // a collection in 10 ms, unless someone leaves or sends
 * collector.busy(); // a read: it waits for 10 ms without one
 * collector.stop();
 * ```
 */
export class LeaveCollector {
  readonly #leaves: number;
  readonly #quietMs: number;
  readonly #collect: () => Promise<unknown>;
  #count = 0;
  #last = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  /** Something was read since the last leave, or since the timer last looked. */
  #busy = false;

  /** See {@linkcode LeaveCollectorOptions}. */
  constructor(options: LeaveCollectorOptions = {}) {
    this.#leaves = options.leaves ?? DEFAULT_LEAVES;
    this.#quietMs = options.quietMs ?? DEFAULT_QUIET_MS;
    this.#collect = options.collect ?? collectGarbage;
  }

  /** Counts one client's leave. */
  left(): void {
    if (this.#stopped || this.#leaves <= 0) return;
    this.#last = Date.now();
    this.#busy = false; // the quiet time counts from here: earlier reads are past
    if (++this.#count >= this.#leaves) this.#arm(this.#quietMs);
  }

  /**
   * Notes a read: the collection, if one is due, waits for `quietMs` without
   * one. Cheap enough for every read (it sets a flag).
   */
  busy(): void {
    this.#busy = true;
  }

  /** No more collections; the pending one, if any, is called off. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Checks after `ms`; a leave meanwhile only stamps the time (no timer per leave). */
  #arm(ms: number): void {
    if (this.#timer !== undefined) return;
    const timer = setTimeout(() => {
      this.#timer = undefined;
      const quiet = Date.now() - this.#last;
      if (quiet < this.#quietMs) return this.#arm(this.#quietMs - quiet);
      if (this.#busy) {
        this.#busy = false; // traffic: look again after a whole quiet time
        return this.#arm(this.#quietMs);
      }
      this.#count = 0;
      void this.#collect().catch(() => {}); // a runtime without gc: nothing to give back
    }, ms);
    Deno.unrefTimer(timer); // never what keeps a program running
    this.#timer = timer;
  }
}

/** V8's `gc`, once found (`null`: this runtime has none to give). */
let found: ((options?: unknown) => void) | null | undefined;

/**
 * Runs V8's full garbage collection now, the kind that also hands free
 * pages back to the system; resolves `false` where the runtime has no `gc`.
 *
 * @example
 * ```ts
 * import { collectGarbage } from "./leave_collector.ts";
 * await collectGarbage(); // true in Deno
 * ```
 */
export async function collectGarbage(): Promise<boolean> {
  if (found === undefined) {
    try {
      const v8 = await import("node:v8");
      const vm = await import("node:vm");
      v8.setFlagsFromString("--expose-gc");
      const gc: unknown = vm.runInNewContext("gc");
      found = typeof gc === "function"
        ? gc as (options?: unknown) => void
        : null;
    } catch {
      found = null;
    }
  }
  if (!found) return false;
  found({ type: "major", execution: "sync", flavor: "last-resort" });
  return true;
}
