/**
 * A man in the middle you control: a TCP proxy that chops, delays, merges,
 * throttles, stalls and resets the byte stream on purpose, so you can watch
 * your programs cope with what TCP is allowed to do.
 *
 * TCP delivers bytes, not messages: a line sent in one `write` may arrive
 * one byte per `read`, and two lines may arrive in one. On loopback that
 * almost never happens by chance; here it happens on request:
 *
 * - `--chunk N` writes at most N bytes at a time; `--delay MS` holds each
 *   chunk, `--jitter MS` adds a random extra delay.
 * - `--merge MS` holds what arrives for MS, then writes it in one write.
 * - `--rate BYTES/S` throttles each direction.
 * - `--stall-after BYTES` stops reading a direction: the sender's writes
 *   block once the buffers between fill (backpressure).
 * - `--reset-after BYTES` resets both connections mid-stream (RST, not FIN).
 * - `--direction up|down|both` picks the way(s) these apply: up is client to
 *   server.
 * - `--wire [text|hex]` shows every read and write on both sides.
 *
 * Try it:
 *   deno run -A sandbox/server.ts                                        # terminal A
 *   deno run -A sandbox/proxy.ts --listen 5004 --to 127.0.0.1:5003 \
 *     --chunk 1 --delay 20 --wire --framing line                         # terminal B
 *   deno run -A sandbox/client.ts --port 5004                            # terminal C
 *   deno run -A sandbox/client.ts                                        # terminal D
 *
 * The sockets are `node:net` ones, seen through a `read`/`write` interface
 * like `Deno.Conn`'s: Deno's own connections cannot send a reset (no
 * `SO_LINGER`), and `socket.resetAndDestroy()` can.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import * as net from "node:net";
import {
  type CliOptions,
  DEFAULT_HOST,
  parseCliOrExit,
  usage,
} from "../lib/cli.ts";
import {
  describePeerError,
  exitWithError,
  explainNetError,
  formatAddress,
} from "../lib/errors.ts";
import { READ_BUFFER_SIZE, writeAll } from "../lib/io.ts";
import { log, warn } from "../lib/log.ts";
import { addressOf, type Endpoint, sayListening } from "../lib/net.ts";
import { onShutdown } from "../lib/shutdown.ts";
import { delay } from "../lib/std.ts";
import { WIRE_FLAG, type WireLog, wireLogFor } from "../lib/wire.ts";
import {
  type ByteConn,
  wireAccepted,
  wireConnected,
} from "../lib/wire_conn.ts";
import { settledWithin } from "../lib/std.ts";

const DEFAULT_PORT = 5004;
const DEFAULT_TARGET = "127.0.0.1:5003";

const FLAGS = {
  to: {
    type: "string",
    description: "where to forward each connection",
    placeholder: "HOST:PORT",
    default: DEFAULT_TARGET,
  },
  listen: {
    type: "string",
    description: "where to listen (instead of --host and --port)",
    placeholder: "[HOST:]PORT",
  },
  chunk: {
    type: "integer",
    description: "write at most BYTES at a time",
    placeholder: "BYTES",
    min: 1,
  },
  delay: {
    type: "number",
    description: "hold each chunk MS milliseconds before writing it",
    placeholder: "MS",
    default: 0,
  },
  jitter: {
    type: "number",
    description: "add a random 0 to MS milliseconds to each chunk's delay",
    placeholder: "MS",
    default: 0,
  },
  rate: {
    type: "integer",
    description: "forward at most BYTES/S bytes a second",
    placeholder: "BYTES/S",
    min: 1,
  },
  merge: {
    type: "number",
    description: "hold what arrives for MS, then write it in one write",
    placeholder: "MS",
    default: 0,
  },
  stallAfter: {
    type: "integer",
    description: "after BYTES, stop reading: the sender's writes block",
    placeholder: "BYTES",
  },
  resetAfter: {
    type: "integer",
    description: "after BYTES, reset both connections (RST)",
    placeholder: "BYTES",
  },
  direction: {
    type: "string",
    description:
      "which way the options above apply: up (client to server), down, or both",
    choices: ["up", "down", "both"],
    default: "both",
  },
  wire: WIRE_FLAG,
  framing: {
    type: "string",
    description: "message boundaries --wire draws",
    choices: ["none", "line", "length"],
    default: "none",
  },
} as const;

const SPEC = {
  script: "sandbox/proxy.ts",
  summary:
    "a TCP proxy that chops, delays, merges, throttles, stalls or resets the stream.",
  role: "server",
  defaultPort: DEFAULT_PORT,
  flags: FLAGS,
  example: "--listen 5004 --to 127.0.0.1:5003 --chunk 1 --delay 20",
} as const;

type Options = CliOptions<typeof FLAGS>;

/** What the proxy does to the bytes of one direction. */
interface Plan {
  /** Write at most this many bytes at a time. */
  chunk?: number;
  delayMs: number;
  jitterMs: number;
  /** Bytes a second. */
  rate?: number;
  mergeMs: number;
  stallAfter?: number;
  resetAfter?: number;
}

