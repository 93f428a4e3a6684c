/**
 * A connection that reports every call to the wire view (`wire.ts`), then
 * makes it: `read`, `write`, `closeWrite`, `close`, and what they threw.
 *
 * A program calls {@linkcode wireAccepted} right after `accept()` and
 * {@linkcode wireConnected} right after `Deno.connect()`; with `--wire` off
 * (no log) they return the connection itself, so the program's hot path
 * holds the raw `Deno.Conn` and pays nothing.
 *
 * @example
 * ```ts ignore
 * import { wireLogFor } from "./wire.ts";
 * import { wireAccepted } from "./wire_conn.ts";
 *
 * const wire = wireLogFor(options.wire, { framing: "line" }); // undefined: off
 * for await (const conn of accepted(listener)) serve(wireAccepted(conn, wire));
 * ```
 *
 * @module
 */

import { writeAll } from "./io.ts";
import type { WireLog } from "./wire.ts";

/** What the wire view needs of a connection: the byte calls of a `Deno.Conn`. */
export type ByteConn = Pick<
  Deno.Conn,
  "read" | "write" | "close" | "closeWrite" | "localAddr" | "remoteAddr"
>;

/** The TCP extras a wrapped connection forwards when the inner one has them. */
type Extras = Partial<
  Pick<Deno.TcpConn, "setNoDelay" | "setKeepAlive" | "ref" | "unref">
>;

/** Read size of {@linkcode WireConn.readable}'s pulls. */
const STREAM_CHUNK = 64 * 1024;

/**
 * A connection whose calls are reported to a {@linkcode WireLog}, then made
 * on the inner connection. Usable wherever a `Deno.TcpConn` is; the TCP
 * extras (`setNoDelay`, …) do nothing when the inner connection lacks them.
 *
 * @example
 * ```ts ignore
 * import { WireLog } from "./wire.ts";
 * import { WireConn } from "./wire_conn.ts";
 * const conn = new WireConn(await Deno.connect({ port: 5000 }), new WireLog());
 * await conn.write(new TextEncoder().encode("hi\n")); // "wrote 3 bytes to …"
 * conn.close();
 * ```
 */
export class WireConn implements Deno.TcpConn {
  readonly #conn: ByteConn & Extras;
  readonly #log: WireLog;
  #closed = false;
  #readable?: ReadableStream<Uint8Array<ArrayBuffer>>;
  #writable?: WritableStream<Uint8Array<ArrayBufferLike>>;

  /** Wraps `conn`; its calls go to `log`. */
  constructor(conn: ByteConn & Extras, log: WireLog) {
    this.#conn = conn;
    this.#log = log;
  }

  /** Our address. */
  get localAddr(): Deno.NetAddr {
    return this.#conn.localAddr as Deno.NetAddr;
  }

  /** The peer's address. */
  get remoteAddr(): Deno.NetAddr {
    return this.#conn.remoteAddr as Deno.NetAddr;
  }

  /** `read()`, reported: the bytes, the end of stream, or the error. */
  async read(p: Uint8Array): Promise<number | null> {
    let n: number | null;
    try {
      n = await this.#conn.read(p);
    } catch (error) {
      this.#log.failed(this, { call: "read", error });
      throw error;
    }
    this.#log.read(this, n === null ? null : p.subarray(0, n));
    return n;
  }

  /** `write()`, reported: how many bytes the kernel took, or the error. */
  async write(p: Uint8Array): Promise<number> {
    let n: number;
    try {
      n = await this.#conn.write(p);
    } catch (error) {
      this.#log.failed(this, { call: "write", error });
      throw error;
    }
    this.#log.wrote(this, { asked: p, written: n });
    return n;
  }

  /** `closeWrite()` (a FIN), reported. */
  async closeWrite(): Promise<void> {
    try {
      await this.#conn.closeWrite();
    } catch (error) {
      this.#log.failed(this, { call: "closeWrite", error });
      throw error;
    }
    this.#log.closedWrite(this);
  }

  /** `close()`, reported once. */
  close(): void {
    if (!this.#closed) this.#log.closed(this);
    this.#closed = true;
    this.#conn.close();
  }

  /** Sets `TCP_NODELAY` on the inner connection, if it has the option. */
  setNoDelay(noDelay?: boolean): void {
    this.#conn.setNoDelay?.(noDelay);
  }

  /** Sets `SO_KEEPALIVE` on the inner connection, if it has the option. */
  setKeepAlive(keepAlive?: boolean): void {
    this.#conn.setKeepAlive?.(keepAlive);
  }

  /** Lets the connection keep the program alive (the default). */
  ref(): void {
    this.#conn.ref?.();
  }

  /** Lets the program exit while the connection is open. */
  unref(): void {
    this.#conn.unref?.();
  }

  /** The bytes received, as a stream; each pull is a reported `read`. */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    return this.#readable ??= new ReadableStream({
      pull: async (controller) => {
        const buffer = new Uint8Array(STREAM_CHUNK);
        const n = await this.read(buffer);
        if (n === null) controller.close();
        else controller.enqueue(buffer.slice(0, n));
      },
      cancel: () => this.close(),
    });
  }

  /** A stream to send bytes; each chunk goes out in reported `write`s. */
  get writable(): WritableStream<Uint8Array<ArrayBufferLike>> {
    return this.#writable ??= new WritableStream({
      write: (chunk) => writeAll(this, chunk),
      close: () => this.close(),
      abort: () => this.close(),
    });
  }

  /** Closes the connection. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * What wrapping a `C` gives: a `Deno.TcpConn` for a TCP connection, a
 * `Deno.Conn` for another connection, else the byte calls alone.
 */
export type Wired<C extends ByteConn> = C extends Deno.TcpConn ? Deno.TcpConn
  : C extends Deno.Conn ? Deno.Conn
  : ByteConn;

/**
 * Wraps `conn` so its calls are reported to `log`; without a log, returns
 * `conn` itself.
 *
 * @example
 * ```ts ignore
 * import { wireConn } from "./wire_conn.ts";
 * const conn = wireConn(await Deno.connect({ port: 5000 }), wire);
 * ```
 */
export function wireConn<C extends ByteConn>(
  conn: C,
  log: WireLog | undefined,
): Wired<C> {
  return (log ? new WireConn(conn, log) : conn) as Wired<C>;
}

/**
 * Call right after `accept()`: reports it, and wraps `conn` (see
 * {@linkcode wireConn}). Without a log, returns `conn` itself.
 *
 * @example
 * ```ts ignore
 * import { wireAccepted } from "./wire_conn.ts";
 * for await (const conn of accepted(listener)) serve(wireAccepted(conn, wire));
 * ```
 */
export function wireAccepted<C extends ByteConn>(
  conn: C,
  log: WireLog | undefined,
): Wired<C> {
  log?.accepted(conn);
  return wireConn(conn, log);
}

/**
 * Call right after `Deno.connect()`: reports it, and wraps `conn` (see
 * {@linkcode wireConn}). Without a log, returns `conn` itself.
 *
 * @example
 * ```ts ignore
 * import { wireConnected } from "./wire_conn.ts";
 * const conn = wireConnected(await connectOrExit(options), wire);
 * ```
 */
export function wireConnected<C extends ByteConn>(
  conn: C,
  log: WireLog | undefined,
): Wired<C> {
  log?.connected(conn);
  return wireConn(conn, log);
}
