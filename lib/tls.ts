/**
 * TLS for the chat programs: the server's listener and handshake, and the
 * client's connection, verified one of four ways.
 *
 * A client verifies the server's certificate against the trusted roots (by
 * default), against a copy of the server's certificate (`--ca FILE`), by
 * its SHA-256 fingerprint (`--fingerprint AB:CD:…`, the one the server
 * printed), or not at all (`--insecure`). A certificate that does not
 * verify is refused before a byte of the chat is sent, with a sentence that
 * shows the fingerprint the server presented and which flag to use.
 *
 * Either side also tells a peer that speaks plain TCP from one that speaks
 * TLS, and says so instead of a cryptic TLS error.
 *
 * @example
 * ```ts ignore
 * import { connectTls } from "./tls.ts";
 * const conn = await connectTls({ host: "192.168.1.23", port: 5003 }, {
 *   fingerprint: "86:62:1E:…:6F:82",
 *   signal: AbortSignal.timeout(10_000),
 * });
 * conn.close();
 * ```
 *
 * @module
 */

import * as nodeTls from "node:tls";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { CertificateError, formatFingerprint } from "./certificate.ts";
import { formatAddress } from "./errors.ts";
import { closeQuietly } from "./io.ts";
import { deadline } from "./std.ts";
import type { Endpoint } from "./net.ts";

export type { Endpoint };

/**
 * A byte stream to a peer, as the sessions use it. `Deno.Conn` (and so
 * `Deno.TlsConn`) is one; {@linkcode connectTls} returns one.
 */
export interface StreamConn {
  /** Reads into `p`; resolves to the byte count, or `null` at end of stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes some of `p`; resolves to how many bytes were taken. */
  write(p: Uint8Array): Promise<number>;
  /** Ends our sending side; the peer reads end of stream, we still read. */
  closeWrite(): Promise<void>;
  /** Closes the connection; a pending read rejects with `Interrupted`. */
  close(): void;
  /** The peer's address. */
  readonly remoteAddr: Deno.Addr;
  /** Our address. */
  readonly localAddr: Deno.Addr;
}

/** How {@linkcode connectTls} verifies the server. */
export interface ConnectTlsOptions {
  /**
   * `--ca`: the server's certificate (or the authority that signed it), as
   * a PEM file path or PEM text. Default: the trusted roots.
   */
  ca?: string;
  /**
   * `--fingerprint`: accept exactly the certificate with this SHA-256
   * fingerprint (hex, colons and case optional).
   */
  fingerprint?: string;
  /** `--insecure`: no verification at all; the caller warns each time. */
  insecure?: boolean;
  /** Gives up (rejecting with its reason) when it aborts: `--connect-timeout`. */
  signal?: AbortSignal;
}

/** What kind of failure a {@linkcode TlsError} is. */
export type TlsFailure =
  /** The certificate did not verify (roots or `--ca`). */
  | "untrusted"
  /** The certificate is not the one `--fingerprint` names. */
  | "pin-mismatch"
  /** The server speaks plain TCP. */
  | "plain-server"
  /** The handshake failed otherwise. */
  | "handshake"
  /** `--ca`, `--fingerprint` or `--insecure` given wrongly. */
  | "options";

/** A TLS connection refused or failed; the message is the sentence to show. */
export class TlsError extends Error {
  /** Always `"TlsError"`. */
  override name = "TlsError";
  /** What kind of failure. */
  readonly failure: TlsFailure;
  /** The SHA-256 fingerprint the server presented, when known. */
  readonly presented?: string;

  /** Makes one; `message` is a full sentence. */
  constructor(failure: TlsFailure, message: string, presented?: string) {
    super(message);
    this.failure = failure;
    this.presented = presented;
  }
}

/** Bytes a {@linkcode connectTls} connection holds unread before it pauses. */
const READ_BOUND = 64 * 1024;

// ---------------------------------------------------------------------------
// Server

/** The certificate and key a TLS listener serves (a `ServerCertificate` is one). */
export interface TlsCertificate {
  /** PEM certificate chain. */
  cert: string;
  /** PEM private key. */
  key: string;
}

