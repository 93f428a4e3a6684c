/**
 * Opening sockets: a server's `listen` and a client's `connect`, with any
 * failure said plainly (see `errors.ts`) instead of a stack trace.
 *
 * A server prints one stable line once it listens,
 * `listening on HOST:PORT`, with the port the system actually gave
 * (`--port 0` asks for any free one). Tests and people read that line.
 *
 * @example
 * ```ts
 * import { listenOrExit } from "./net.ts";
 * const listener = listenOrExit({ host: "127.0.0.1", port: 0 });
 * // 11:40:03.123 listening on 127.0.0.1:40123
 * listener.close();
 * ```
 *
 * @module
 */

import { exitWithError, explainNetError, formatAddress } from "./errors.ts";
import { log } from "./log.ts";

/** Where to listen or connect. */
export interface Endpoint {
  /** Host name or IP address. */
  host: string;
  /** TCP port; 0 lets a server take any free one. */
  port: number;
}

/**
 * `host:port` of a socket address (`[::1]:5000` for IPv6).
 *
 * @example
 * ```ts
 * import { addressOf } from "./net.ts";
 * addressOf({ transport: "tcp", hostname: "::1", port: 5000 }); // "[::1]:5000"
 * ```
 */
export function addressOf(addr: Deno.Addr): string {
  return addr.transport === "tcp" || addr.transport === "udp"
    ? formatAddress(addr.hostname, addr.port)
    : addr.transport;
}

/**
 * `socket() → bind() → listen()` in one call: opens a TCP listener and
 * prints `listening on HOST:PORT`; on failure prints why and exits 1.
 *
 * @example
 * ```ts
 * import { listenOrExit } from "./net.ts";
 * const listener = listenOrExit({ host: "127.0.0.1", port: 5000 });
 * listener.close();
 * ```
 */
export function listenOrExit(
  endpoint: Endpoint,
  options: { reusePort?: boolean; quiet?: boolean } = {},
): Deno.TcpListener {
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({
      hostname: endpoint.host,
      port: endpoint.port,
      reusePort: options.reusePort,
    });
  } catch (error) {
    exitWithError(explainNetError(error, { action: "listen", ...endpoint }));
  }
  if (!options.quiet) log(`listening on ${addressOf(listener.addr)}`);
  return listener;
}

/** Options of {@linkcode connectOrExit}. */
export interface ConnectOptions {
  /** Give up after this many seconds (default: the system's, ~2 min). */
  timeoutSeconds?: number;
}

/**
 * `socket() → connect()`: opens a TCP connection; on failure prints why
 * (refused, not found, timed out, …) and exits 1.
 *
 * @example
 * ```ts ignore
 * import { connectOrExit } from "./net.ts";
 * const conn = await connectOrExit({ host: "127.0.0.1", port: 5000 });
 * conn.close();
 * ```
 */
export async function connectOrExit(
  endpoint: Endpoint,
  options: ConnectOptions = {},
): Promise<Deno.TcpConn> {
  const seconds = options.timeoutSeconds;
  try {
    return await Deno.connect({
      hostname: endpoint.host,
      port: endpoint.port,
      signal: seconds === undefined
        ? undefined
        : AbortSignal.timeout(seconds * 1000),
    });
  } catch (error) {
    const timedOut = error instanceof DOMException &&
      (error.name === "TimeoutError" || error.name === "AbortError");
    exitWithError(explainNetError(
      timedOut
        ? new Deno.errors.TimedOut(`no answer within ${seconds} s`)
        : error,
      { action: "connect", ...endpoint },
    ));
  }
}
