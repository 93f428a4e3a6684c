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

import { cooperate } from "./coop.ts";
import { exitWithError, explainNetError, formatAddress } from "./errors.ts";
import { log, warn } from "./log.ts";
import { delay } from "./std.ts";

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
  if (!options.quiet) sayListening(listener.addr);
  return listener;
}

/**
 * Prints `listening on HOST:PORT` (then `detail`): the line people, tools
 * and tests wait for before they connect, or stop the server. A server with
 * a shutdown handler prints it once the handler is in place (listen with
 * `quiet: true`, call shutdown.ts's `onShutdown`, then this): a SIGTERM
 * sent before that kills it outright, with no goodbye and exit status 143.
 *
 * @example
 * ```ts
 * import { listenOrExit, sayListening } from "./net.ts";
 * const listener = listenOrExit({ host: "127.0.0.1", port: 0 }, { quiet: true });
 * sayListening(listener.addr, " with 4 workers");
 * listener.close();
 * ```
 */
export function sayListening(addr: Deno.Addr, detail = ""): void {
  log(`listening on ${addressOf(addr)}${detail}`);
}

/**
 * `accept()` forever, as an async iterable, ending when the listener is
 * closed. Unlike `for await (const conn of listener)`, errors that belong to
 * one connection or to a passing shortage do not end it:
 *
 * - a client that resets before it is accepted (`ENOTCONN`,
 *   `ECONNABORTED`, `ECONNRESET`): skipped. A remote client can cause this
 *   at will, so it must never stop a server.
 * - out of file descriptors or memory (`EMFILE`, `ENFILE`, `ENOBUFS`,
 *   `ENOMEM`): said once, then retried every 100 ms; the client waits in the
 *   backlog until a connection closes.
 *
 * Each connection gets `TCP_NODELAY`: we write whole messages, so Nagle's
 * algorithm could only delay them. A crowd connecting without pause is
 * accepted in turns with the other work ({@linkcode cooperate}).
 *
 * @example
 * ```ts ignore
 * import { accepted, listenOrExit } from "./net.ts";
 * const listener = listenOrExit({ host: "127.0.0.1", port: 5000 });
 * for await (const conn of accepted(listener)) conn.close();
 * ```
 */
export async function* accepted<C extends Deno.Conn>(
  listener: Deno.Listener<C>,
): AsyncGenerator<C, void, undefined> {
  let short = false;
  for (;;) {
    let conn: C;
    try {
      conn = await listener.accept();
    } catch (error) {
      if (
        error instanceof Deno.errors.BadResource ||
        error instanceof Deno.errors.Interrupted
      ) return; // the listener was closed
      if (
        error instanceof Deno.errors.NotConnected ||
        error instanceof Deno.errors.ConnectionAborted ||
        error instanceof Deno.errors.ConnectionReset
      ) continue; // gone before we got to it
      const code = (error as { code?: string }).code ?? "";
      if (!RESOURCE_SHORTAGE.has(code)) throw error;
      if (!short) {
        warn(
          `cannot accept more connections: ${code} (${
            (error as Error).message
          }); retrying. Raise the limit with \`ulimit -n\` or free connections.`,
        );
      }
      short = true;
      await delay(100);
      continue;
    }
    if (short) log("accepting connections again");
    short = false;
    const turn = cooperate(); // a connection flood must not starve the others
    if (turn) await turn;
    // We write whole messages (an echo, a batch of lines): Nagle's algorithm
    // would only hold the last of them back, up to 40 ms (delayed ACKs).
    try {
      // (A TLS connection has no such switch in Deno.)
      if (isTcp(conn)) conn.setNoDelay(true);
    } catch {
      // reset already: its first read or write will say so
    }
    yield conn;
  }
}

function isTcp(conn: Deno.Conn): conn is Deno.TcpConn {
  return "setNoDelay" in conn;
}

const RESOURCE_SHORTAGE = new Set(["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"]);

/**
 * Whether `host` means every interface: `0.0.0.0` or `::`.
 *
 * @example
 * ```ts
 * import { isWildcard } from "./net.ts";
 * isWildcard("0.0.0.0"); // true
 * isWildcard("127.0.0.1"); // false
 * ```
 */
export function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "[::]";
}

/**
 * What a server on `host` tells people about reaching it: on `0.0.0.0` (or
 * `::`), the addresses other machines can use, from
 * `Deno.networkInterfaces()` (needs `--allow-sys=networkInterfaces`); on
 * loopback, that only this machine can connect.
 *
 * @example
 * ```ts ignore
 * import { lanAddresses } from "./net.ts";
 * for (const line of lanAddresses("0.0.0.0", 5003)) console.log(line);
 * // other machines can connect to 192.168.1.23:5003 (wlan0)
 * ```
 */
export function lanAddresses(host: string, port: number): string[] {
  if (host === "localhost" || host.startsWith("127.") || host === "::1") {
    return [
      `only this machine can connect; --host 0.0.0.0 lets other machines in`,
    ];
  }
  if (!isWildcard(host)) return [];
  let interfaces: Deno.NetworkInterfaceInfo[];
  try {
    interfaces = Deno.networkInterfaces();
  } catch {
    return [
      "listening on every interface; run with --allow-sys=networkInterfaces (or -A) " +
      "to list the addresses other machines can use (or see `ip addr` / `ipconfig`)",
    ];
  }
  const ipv6 = host !== "0.0.0.0";
  const usable = interfaces.filter((i) =>
    !i.address.startsWith("127.") && i.address !== "::1" &&
    (i.family === "IPv4" ||
      (ipv6 && !i.address.toLowerCase().startsWith("fe80")))
  );
  if (usable.length === 0) {
    return [
      "listening on every interface, but this machine has no network address besides loopback",
    ];
  }
  return usable.map((i) =>
    `other machines can connect to ${
      formatAddress(i.address, port)
    } (${i.name})`
  );
}