/** Options of {@linkcode listenTls}. */
export interface ListenTlsOptions {
  /** Several listeners on one port (the threaded server's workers). */
  reusePort?: boolean;
}

/**
 * `socket() → bind() → listen()` with TLS: `Deno.listenTls`. A certificate
 * or key that cannot be used throws a `CertificateError` saying why; socket
 * errors (`AddrInUse`, …) are thrown as they are, for `explainNetError`.
 *
 * @example
 * ```ts ignore
 * import { serverCertificate } from "./certificate.ts";
 * import { listenTls } from "./tls.ts";
 * const listener = listenTls({ host: "0.0.0.0", port: 5003 }, await serverCertificate());
 * listener.close();
 * ```
 */
export function listenTls(
  endpoint: Endpoint,
  certificate: TlsCertificate,
  options: ListenTlsOptions = {},
): Deno.TlsListener {
  try {
    return Deno.listenTls({
      hostname: endpoint.host,
      port: endpoint.port,
      cert: certificate.cert,
      key: certificate.key,
      reusePort: options.reusePort,
    });
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    if (/KeyMismatch|keys may not be consistent/i.test(text)) {
      throw new CertificateError(
        "the private key (--key) does not belong to the certificate " +
          "(--cert): give the key the certificate was made with.",
      );
    }
    if (/no certificates found/i.test(text)) {
      throw new CertificateError(
        "the certificate (--cert) holds no usable PEM certificate: give " +
          "a PEM file that starts with -----BEGIN CERTIFICATE-----.",
      );
    }
    if (/no keys found|private key/i.test(text)) {
      throw new CertificateError(
        `the private key (--key) cannot be used (${text}): give an ` +
          "unencrypted PEM key (PKCS#8, SEC1 or PKCS#1).",
      );
    }
    throw error;
  }
}

/** Options of {@linkcode acceptHandshake}. */
export interface AcceptHandshakeOptions {
  /** Give up on a client that sends no handshake after this long (default 10 s). */
  timeoutMs?: number;
}

/**
 * Whether `conn` is TLS (accepted by `Deno.listenTls`): its handshake comes
 * before anything else.
 *
 * @example
 * ```ts ignore
 * import { isTls } from "./tls.ts";
 * if (isTls(conn)) await conn.handshake();
 * ```
 */
export function isTls(conn: Deno.Conn): conn is Deno.TlsConn {
  return "handshake" in conn;
}

/**
 * Runs the server side of the handshake of an accepted connection, before
 * the server says anything to it (a plain TCP connection has none: `null`). Resolves `null` when it completed, or a
 * phrase for the log (`127.0.0.1:5123 ` + phrase) when it did not, in
 * which case the connection is closed.
 *
 * A compromise of Deno 2.9: a `Deno.TlsConn` closed before its handshake
 * ends keeps its socket open until the client sends something or goes
 * away (rustls-tokio-stream finishes a handshake before it closes). A
 * silent client given up on here costs the server a file descriptor, and
 * nothing else, until then.
 *
 * @example
 * ```ts ignore
 * import { acceptHandshake } from "./tls.ts";
 * const failure = await acceptHandshake(conn);
 * if (failure) log(`${peer} ${failure}`);
 * ```
 */
export async function acceptHandshake(
  conn: Deno.Conn,
  options: AcceptHandshakeOptions = {},
): Promise<string | null> {
  if (!isTls(conn)) return null; // plain TCP: nothing to do
  const ms = options.timeoutMs ?? 10_000;
  const handshake = conn.handshake();
  try {
    await deadline(handshake, ms);
    return null;
  } catch (error) {
    closeQuietly(conn);
    if (error instanceof DOMException && error.name === "TimeoutError") {
      handshake.catch(() => {}); // rejected by the close above
      return `sent no TLS handshake within ${
        ms / 1000
      } s (a client without --tls?); given up (Deno keeps the socket until ` +
        "it sends or leaves)";
    }
    return describeHandshakeFailure(error);
  }
}

