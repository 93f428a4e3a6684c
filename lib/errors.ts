/**
 * Connection errors, said as plain sentences with the hint a user needs.
 *
 * Deno reports socket failures as `Deno.errors.*` classes carrying the
 * operating system's terse text ("Address already in use (os error 98)").
 * {@linkcode explainNetError} turns each into what happened and what to
 * do; {@linkcode exitWithError} prints it without a stack trace and ends the
 * program with a non-zero code.
 *
 * @example
 * ```ts
 * import { explainNetError, exitWithError } from "./errors.ts";
 *
 * try {
 *   Deno.listen({ hostname: "127.0.0.1", port: 5000 });
 * } catch (error) {
 *   exitWithError(explainNetError(error, { action: "listen", host: "127.0.0.1", port: 5000 }));
 * }
 * ```
 *
 * @module
 */

import { styles } from "./std.ts";

/** What the program was doing when the error happened, and where. */
export interface NetErrorContext {
  /** `listen` for servers, `connect` for clients, `transfer` mid-session. */
  action: "listen" | "connect" | "transfer";
  /** The host name or address as the user gave it. */
  host: string;
  /** The port as the user gave it. */
  port: number;
  /** For `connect`: the time limit in seconds (`--connect-timeout`), said in a timeout. */
  connectTimeout?: number;
}

/**
 * The server closed the connection while the client still had something
 * to say: not a failure of the network, but the end of the session from
 * the other side. {@linkcode explainNetError} says its message as it is.
 *
 * @example
 * ```ts
 * import { ServerClosedError } from "./errors.ts";
 * new ServerClosedError().message; // "the server closed the connection."
 * ```
 */
export class ServerClosedError extends Error {
  /** The error's name. */
  override name = "ServerClosedError";

  /** Makes the error; the default message suits most cases. */
  constructor(message = "the server closed the connection.") {
    super(message);
  }
}

/** `host:port`, with IPv6 addresses in brackets: `[::1]:5000`. */
export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Whether `error` means the peer went away (reset, broken pipe, aborted):
 * an ordinary event for a server, not a failure of the server.
 *
 * @example
 * ```ts
 * import { isDisconnect } from "./errors.ts";
 * isDisconnect(new Deno.errors.ConnectionReset("reset")); // true
 * ```
 */
export function isDisconnect(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.UnexpectedEof;
}

/**
 * Why a read from a peer failed, as a short phrase for a `has left (…)`
 * notice; `null` where the connection was closed on our side. Whatever else
 * a read throws is the connection's end, never the server's: a TLS record
 * that does not decrypt (`InvalidData`) included.
 *
 * @example
 * ```ts
 * import { readFailure } from "./errors.ts";
 * readFailure(new Deno.errors.ConnectionReset("")); // "connection reset"
 * readFailure(new Deno.errors.InvalidData("cannot decrypt peer's message"));
 * // "TLS error: cannot decrypt peer's message"
 * readFailure(new Deno.errors.BadResource("")); // null
 * ```
 */
export function readFailure(error: unknown): string | null {
  if (
    error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted
  ) return null;
  if (error instanceof Deno.errors.ConnectionReset) return "connection reset";
  if (error instanceof Deno.errors.InvalidData) {
    return `TLS error: ${error.message}`; // only a TLS read says this
  }
  return "connection lost";
}

/**
 * Explains a socket error in one or two sentences: what happened at which
 * address, and what to do about it. Unknown errors keep their own message.
 *
 * @example
 * ```ts
 * import { explainNetError } from "./errors.ts";
 * const text = explainNetError(
 *   new Deno.errors.ConnectionRefused("Connection refused (os error 111)"),
 *   { action: "connect", host: "127.0.0.1", port: 5000 },
 * );
 * // "cannot connect to 127.0.0.1:5000: connection refused. Nothing is listening there: ..."
 * ```
 */