/** A direction left alone. */
const AS_IS: Plan = { delayMs: 0, jitterMs: 0, mergeMs: 0 };

type Direction = "up" | "down";

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, SPEC);
  if (
    options.listen !== undefined &&
    (options.port !== DEFAULT_PORT || options.host !== DEFAULT_HOST)
  ) {
    exitWithError(
      "--listen and --host/--port both say where to listen: give one of them.",
      2,
    );
  }
  const listen = options.listen === undefined
    ? { host: options.host, port: options.port }
    : endpointOrExit(options.listen, "--listen", options.host);
  const target = endpointOrExit(options.to, "--to");
  const plan: Plan = {
    chunk: options.chunk,
    delayMs: options.delay,
    jitterMs: options.jitter,
    rate: options.rate,
    mergeMs: options.merge,
    stallAfter: options.stallAfter,
    resetAfter: options.resetAfter,
  };
  const forwarding: Forwarding = {
    target,
    plan,
    direction: options.direction,
    wire: wireLogFor(options.wire, { framing: options.framing }),
    sessions: new Set(),
  };

  // socket() + bind() + listen(); we say so once Ctrl+C is handled too.
  const listener = await SocketListener.listen(listen);
  onShutdown((signal) => {
    log(`${signal}: closing every connection`);
    listener.close();
    for (const session of forwarding.sessions) session.close();
    log("bye");
    Deno.exit(0);
  });
  sayListening(
    listener.addr,
    `, forwarding to ${formatAddress(target.host, target.port)}: ${
      describePlan(plan, options.direction)
    }`,
  );

  // accept() forever; each client gets its own connection to the target.
  for await (const client of listener) void relay(client, forwarding);
}

/** What every session shares: where to, what to do, and who is connected. */
interface Forwarding {
  readonly target: Endpoint;
  readonly plan: Plan;
  readonly direction: Options["direction"];
  readonly wire: WireLog | undefined;
  readonly sessions: Set<Session>;
}

/** One client: connect to the target, then copy both ways until both are done. */
async function relay(
  client: SocketConn,
  forwarding: Forwarding,
): Promise<void> {
  const { target, plan, wire, direction, sessions } = forwarding;
  const view = wireAccepted(client, wire);
  const peer = addressOf(client.remoteAddr);
  // connect(): one connection to the target per client.
  let server: SocketConn;
  try {
    server = await SocketConn.connect(target);
  } catch (error) {
    warn(
      `${peer}: ${
        explainNetError(error, { action: "connect", ...target })
      } Closing ${peer}.`,
    );
    view.close();
    return;
  }
  const session = new Session(
    { view, raw: client },
    { view: wireConnected(server, wire), raw: server },
    wire,
  );
  sessions.add(session);
  log(`${session.path}: ${describePlan(plan, direction)}`);

  // Two copy loops, one each way.
  const applies = (way: Direction): Plan =>
    direction === "both" || direction === way ? plan : AS_IS;
  await Promise.all([
    copy(session, "up", applies("up")),
    copy(session, "down", applies("down")),
  ]);
  session.close();
  sessions.delete(session);
  const { up, down } = session.bytes;
  log(
    `${session.path}: ${session.ending}; ${
      up.toLocaleString("en-US")
    } bytes up, ${down.toLocaleString("en-US")} bytes down`,
  );
}