/** A server's phrase for a client's failed handshake. */
function describeHandshakeFailure(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  if (isPlainTextError(text)) {
    return "sent plain text, not TLS (a client without --tls?); closed";
  }
  if (/alert: (UnknownCA|BadCertificate|CertificateUnknown)/i.test(text)) {
    return "does not trust this server's certificate (the client needs " +
      "--ca or --fingerprint); closed";
  }
  if (
    error instanceof Deno.errors.UnexpectedEof ||
    error instanceof Deno.errors.ConnectionReset || /eof/i.test(text)
  ) {
    return "closed the connection during the TLS handshake";
  }
  return `failed the TLS handshake (${text}); closed`;
}

// ---------------------------------------------------------------------------
// Client

/**
 * `socket() → connect()`, then the TLS handshake, verified as `options`
 * say (see {@linkcode ConnectTlsOptions}); resolves once the server is
 * verified, before anything is sent. Rejects with a {@linkcode TlsError}
 * (its message is the sentence to show), with the `Deno.errors` of the
 * connection (`ConnectionRefused`, … for `explainNetError`), or with the
 * signal's reason when it aborts.
 *
 * @example
 * ```ts ignore
 * import { connectTls } from "./tls.ts";
 * const conn = await connectTls({ host: "localhost", port: 5003 }, {
 *   ca: "server-cert.pem",
 * });
 * await conn.write(new TextEncoder().encode("hello\n"));
 * conn.close();
 * ```
 */
export async function connectTls(
  endpoint: Endpoint,
  options: ConnectTlsOptions = {},
): Promise<StreamConn> {
  const chosen = [
    options.ca !== undefined && "--ca",
    options.fingerprint !== undefined && "--fingerprint",
    options.insecure && "--insecure",
  ].filter(Boolean);
  if (chosen.length > 1) {
    throw new TlsError(
      "options",
      `${chosen.join(" and ")} cannot go together: --ca checks the ` +
        `certificate against a file, --fingerprint against its fingerprint, ` +
        `--insecure not at all; choose one.`,
    );
  }
  if (options.fingerprint !== undefined) {
    const pin = parseFingerprint(options.fingerprint);
    const { conn, presented } = await nodeHandshake(endpoint, options.signal);
    if (presented !== pin) {
      conn.close();
      throw new TlsError(
        "pin-mismatch",
        `cannot connect to ${where(endpoint)} with TLS: its certificate ` +
          `has SHA-256 fingerprint ${presented}, not ${pin} as given with ` +
          `--fingerprint, so nothing was sent. Compare both with the one ` +
          `the server printed: if the server has a new certificate, use its ` +
          `fingerprint; if not, someone may be intercepting the connection.`,
        presented,
      );
    }
    return conn;
  }
  if (options.insecure) {
    return (await nodeHandshake(endpoint, options.signal)).conn;
  }
  const caCerts = options.ca === undefined
    ? undefined
    : [await readCa(options.ca)];
  return await verifiedHandshake(endpoint, caCerts, options);
}

/**
 * A fingerprint as given by a user (`ab:cd…`, `ABCD…`, or openssl's whole
 * `sha256 Fingerprint=AB:…` line) in the form openssl prints it; throws a
 * {@linkcode TlsError} for anything but 32 bytes of hex.
 *
 * @example
 * ```ts
 * import { parseFingerprint } from "./tls.ts";
 * parseFingerprint("ab".repeat(32)).slice(0, 8); // "AB:AB:AB"
 * ```
 */
export function parseFingerprint(text: string): string {
  const hex = text.trim().replace(/^sha-?256\s*fingerprint\s*=\s*/i, "")
    .replace(/[:\s]/g, "").toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) {
    throw new TlsError(
      "options",
      `--fingerprint ${JSON.stringify(text)} is not a SHA-256 fingerprint: ` +
        `give the 32 hex pairs the server printed (AB:CD:…, colons optional).`,
    );
  }
  return hex.match(/../g)!.join(":");
}

