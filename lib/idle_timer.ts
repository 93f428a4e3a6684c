/**
 * A connection's idle timer: closes the connection when nothing happened
 * for a while, so one silent client cannot hold a server's place forever.
 *
 * What counts as something happening is the caller's to say, with
 * {@linkcode IdleTimer.touch}: the servers here touch it for each complete
 * message, not for each byte, so a client that trickles a line that never
 * ends is idle too. A touch only stamps the time (no timer call on the hot
 * path); the timer re-arms itself when it fires early.
 *
 * @example
 * ```ts ignore
 * import { idleTimer } from "./idle_timer.ts";
 * using idle = idleTimer(conn, { ms: 30_000, onIdle: () => console.log("idle") });
 * for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
 *   idle.touch();
 * }
 * ```
 *
 * @module
 */

import { closeQuietly, type Closer } from "./io.ts";

/** A running idle timer. */
export interface IdleTimer extends Disposable {
  /** Something happened: the idle time starts again. */
  touch(): void;
  /** Whether it fired (and closed the connection). */
  readonly fired: boolean;
}

/** Options of {@linkcode idleTimer}. */
export interface IdleTimerOptions {
  /** Milliseconds without a touch before the connection is closed (0: never). */
  ms: number;
  /** Called when the time is up, before the connection is closed. */
  onIdle?: () => void | Promise<void>;
}

/** No timeout: one shared object, nothing per connection. */
const NEVER: IdleTimer = {
  touch() {},
  fired: false,
  [Symbol.dispose]() {},
};

/**
 * Starts an idle timer on `conn`; dispose of it (or use `using`) when the
 * session ends.
 *
 * @example
 * ```ts
 * import { idleTimer } from "./idle_timer.ts";
 * const conn = { close() {} };
 * using idle = idleTimer(conn, { ms: 0 }); // 0: never fires
 * idle.touch();
 * ```
 */
export function idleTimer(conn: Closer, options: IdleTimerOptions): IdleTimer {
  const { ms, onIdle } = options;
  if (ms <= 0) return NEVER;
  let last = Date.now();
  let fired = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const check = async (): Promise<void> => {
    const left = last + ms - Date.now();
    if (left > 0) {
      timer = setTimeout(check, left);
      return;
    }
    fired = true;
    try {
      await onIdle?.();
    } finally {
      closeQuietly(conn);
    }
  };
  timer = setTimeout(check, ms);
  return {
    touch: () => {
      last = Date.now();
    },
    get fired() {
      return fired;
    },
    [Symbol.dispose]: () => clearTimeout(timer),
  };
}