/** `HOST:PORT`, `[::1]:PORT`, or (with a default host) `PORT`; else exits 2. */
function endpointOrExit(
  text: string,
  flag: string,
  defaultHost?: string,
): Endpoint {
  const match = text.match(/^(?:\[([^\]]+)\]|([^:\s]*)):(\d+)$/) ??
    (defaultHost === undefined ? null : text.match(/^()()(\d+)$/));
  const host = match?.[1] || match?.[2] || defaultHost || DEFAULT_HOST;
  const port = Number(match?.[3]);
  if (!match || port > 65535 || (port === 0 && flag === "--to")) {
    console.error(
      `error: ${flag} must be ${
        defaultHost === undefined ? "" : "PORT or "
      }HOST:PORT (e.g. 127.0.0.1:5003), got "${text}"\n\n${usage(SPEC)}`,
    );
    Deno.exit(2);
  }
  return { host, port };
}

/** `chunked 1 byte, 20 ms apart, both ways`: what a plan does, in words. */
function describePlan(plan: Plan, direction: Options["direction"]): string {
  const count = (n: number): string =>
    `${n.toLocaleString("en-US")} byte${n === 1 ? "" : "s"}`;
  const parts: string[] = [];
  if (plan.chunk !== undefined) {
    parts.push(
      `chunked ${count(plan.chunk)}${
        plan.delayMs > 0 ? `, ${plan.delayMs} ms apart` : ""
      }`,
    );
  } else if (plan.delayMs > 0) parts.push(`held ${plan.delayMs} ms`);
  if (plan.jitterMs > 0) parts.push(`up to ${plan.jitterMs} ms of jitter`);
  if (plan.rate !== undefined) parts.push(`at most ${count(plan.rate)}/s`);
  if (plan.mergeMs > 0) {
    parts.push(
      `merged: what arrives within ${plan.mergeMs} ms goes in one write`,
    );
  }
  if (plan.stallAfter !== undefined) {
    parts.push(`stalls after ${count(plan.stallAfter)}`);
  }
  if (plan.resetAfter !== undefined) {
    parts.push(`resets both connections after ${count(plan.resetAfter)}`);
  }
  if (parts.length === 0) return "forwarded as is";
  const ways = {
    both: "both ways",
    up: "client to server only",
    down: "server to client only",
  }[direction];
  return `${parts.join(", ")}; ${ways}`;
}

// ---------------------------------------------------------------------------
// The copy loop

/**
 * Copies one direction: read, shape, write, until the end of the stream,
 * then passes the half-close on. It reads the next chunk only once the last
 * is written (the awaited write is the backpressure), so it is never more
 * than one buffer ahead.
 */
async function copy(
  session: Session,
  direction: Direction,
  plan: Plan,
): Promise<void> {
  const [from, to] = direction === "up"
    ? [session.client, session.server]
    : [session.server, session.client];
  const reader = new Reader(from.view, plan.mergeMs);
  const shaper = new Shaper(plan);
  try {
    for (;;) {
      const done = session.bytes[direction];
      const limit = Math.min(
        plan.stallAfter ?? Infinity,
        plan.resetAfter ?? Infinity,
      ) - done;
      if (limit <= 0) {
        if (done >= (plan.resetAfter ?? Infinity)) {
          session.reset(
            `after ${done.toLocaleString("en-US")} bytes ${direction}`,
          );
          return;
        }
        log(
          `${session.path}: stalled ${direction} after ${
            done.toLocaleString("en-US")
          } bytes: reading no more from ${
            addressOf(from.view.remoteAddr)
          }; its writes block once the buffers between fill`,
        );
        await session.ended;
        return;
      }
      let bytes: Uint8Array | null;
      try {
        bytes = await reader.next(Math.min(READ_BUFFER_SIZE, limit));
      } catch (error) {
        return session.failed(from, error);
      }
      if (bytes === null) break;
      await shaper.write(to.view, bytes);
      session.bytes[direction] += bytes.length;
    }
    // The end of stream goes on: the other side may still answer.
    await to.view.closeWrite();
  } catch (error) {
    session.failed(to, error);
  } finally {
    session.loopEnded();
  }
}