/** Where a handshake failed, and what the server presented. */
export interface HandshakeErrorContext extends Endpoint {
  /** The SHA-256 fingerprint the server presented, when known. */
  presented?: string;
  /** The `--ca` option, when given. */
  ca?: string;
}

/**
 * The sentence for a failed client handshake: which kind of failure, what
 * it means and which flag helps. Used by {@linkcode connectTls}; exported
 * for a TLS error that surfaces later.
 *
 * @example
 * ```ts
 * import { explainHandshakeError } from "./tls.ts";
 * const error = explainHandshakeError(
 *   new Error("received corrupt message of type InvalidContentType"),
 *   { host: "127.0.0.1", port: 5003 },
 * );
 * error.failure; // "plain-server"
 * ```
 */
export function explainHandshakeError(
  error: unknown,
  context: HandshakeErrorContext,
): TlsError {
  const { presented, ...endpoint } = context;
  const text = error instanceof Error ? error.message : String(error);
  const at = where(endpoint);
  if (isPlainTextError(text)) {
    return new TlsError(
      "plain-server",
      `cannot connect to ${at} with TLS: the server answered in plain ` +
        `text, so it speaks plain TCP: connect without --tls (or start the ` +
        `server with --tls).`,
    );
  }
  const certificate = text.match(/invalid peer certificate: (.*)/)?.[1];
  if (certificate !== undefined) {
    const pin = presented ?? "FINGERPRINT";
    const against = context.ca === undefined
      ? "an authority trusted here"
      : context.ca.includes("-----BEGIN")
      ? "the --ca certificate"
      : `--ca ${context.ca}`;
    const forName = /not valid for name|NotValidForName/i.test(certificate);
    const why = /UnknownIssuer/.test(certificate)
      ? context.ca === undefined
        ? `it is self-signed or signed by an authority not trusted here`
        : `it is neither ${against} nor signed by it`
      : /expired/i.test(certificate)
      ? "it has expired (or this machine's clock is wrong)"
      : /not valid yet|NotValidYet/i.test(certificate)
      ? "it is not valid yet (or this machine's clock is wrong)"
      : forName
      ? `it is not made for the name ${endpoint.host}`
      : /CaUsedAsEndEntity/.test(certificate)
      ? "it is a CA certificate, which cannot be a server's own (make a " +
        "leaf certificate, CA:FALSE)"
      : /BadSignature/.test(certificate)
      ? "its signature does not verify"
      : /Revoked/.test(certificate)
      ? "it has been revoked"
      : `rustls says: ${certificate}`;
    const advice = forName
      ? `Connect with a name or address it covers, or with ` +
        `--fingerprint ${pin} as the server printed it.`
      : `Connect with --fingerprint ${pin} as the server printed it ` +
        `(TLS: SHA-256 fingerprint …), or with --ca FILE holding a copy of ` +
        `the server's certificate; --insecure, the last resort, skips the ` +
        `check, and anyone on the network could then read and change the chat.`;
    const seen = presented ? ` Its SHA-256 fingerprint is ${presented}.` : "";
    return new TlsError(
      "untrusted",
      `cannot connect to ${at} with TLS: its certificate does not verify ` +
        `(${why}), so nothing was sent.${seen} ${advice}`,
      presented,
    );
  }
  if (
    error instanceof Deno.errors.UnexpectedEof || /eof|disconnected/i.test(text)
  ) {
    return new TlsError(
      "handshake",
      `cannot connect to ${at} with TLS: the server closed the ` +
        `connection during the handshake; it may speak plain TCP (then ` +
        `connect without --tls), or it refused us.`,
    );
  }
  return new TlsError(
    "handshake",
    `cannot connect to ${at} with TLS: the handshake failed (${text}).`,
  );
}

/** Errors of a TLS endpoint that received something other than TLS. */
function isPlainTextError(text: string): boolean {
  return /InvalidContentType|wrong version number|corrupt message|got ClientHello when expecting/i
    .test(text);
}

function where(endpoint: Endpoint): string {
  return formatAddress(endpoint.host, endpoint.port);
}