export function explainNetError(
  error: unknown,
  context: NetErrorContext,
): string {
  const where = formatAddress(context.host, context.port);
  const doing = {
    listen: `cannot listen on ${where}`,
    connect: `cannot connect to ${where}`,
    transfer: `connection with ${where} failed`,
  }[context.action];
  const detail = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;

  if (error instanceof ServerClosedError) return error.message;

  if (error instanceof Deno.errors.AddrInUse) {
    return `${doing}: address already in use. Another program (perhaps an ` +
      `earlier copy of this server) holds port ${context.port}: stop it, ` +
      `or choose another port with --port.`;
  }
  if (error instanceof Deno.errors.ConnectionRefused) {
    return `${doing}: connection refused. Nothing is listening there: ` +
      `start the server first, check --host and --port, or a firewall ` +
      `on the server is rejecting the connection.`;
  }
  if (error instanceof Deno.errors.NotCapable) {
    return `${doing}: Deno was not given network permission for ` +
      `${context.host}. Run it with --allow-net (or -A); the :server and ` +
      `:client tasks allow this machine only (deno task sandbox:lan does not).`;
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return context.action === "listen" && context.port > 0 &&
        context.port < 1024
      ? `${doing}: permission denied. Ports below 1024 are reserved for ` +
        `the administrator: use a port of 1024 or above (e.g. --port 5000).`
      : `${doing}: permission denied by the operating system (a firewall ` +
        `or security policy). Allow the program, or try another port.`;
  }
  if (error instanceof Deno.errors.AddrNotAvailable) {
    return context.action === "listen"
      ? `${doing}: address not available. ${context.host} is not an ` +
        `address of this machine: use one that \`ip addr\` (or ` +
        `\`ipconfig\` on Windows) lists, or --host 0.0.0.0 for all of them.`
      : `${doing}: address not available. This machine has no address ` +
        `from which to reach ${context.host}: check the network connection.`;
  }
  if (
    error instanceof Deno.errors.NotFound ||
    /lookup address|name or service not known|nodename nor servname|no such host/i
      .test(detail)
  ) {
    return `${doing}: host "${context.host}" not found. Check the ` +
      `spelling, or use an IP address such as 127.0.0.1 or 192.168.1.23.`;
  }
  if (error instanceof URIError) {
    return `${doing}: "${context.host}" is not a valid host name or IP address.`;
  }
  if (
    error instanceof Deno.errors.TimedOut ||
    (error instanceof DOMException && error.name === "TimeoutError")
  ) {
    const limit = context.action === "connect" && context.connectTimeout
      ? ` after ${context.connectTimeout} s (--connect-timeout)`
      : "";
    return `${doing}: timed out${limit}, no answer. The server may be ` +
      `down, the address wrong, or a firewall is silently dropping packets.`;
  }
  // Deno has no class for EHOSTUNREACH: a plain Error with that code.
  if (
    code === "EHOSTUNREACH" ||
    /no route to host|unreachable host/i.test(detail)
  ) {
    return `${doing}: no route to host. No machine answered at ` +
      `${context.host}: it may be off or asleep, the IP address wrong, or ` +
      `on another network: check the address, and that both machines are ` +
      `on the same network (the same Wi-Fi).`;
  }
  if (error instanceof Deno.errors.NetworkUnreachable) {
    return `${doing}: network unreachable. Check that this machine is on ` +
      `the same network as ${context.host}.`;
  }
  if (error instanceof Deno.errors.ConnectionReset) {
    return `${doing}: connection reset by the other side (it closed ` +
      `abruptly or crashed).`;
  }
  if (
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionAborted
  ) {
    return `${doing}: the other side closed the connection while we were sending.`;
  }
  return `${doing}: ${detail}`;
}

/**
 * What a peer's going away looks like from a server, as a short phrase:
 * `reset the connection (closed abruptly or crashed)`.
 *
 * @example
 * ```ts
 * import { describePeerError } from "./errors.ts";
 * describePeerError(new Deno.errors.ConnectionReset("reset"));
 * // "reset the connection (closed abruptly or crashed)"
 * ```
 */
export function describePeerError(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionReset) {
    return "reset the connection (closed abruptly or crashed)";
  }
  if (
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionAborted
  ) {
    return "closed the connection while we were sending";
  }
  return `failed: ${error instanceof Error ? error.message : String(error)}`;
}

/**
 * Prints `error: MESSAGE` to stderr (in red on a terminal) and exits with
 * `code` (default 1). No stack trace: the message says it all.
 *
 * @example
 * ```ts ignore
 * import { exitWithError } from "./errors.ts";
 * exitWithError("cannot connect to 127.0.0.1:5000: connection refused.");
 * ```
 */
export function exitWithError(message: string, code = 1): never {
  console.error(`${styles.red("error:")} ${message}`);
  Deno.exit(code);
}