/** What a read returned, or what it threw (kept so it is never unhandled). */
type ReadResult = { n: number | null } | { error: unknown };

/**
 * Reads from one connection; with a merge window, gathers what arrives in
 * it into one chunk. A read still pending when the window closes lands in a
 * spare buffer and starts the next chunk.
 */
class Reader {
  readonly #buffer = new Uint8Array(READ_BUFFER_SIZE);
  #spare?: Uint8Array;
  #pending: Promise<ReadResult> | null = null;
  #ended = false;

  constructor(readonly conn: ByteConn, readonly mergeMs: number) {}

  /** The next chunk, at most `max` bytes, or `null` at the end of the stream. */
  async next(max: number): Promise<Uint8Array | null> {
    if (this.#ended) return null;
    if (this.mergeMs <= 0) {
      const n = await this.conn.read(this.#buffer.subarray(0, max));
      return n === null ? null : this.#buffer.subarray(0, n);
    }
    const spare = this.#spare ??= new Uint8Array(READ_BUFFER_SIZE);
    const first = unwrap(await (this.#pending ?? this.#read(spare, max)));
    this.#pending = null;
    if (first === null) return null;
    this.#buffer.set(spare.subarray(0, first));
    let held = first;
    const deadline = Date.now() + this.mergeMs;
    while (held < max && Date.now() < deadline) {
      this.#pending = this.#read(spare, max - held);
      if (!await settledWithin(this.#pending, deadline - Date.now())) {
        break; // the window closed; the read goes on
      }
      const result = await this.#pending;
      this.#pending = null;
      const n = unwrap(result);
      if (n === null) {
        this.#ended = true;
        break;
      }
      this.#buffer.set(spare.subarray(0, n), held);
      held += n;
    }
    return this.#buffer.subarray(0, held);
  }

  #read(spare: Uint8Array, size: number): Promise<ReadResult> {
    return this.conn.read(spare.subarray(0, size)).then(
      (n) => ({ n }),
      (error) => ({ error }),
    );
  }
}

function unwrap(result: ReadResult): number | null {
  if ("error" in result) throw result.error;
  return result.n;
}

/** Writes a chunk the way a plan says: in pieces, delayed, at a rate. */
class Shaper {
  #due = 0; // when the rate lets the next byte go

  constructor(readonly plan: Plan) {}

  async write(to: ByteConn, bytes: Uint8Array): Promise<void> {
    const { chunk, rate, delayMs, jitterMs } = this.plan;
    // Under a rate, about ten writes a second: smooth, not one burst.
    const size = chunk ??
      (rate === undefined ? bytes.length : Math.max(1, Math.ceil(rate / 10)));
    for (let at = 0; at < bytes.length; at += size) {
      const piece = bytes.subarray(at, at + size);
      const hold = delayMs + Math.random() * jitterMs;
      if (hold > 0) await delay(hold);
      if (rate !== undefined) {
        // Each piece is paid for before it goes: n bytes take n / rate s.
        const now = Date.now();
        this.#due = Math.max(this.#due, now) + (piece.length / rate) * 1000;
        if (this.#due > now) await delay(this.#due - now);
      }
      await writeAll(to, piece);
    }
  }
}

// ---------------------------------------------------------------------------
// A client and its connection to the target

/** One end of a session: the connection the copy loops use, and the socket. */
interface End {
  /** The connection as the loops see it (reported with `--wire`). */
  view: ByteConn;
  /** The socket, for a reset. */
  raw: SocketConn;
}

/** A client, its connection to the target, and what passed between them. */
class Session {
  readonly path: string;
  readonly bytes: Record<Direction, number> = { up: 0, down: 0 };
  /** How it ended, for the last line. */
  ending = "closed";
  readonly #ended = Promise.withResolvers<void>();
  #closed = false;

  constructor(
    readonly client: End,
    readonly server: End,
    readonly wire: WireLog | undefined,
  ) {
    this.path = `${addressOf(client.view.remoteAddr)} → ${
      addressOf(server.view.remoteAddr)
    }`;
  }

  /** Resolves once a copy loop ends: a stalled loop then ends too. */
  get ended(): Promise<void> {
    return this.#ended.promise;
  }

  loopEnded(): void {
    this.#ended.resolve();
  }

  /** A call on `end` failed: its peer reset or went away; pass it on. */
  failed(end: End, error: unknown): void {
    if (this.#closed) return; // we closed or reset it ourselves
    const who = addressOf(end.view.remoteAddr);
    if (error instanceof Deno.errors.ConnectionReset) {
      this.reset(`because ${who} reset its connection`);
      return;
    }
    warn(`${this.path}: ${who} ${describePeerError(error)}; closing both`);
    this.ending = `closed: ${who} went away`;
    this.close();
  }

  /** Resets both connections: each peer gets a RST, not a FIN. */
  reset(why: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.ending = `reset ${why}`;
    log(`${this.path}: resetting both connections (RST, not FIN) ${why}`);
    for (const end of [this.client, this.server]) {
      this.wire?.resetHere(end.view);
      end.raw.reset();
    }
    this.#ended.resolve();
  }

  /** Closes both connections (a FIN each, if not reset already). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.client.view.close();
    this.server.view.close();
    this.#ended.resolve();
  }
}

// ---------------------------------------------------------------------------
// node:net sockets as Deno-style connections

/** node's error codes as the `Deno.errors` classes `errors.ts` explains. */
const DENO_ERRORS: Record<string, new (message: string) => Error> = {
  ECONNREFUSED: Deno.errors.ConnectionRefused,
  ECONNRESET: Deno.errors.ConnectionReset,
  ECONNABORTED: Deno.errors.ConnectionAborted,
  EPIPE: Deno.errors.BrokenPipe,
  ENOTCONN: Deno.errors.NotConnected,
  EADDRINUSE: Deno.errors.AddrInUse,
  EADDRNOTAVAIL: Deno.errors.AddrNotAvailable,
  EACCES: Deno.errors.PermissionDenied,
  ETIMEDOUT: Deno.errors.TimedOut,
  ENETUNREACH: Deno.errors.NetworkUnreachable,
  ENOTFOUND: Deno.errors.NotFound,
  EAI_AGAIN: Deno.errors.NotFound,
  ERR_STREAM_DESTROYED: Deno.errors.BadResource,
  ERR_SOCKET_CLOSED: Deno.errors.BadResource,
};

function denoError(error: Error & { code?: string }): Error {
  const Class = DENO_ERRORS[error.code ?? ""];
  return Class ? new Class(error.message) : error;
}

function netAddr(
  host: string | undefined,
  port: number | undefined,
): Deno.NetAddr {
  return { transport: "tcp", hostname: host ?? "?", port: port ?? 0 };
}

/**
 * A `node:net` socket with a `Deno.Conn`'s byte calls (`read` into a buffer,
 * `write` resolving once the kernel took the bytes) and one more: `reset`.
 * It reads only when asked: node holds at most its high-water mark (64 KiB)
 * ahead, then stops reading and the kernel's window closes.
 */
class SocketConn implements ByteConn {
  readonly localAddr: Deno.NetAddr;
  readonly remoteAddr: Deno.NetAddr;
  readonly #socket: net.Socket;
  #error: Error | null = null;
  #closed = false;
  #wake: (() => void) | null = null;
  /** Writes and half-closes in flight: failed if the socket closes first. */
  readonly #inFlight = new Set<(error: Error) => void>();

  constructor(socket: net.Socket) {
    this.#socket = socket;
    this.localAddr = netAddr(socket.localAddress, socket.localPort);
    this.remoteAddr = netAddr(socket.remoteAddress, socket.remotePort);
    const wake = (): void => {
      const resolve = this.#wake;
      this.#wake = null;
      resolve?.();
    };
    socket.on("readable", wake);
    socket.on("end", wake);
    socket.on("close", () => {
      const error = this.#error ?? new Deno.errors.BadResource("closed");
      for (const fail of this.#inFlight) fail(error);
      wake();
    });
    socket.on("error", (error: Error) => {
      this.#error = denoError(error);
      wake();
    });
  }

  /** `socket() → connect()`; rejects with a `Deno.errors` error. */
  static connect(endpoint: Endpoint): Promise<SocketConn> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({
        host: endpoint.host,
        port: endpoint.port,
        allowHalfOpen: true, // our FIN and theirs are separate events
        noDelay: true,
      });
      socket.once("connect", () => resolve(new SocketConn(socket)));
      socket.once("error", (error: Error) => reject(denoError(error)));
    });
  }

  async read(p: Uint8Array): Promise<number | null> {
    for (;;) {
      if (this.#closed) throw new Deno.errors.BadResource("closed here");
      const available = this.#socket.readableLength;
      if (available > 0) {
        const chunk: Buffer = this.#socket.read(Math.min(available, p.length));
        p.set(chunk);
        return chunk.length;
      }
      if (this.#error) throw this.#error;
      if (this.#socket.readableEnded) return null;
      this.#socket.read(); // asks node to read on (or to emit "end")
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#closed) {
      return Promise.reject(new Deno.errors.BadResource("closed here"));
    }
    return this.#call((done) => this.#socket.write(p, done)).then(() =>
      p.length
    );
  }

  closeWrite(): Promise<void> {
    return this.#call((done) => this.#socket.end(done));
  }

  /** Runs a node call whose callback says it is done; settles once. */
  #call(
    start: (done: (error?: Error | null) => void) => void,
  ): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const fail = (error: Error): void => {
      this.#inFlight.delete(fail);
      reject(error);
    };
    this.#inFlight.add(fail);
    start((error) => {
      this.#inFlight.delete(fail);
      if (error) reject(this.#error ?? denoError(error));
      else resolve();
    });
    return promise;
  }

  close(): void {
    this.#closed = true;
    this.#socket.destroy();
    this.#wake?.();
  }

  /** Closes with a RST: `SO_LINGER` 0, then `close()`. */
  reset(): void {
    this.#closed = true;
    this.#socket.resetAndDestroy();
    this.#wake?.();
  }
}

/** A listening `node:net` server, as an async iterable of connections. */
class SocketListener implements AsyncIterable<SocketConn> {
  readonly #server: net.Server;
  readonly #queue: SocketConn[] = [];
  #closed = false;
  #wake: (() => void) | null = null;

  private constructor(server: net.Server, readonly addr: Deno.NetAddr) {
    this.#server = server;
    server.on("connection", (socket: net.Socket) => {
      socket.setNoDelay(true);
      this.#queue.push(new SocketConn(socket));
      this.#wake?.();
    });
  }

  /** `socket() → bind() → listen()`; on failure says why and exits 1. */
  static listen(endpoint: Endpoint): Promise<SocketListener> {
    // pauseOnConnect: a socket reads only when the copy loop asks.
    const server = net.createServer({
      allowHalfOpen: true,
      pauseOnConnect: true,
    });
    return new Promise((resolve) => {
      server.once("error", (error: Error) =>
        exitWithError(
          explainNetError(denoError(error), { action: "listen", ...endpoint }),
        ));
      server.listen({ host: endpoint.host, port: endpoint.port }, () => {
        server.removeAllListeners("error");
        server.on(
          "error",
          (error: Error) => warn(`accept failed: ${error.message}`),
        );
        const address = server.address() as net.AddressInfo;
        resolve(
          new SocketListener(server, netAddr(address.address, address.port)),
        );
      });
    });
  }

  close(): void {
    this.#closed = true;
    this.#server.close();
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<SocketConn, void, undefined> {
    for (;;) {
      const conn = this.#queue.shift();
      if (conn) {
        yield conn;
        continue;
      }
      if (this.#closed) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = null;
    }
  }
}

if (import.meta.main) await main();