/** The PEM text of `--ca`: given as text, or read from a file. */
async function readCa(ca: string): Promise<string> {
  let pem = ca;
  if (!ca.includes("-----BEGIN")) {
    try {
      pem = await Deno.readTextFile(ca);
    } catch (error) {
      throw new TlsError(
        "options",
        error instanceof Deno.errors.NotFound
          ? `the --ca file ${ca} does not exist: copy the server's ` +
            `certificate (the file the server printed) to this machine and ` +
            `give its path.`
          : `cannot read the --ca file ${ca}: ${
            error instanceof Error ? error.message : String(error)
          }.`,
      );
    }
  }
  if (!/-----BEGIN CERTIFICATE-----/.test(pem)) {
    throw new TlsError(
      "options",
      `${
        pem === ca ? "the --ca text" : `the --ca file ${ca}`
      } is not a PEM certificate (no -----BEGIN CERTIFICATE----- line): give ` +
        `a copy of the server's certificate file.`,
    );
  }
  return pem;
}

/**
 * TCP, then a TLS handshake that verifies (rustls, as `Deno.connectTls`
 * does). On a certificate that does not verify, a second connection reads
 * what the server presented, for the error.
 */
async function verifiedHandshake(
  endpoint: Endpoint,
  caCerts: string[] | undefined,
  options: ConnectTlsOptions,
): Promise<Deno.TlsConn> {
  const tcp = await Deno.connect({
    hostname: endpoint.host,
    port: endpoint.port,
    signal: options.signal,
  });
  tcp.setNoDelay(true); // whole lines go out at once
  const conn = await Deno.startTls(tcp, {
    hostname: endpoint.host,
    caCerts,
  });
  const signal = options.signal;
  const abort = () => closeQuietly(conn);
  signal?.addEventListener("abort", abort, { once: true });
  try {
    await conn.handshake();
    return conn;
  } catch (error) {
    closeQuietly(conn);
    if (signal?.aborted) throw signal.reason;
    // (No second connection to learn the certificate's fingerprint: it
    // would join the chat. The server prints its fingerprint.)
    throw explainHandshakeError(error, { ...endpoint, ca: options.ca });
  } finally {
    signal?.removeEventListener("abort", abort);
  }
}

/**
 * A handshake with `node:tls` that accepts any certificate (`Deno.TlsConn`
 * does not show the peer's certificate; `node:tls` does), and the SHA-256
 * fingerprint of the certificate presented. Resolves before anything is
 * sent.
 */
function nodeHandshake(
  endpoint: Endpoint,
  signal: AbortSignal | undefined,
): Promise<{ conn: NodeTlsConn; presented: string }> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    // allowHalfOpen (missing from the types, honoured by Deno): like a
    // Deno.Conn, the server's end of sending leaves ours open.
    const connectOptions: nodeTls.ConnectionOptions & {
      allowHalfOpen: boolean;
    } = {
      host: endpoint.host,
      port: endpoint.port,
      rejectUnauthorized: false,
      allowHalfOpen: true,
    };
    const socket = nodeTls.connect(connectOptions);
    const abort = () => {
      socket.destroy();
      reject(signal!.reason);
    };
    const fail = (error: Error) => {
      signal?.removeEventListener("abort", abort);
      socket.destroy();
      const net = denoNetError(error);
      reject(net ?? explainHandshakeError(error, endpoint));
    };
    signal?.addEventListener("abort", abort, { once: true });
    socket.once("error", fail);
    socket.once("secureConnect", () => {
      signal?.removeEventListener("abort", abort);
      socket.off("error", fail);
      socket.setNoDelay(true);
      const raw = socket.getPeerCertificate()?.raw;
      if (!raw) {
        socket.destroy();
        return reject(
          new TlsError(
            "handshake",
            `cannot connect to ${
              where(endpoint)
            } with TLS: the server presented no certificate.`,
          ),
        );
      }
      // Synchronously, so the connection's listeners are in place before
      // any further event of the socket.
      resolve({
        conn: new NodeTlsConn(socket),
        presented: formatFingerprint(createHash("sha256").update(raw).digest()),
      });
    });
  });
}

