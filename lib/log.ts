/**
 * Server logs: one line per event, a timestamp first, then what happened
 * and to whom (`127.0.0.1:53124 connected`). Printed to stdout so that a
 * learner watches the socket lifecycle in the server's terminal.
 *
 * @example
 * ```ts
 * import { log } from "./log.ts";
 * log("listening on 127.0.0.1:5000");
 * // 11:40:03.123 listening on 127.0.0.1:5000
 * ```
 *
 * @module
 */

import { styles } from "./std.ts";

/**
 * `HH:MM:SS.mmm` in local time: how every log line (and the `--wire` view)
 * stamps the time.
 *
 * @example
 * ```ts
 * import { timestamp } from "./log.ts";
 * timestamp(new Date(2026, 10, 25, 9, 5, 7, 42)); // "09:05:07.042"
 * ```
 */
export function timestamp(now: Date): string {
  const two = (n: number): string => String(n).padStart(2, "0");
  return `${two(now.getHours())}:${two(now.getMinutes())}:${
    two(now.getSeconds())
  }.${String(now.getMilliseconds()).padStart(3, "0")}`;
}

/**
 * Prints one log line: local time, then `message`.
 *
 * @example
 * ```ts
 * import { log } from "./log.ts";
 * log("127.0.0.1:53124 connected");
 * ```
 */
export function log(message: string): void {
  console.log(`${styles.dim(timestamp(new Date()))} ${message}`);
}

/**
 * Prints one warning line: local time, then `message` in yellow.
 *
 * @example
 * ```ts
 * import { warn } from "./log.ts";
 * warn("127.0.0.1:53124 sent a line over the limit; disconnected");
 * ```
 */
export function warn(message: string): void {
  console.log(`${styles.dim(timestamp(new Date()))} ${styles.yellow(message)}`);
}
