/**
 * A client's side of opening a connection: what goes around its own
 * `Deno.connect` call (socket() + connect() in one).
 *
 * - {@linkcode connectSignal}: gives up after `--connect-timeout` seconds
 *   (default 10; 0 never), not after the system's minute or two, on an
 *   address that silently drops packets (a wrong LAN address, a firewall);
 * - {@linkcode connecting}: says `-- connecting to HOST:PORT…` on stderr
 *   once connecting takes over a second, so a wait is never silent;
 * - {@linkcode CONNECT_FLAGS}: the `--connect-timeout` flag, for `cli.ts`.
 *
 * A failure (refused, timed out, no route to host, …) is said by
 * `errors.ts`'s `explainNetError` with `action: "connect"`.
 *
 * @example
 * ```ts ignore
 * import { connecting, connectSignal } from "./connect.ts";
 *
 * const options = { host: "127.0.0.1", port: 5000, connectTimeout: 10 };
 * using _status = connecting(options);
 * const conn = await Deno.connect({
 *   hostname: options.host,
 *   port: options.port,
 *   signal: connectSignal(options),
 * });
 * ```
 *
 * @module
 */

import { formatAddress } from "./errors.ts";

/** The default `--connect-timeout`, in seconds. */
export const DEFAULT_CONNECT_TIMEOUT = 10;

/** How long connecting may take before {@linkcode connecting} says so, in ms. */
export const CONNECTING_NOTICE_MS = 1000;

/**
 * The `--connect-timeout SECONDS` flag, for a client's cli spec:
 * `flags: { ...CONNECT_FLAGS }`.
 *
 * @example
 * ```ts
 * import { parseCli } from "./cli.ts";
 * import { CONNECT_FLAGS } from "./connect.ts";
 * const options = parseCli(["--connect-timeout", "2"], {
 *   script: "basic/client.ts", summary: "Echo client.", role: "client",
 *   defaultPort: 5000, flags: CONNECT_FLAGS,
 * });
 * options.connectTimeout; // 2
 * ```
 */
export const CONNECT_FLAGS = {
  connectTimeout: {
    type: "seconds",
    description: "give up connecting after SECONDS, 0 never",
    default: DEFAULT_CONNECT_TIMEOUT,
  },
} as const;

/** Where a client connects, and for how long it tries. */
export interface ConnectTarget {
  /** The server's host name or IP address, as the user gave it. */
  host: string;
  /** The server's port. */
  port: number;
  /** Seconds to try before giving up; 0 never (default 10). */
  connectTimeout?: number;
}

/**
 * The `signal` for `Deno.connect`: aborts it after the target's
 * `connectTimeout` (a `TimeoutError`, which `explainNetError` says as
 * "timed out"); `undefined` for 0 (never).
 *
 * @example
 * ```ts
 * import { connectSignal } from "./connect.ts";
 * connectSignal({ host: "127.0.0.1", port: 5000, connectTimeout: 0 }); // undefined
 * ```
 */
export function connectSignal(target: ConnectTarget): AbortSignal | undefined {
  const seconds = target.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT;
  return seconds > 0 ? AbortSignal.timeout(seconds * 1000) : undefined;
}

/** Options of {@linkcode connecting}. */
export interface ConnectingOptions {
  /** Say it after this many ms (default {@linkcode CONNECTING_NOTICE_MS}). */
  afterMs?: number;
  /** Where the line goes (default: stderr, so piped output stays the server's). */
  say?: (line: string) => void;
}

/**
 * Starts a timer that says `-- connecting to HOST:PORT…` if connecting
 * takes over a second; disposing of the result (`using`) stops it.
 *
 * @example
 * ```ts ignore
 * import { connecting } from "./connect.ts";
 * const target = { host: "192.168.1.23", port: 5003 };
 * using _status = connecting(target);
 * const conn = await Deno.connect({ hostname: target.host, port: target.port });
 * ```
 */
export function connecting(
  target: ConnectTarget,
  options: ConnectingOptions = {},
): Disposable {
  const say = options.say ?? ((line: string) => console.error(line));
  const seconds = target.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT;
  const limit = seconds > 0 ? ` (giving up after ${seconds} s)` : "";
  const timer = setTimeout(
    () =>
      say(
        `-- connecting to ${formatAddress(target.host, target.port)}…${limit}`,
      ),
    options.afterMs ?? CONNECTING_NOTICE_MS,
  );
  return { [Symbol.dispose]: () => clearTimeout(timer) };
}