/** `node:net` error codes as the `Deno.errors` that `explainNetError` knows. */
const NET_ERRORS: Record<string, new (message: string) => Error> = {
  ECONNREFUSED: Deno.errors.ConnectionRefused,
  ECONNRESET: Deno.errors.ConnectionReset,
  ECONNABORTED: Deno.errors.ConnectionAborted,
  EPIPE: Deno.errors.BrokenPipe,
  ETIMEDOUT: Deno.errors.TimedOut,
  ENETUNREACH: Deno.errors.NetworkUnreachable,
  EHOSTUNREACH: Deno.errors.NetworkUnreachable,
  EADDRNOTAVAIL: Deno.errors.AddrNotAvailable,
  ENOTFOUND: Deno.errors.NotFound,
  EAI_NONAME: Deno.errors.NotFound,
  EAI_AGAIN: Deno.errors.NotFound,
  EACCES: Deno.errors.PermissionDenied,
};

/** A socket-level error of `node:net` as a `Deno.errors` one, or `null`. */
function denoNetError(error: Error): Error | null {
  if (error instanceof Deno.errors.NotCapable) return error;
  const code = (error as { code?: string }).code ?? "";
  // A reset during the handshake is a TLS matter (see explainHandshakeError).
  if (code === "ECONNRESET" && /TLS|secure/i.test(error.message)) return null;
  const Class = NET_ERRORS[code];
  return Class ? new Class(error.message) : null;
}

/**
 * A `node:tls` socket as a {@linkcode StreamConn}: reads come from a queue
 * of received chunks that pauses the socket at {@linkcode READ_BOUND}
 * bytes; a write resolves once the socket has taken the bytes.
 */
class NodeTlsConn implements StreamConn {
  readonly remoteAddr: Deno.NetAddr;
  readonly localAddr: Deno.NetAddr;
  readonly #socket: nodeTls.TLSSocket;
  #chunks: Uint8Array[] = [];
  #queued = 0;
  #ended = false;
  #closed = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;

  constructor(socket: nodeTls.TLSSocket) {
    this.#socket = socket;
    this.remoteAddr = {
      transport: "tcp",
      hostname: socket.remoteAddress ?? "",
      port: socket.remotePort ?? 0,
    };
    this.localAddr = {
      transport: "tcp",
      hostname: socket.localAddress ?? "",
      port: socket.localPort ?? 0,
    };
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#queued += chunk.length;
      if (this.#queued >= READ_BOUND) socket.pause();
      this.#wakeReader();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#wakeReader();
    });
    socket.on("error", (error: Error) => {
      this.#error = denoNetError(error) ?? error;
      this.#wakeReader();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#wakeReader();
    });
  }

  #wakeReader(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async read(p: Uint8Array): Promise<number | null> {
    this.#checkOpen();
    while (this.#chunks.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      if (this.#closed) throw new Deno.errors.Interrupted("operation canceled");
    }
    const chunk = this.#chunks[0];
    const n = Math.min(p.length, chunk.length);
    p.set(chunk.subarray(0, n));
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    this.#queued -= n;
    if (this.#queued < READ_BOUND / 2 && this.#socket.isPaused()) {
      this.#socket.resume();
    }
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    this.#checkOpen();
    if (this.#error) return Promise.reject(this.#error);
    // A copy: the caller may reuse its buffer once this resolves.
    const copy = Buffer.from(p);
    return new Promise((resolve, reject) => {
      this.#socket.write(copy, (error?: Error | null) => {
        if (error) reject(denoNetError(error) ?? error);
        else resolve(p.length);
      });
    });
  }

  closeWrite(): Promise<void> {
    this.#checkOpen();
    return new Promise((resolve) => this.#socket.end(resolve));
  }

  close(): void {
    this.#checkOpen();
    this.#closed = true;
    this.#socket.destroy();
    this.#wakeReader();
  }

  #checkOpen(): void {
    if (this.#closed) throw new Deno.errors.BadResource("Bad resource ID");
  }
}
