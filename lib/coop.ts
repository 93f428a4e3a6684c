/**
 * Cooperative turns: a read loop whose reads are always ready lets the
 * event loop turn, so one busy connection cannot starve the others.
 *
 * Deno completes a read at once when its socket already holds data, and
 * the loop goes on in a microtask: the event loop never runs in between,
 * so no other connection is read, no timer fires, until the busy one
 * waits. A client flooding empty lines (nothing to relay, so nothing to
 * wait on) held every other client's round trip for seconds. tokio has
 * the same hazard and the same cure: a budget per turn, spent by each
 * ready operation (`tokio::task::consume_budget`).
 *
 * Here the budget is time: {@linkcode cooperate} marks the event loop's
 * next turn (`setImmediate`) and, once that mark has waited
 * {@linkcode COOP_SLICE_MS}, makes the caller wait for a zero timer: a
 * timer, because Deno's runtime polls its sockets only when nothing is
 * ready, or every 61 tasks. A server that waits on its sockets, as every
 * honest load makes it, never sees that wait.
 *
 * @example
 * ```ts ignore
 * import { cooperate } from "./coop.ts";
 * for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
 *   const turn = cooperate();
 *   if (turn) await turn;
 * }
 * ```
 *
 * @module
 */

import { setImmediate } from "node:timers";

/** How long the event loop may go without a turn before busy loops yield. */
export const COOP_SLICE_MS = 2;

let marked = false; // a mark waits for the event loop's next turn
let markedAt = 0;
let turnedAt = -Infinity; // when the last mark ran
let pause: Promise<void> | undefined;

function turned(): void {
  marked = false;
  turnedAt = performance.now();
}

/**
 * Call once per ready read: a promise to await when the event loop has not
 * turned for {@linkcode COOP_SLICE_MS}, else `undefined` (go on at once).
 * It costs a clock read; a mark is set at most once a slice.
 *
 * @example
 * ```ts
 * import { cooperate } from "./coop.ts";
 * const turn = cooperate(); // the first call only marks the time
 * if (turn) await turn;
 * ```
 */
export function cooperate(): Promise<void> | undefined {
  const now = performance.now();
  if (!marked) {
    if (now - turnedAt >= COOP_SLICE_MS) {
      marked = true;
      markedAt = now;
      setImmediate(turned);
    }
    return undefined;
  }
  if (now - markedAt < COOP_SLICE_MS) return undefined;
  // A timer, not a turn: only a runtime with nothing ready polls every socket.
  return pause ??= new Promise((resolve) =>
    setTimeout(() => {
      pause = undefined;
      resolve();
    }, 0)
  );
}
