/**
 * A WebSocket (RFC 6455), server side, over a connection the server accepted
 * itself: the handshake's answer, then whole messages read within a bound,
 * and text messages written with the socket's own backpressure.
 *
 * Frames are parsed by the `Receiver` of the npm package `ws`, the parser of
 * Node's most used WebSocket library: client frames must be masked, reserved
 * bits and opcodes are checked, text is checked to be UTF-8, and a message
 * past `maxMessage` is refused from the frame header that announces it,
 * before its payload is held. (`Deno.upgradeWebSocket` holds a message whole
 * and its fragments without a bound: 600 MiB in one message ended the
 * process. It also kept the socket of a peer that never answered a close.)
 *
 * @example
 * ```ts ignore
 * import { WebSocketConn } from "./websocket.ts";
 * const ws = new WebSocketConn(conn, { maxMessage: 65536 });
 * for (let batch = await ws.read(); batch !== null; batch = await ws.read()) {
 *   for (const message of batch) await ws.write(new TextEncoder().encode(`${message}\n`));
 * }
 * await ws.close({ code: 1000, reason: "bye" });
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { cooperate } from "./coop.ts";
import { utf8Length } from "./encoders.ts";
import { closeQuietly, type Closer, writeAll, type Writer } from "./io.ts";
import type { PendingHolder, PendingLimit } from "./pending_limit.ts";
import { concat, settledWithin } from "./std.ts";

/** The part of `ws`'s `Receiver` (a Node `Writable`) used here. */
interface FrameReceiver {
  write(chunk: Buffer, callback: (error?: Error | null) => void): boolean;
  on(
    event: "message",
    listener: (data: Buffer, isBinary: boolean) => void,
  ): void;
  on(event: "ping" | "pong", listener: (data: Buffer) => void): void;
  on(event: "conclude", listener: (code: number, reason: Buffer) => void): void;
  on(event: "error", listener: (error: Error) => void): void;
}

interface ReceiverOptions {
  isServer: boolean;
  maxPayload: number;
  maxFragments: number;
  binaryType: "nodebuffer";
  allowSynchronousEvents: boolean;
}

type ReceiverClass = new (options: ReceiverOptions) => FrameReceiver;

let Receiver: ReceiverClass | undefined;

/**
 * Loads the frame parser (the `ws` package), once, before the first
 * {@linkcode WebSocketConn}. Loaded on demand, so that a server without a
 * web side never loads it: `ws` reads two environment variables when it
 * loads (`WS_NO_BUFFER_UTIL`, `WS_NO_UTF_8_VALIDATE`), which Deno lets it
 * read only with `--allow-env` for them.
 *
 * @example
 * ```ts ignore
 * import { loadWebSockets } from "./websocket.ts";
 * await loadWebSockets();
 * ```
 */
export async function loadWebSockets(): Promise<void> {
  try {
    Receiver ??= (await import("ws")).Receiver as ReceiverClass;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotCapable)) throw error;
    throw new Deno.errors.NotCapable(
      "--web needs --allow-env=WS_NO_BUFFER_UTIL,WS_NO_UTF_8_VALIDATE " +
        "(the WebSocket library reads them as it loads), or run with -A",
    );
  }
}

/** The GUID of RFC 6455's handshake. */
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/**
 * Why these request headers are not a WebSocket handshake (`null`: they
 * are): `Upgrade: websocket`, `Connection: Upgrade`, version 13, and a key
 * of 16 bytes in base64.
 *
 * @example
 * ```ts
 * import { handshakeProblem } from "./websocket.ts";
 * handshakeProblem(new Headers({
 *   upgrade: "websocket",
 *   connection: "keep-alive, Upgrade",
 *   "sec-websocket-version": "13",
 *   "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
 * })); // null
 * ```
 */
export function handshakeProblem(headers: Headers): string | null {
  if (headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return "not a WebSocket upgrade";
  }
  const connection = (headers.get("connection") ?? "").toLowerCase();
  if (!connection.split(",").some((token) => token.trim() === "upgrade")) {
    return "Connection must include Upgrade";
  }
  if (headers.get("sec-websocket-version") !== "13") {
    return "WebSocket version 13 only";
  }
  const key = headers.get("sec-websocket-key") ?? "";
  if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) return "bad Sec-WebSocket-Key";
  return null;
}

/**
 * The `Sec-WebSocket-Accept` answer to a client's `Sec-WebSocket-Key`.
 *
 * @example
 * ```ts
 * import { acceptKey } from "./websocket.ts";
 * await acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); // "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
 * ```
 */
export async function acceptKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    new TextEncoder().encode(key + GUID),
  );
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/** A close frame's code and reason. */
export interface CloseFrame {
  /** The close code (RFC 6455, section 7.4.1). */
  code: number;
  /** A short reason, cut to 123 bytes of UTF-8 when sent. */
  reason: string;
}

/** How a WebSocket's reading ended. */
export type WebSocketEnd =
  /** The peer sent a close frame. */
  | { kind: "closed"; code: number; reason: string }
  /** The connection ended without one (or this side closed it). */
  | { kind: "lost" }
  /** The peer broke the protocol, or sent a message past the bound (1009). */
  | { kind: "broken"; code: number; problem: string }
  /** Cut off by the server-wide bound on unfinished messages, holding `held` bytes. */
  | { kind: "evicted"; held: number };

/** A message read: text, or the bytes of a binary message. */
export type WebSocketMessage = string | Uint8Array;

/** Options of {@linkcode WebSocketConn}. */
export interface WebSocketConnOptions {
  /** The largest message taken, in bytes (default 64 KiB); a longer one ends the reading (1009). */
  maxMessage?: number;
  /** Bytes that arrived after the handshake request, read first. */
  rest?: Uint8Array;
  /** How long a close waits for the peer's close frame, in ms (default 1000). */
  closeWaitMs?: number;
  /**
   * The server-wide bound on unfinished messages (`--max-unfinished`): the
   * bytes of a message not yet whole count there as a TCP client's
   * unfinished line does; past it the largest holder is cut off (the
   * reading ends: `broken`, 1008).
   */
  pending?: PendingLimit;
}

/** The most fragments one message may come in (browsers send one). */
const MAX_FRAGMENTS = 64;

const OP_TEXT = 0x1;
const OP_CLOSE = 0x8;
const OP_PONG = 0xa;
const READ_SIZE = 16 * 1024;
const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();

/**
 * One WebSocket over `conn`, after the server answered its handshake (101).
 * Read whole messages with {@linkcode WebSocketConn.read}; each `write` of
 * lines sends one text message per line and resolves once the socket took
 * them (a peer that stops reading stops the writes); `close` sends a close
 * frame and ends the connection once the peer answers, or after the close
 * wait, whatever the peer does.
 *
 * @example
 * ```ts ignore
 * import { WebSocketConn } from "./websocket.ts";
 * const ws = new WebSocketConn(conn);
 * await ws.write(new TextEncoder().encode("* welcome\n")); // one message
 * ```
 */
export class WebSocketConn implements Writer, Closer {
  /** The connection underneath. */
  readonly conn: Deno.Conn;
  /** How reading ended; set once {@linkcode WebSocketConn.read} returned `null`. */
  end?: WebSocketEnd;
  readonly #receiver: FrameReceiver;
  readonly #closeWaitMs: number;
  #rest: Uint8Array | undefined;
  #messages: WebSocketMessage[] = [];
  #ended: WebSocketEnd | undefined;
  #endedNow: () => void = () => {};
  readonly #endedPromise: Promise<void>;
  /** Writes go one after another, frames never interleaved. */
  #writing: Promise<void> = Promise.resolve();
  #pong = false;
  #nextPong: Uint8Array | null = null;
  /** One read buffer for the connection's life: what it reads is copied on. */
  readonly #buffer = new Uint8Array(READ_SIZE);
  #closing: Promise<void> | undefined;
  readonly #maxMessage: number;
  /** Bytes read and not yet a whole frame: only whole frames go to the parser. */
  #partial = new Uint8Array(0);
  #partialLength = 0;
  /** Payload bytes of the fragments of a message not yet whole. */
  #fragments = 0;
  /** Set once a frame past the bound went to the parser: the rest goes as it comes. */
  #raw = false;
  readonly #pending: PendingLimit | undefined;
  readonly #holder: PendingHolder;

  /** A WebSocket over `conn`; see {@linkcode WebSocketConnOptions}. */
  constructor(conn: Deno.Conn, options: WebSocketConnOptions = {}) {
    this.conn = conn;
    this.#rest = options.rest?.length ? options.rest : undefined;
    this.#closeWaitMs = options.closeWaitMs ?? 1000;
    // ws reads its bound as a 32-bit integer
    this.#maxMessage = Math.min(options.maxMessage ?? 64 * 1024, 2 ** 31 - 1);
    this.#pending = options.pending;
    this.#holder = {
      evict: (held) => this.#finish({ kind: "evicted", held }),
    };
    this.#endedPromise = new Promise((resolve) => (this.#endedNow = resolve));
    if (Receiver === undefined) {
      throw new Error("call loadWebSockets() before the first WebSocketConn");
    }
    const receiver = new Receiver({
      isServer: true,
      maxPayload: this.#maxMessage,
      maxFragments: MAX_FRAGMENTS,
      binaryType: "nodebuffer",
      allowSynchronousEvents: true,
    });
    receiver.on("message", (data, isBinary) => {
      this.#messages.push(isBinary ? new Uint8Array(data) : utf8.decode(data));
    });
    receiver.on("ping", (data) => this.#answerPing(data));
    receiver.on("pong", () => {});
    receiver.on("conclude", (code, reason) => {
      this.#finish({ kind: "closed", code, reason: utf8.decode(reason) });
    });
    receiver.on("error", (error) => this.#finish(broken(error)));
    this.#receiver = receiver;
  }

  /**
   * The messages the next read of the socket completed (at least one), in
   * order; `null` once reading ended: see {@linkcode WebSocketConn.end}.
   */
  async read(): Promise<WebSocketMessage[] | null> {
    const buffer = this.#buffer;
    while (this.#messages.length === 0) {
      if (this.#ended) {
        this.end = this.#ended;
        return null;
      }
      let chunk: Uint8Array;
      if (this.#rest) {
        chunk = this.#rest;
        this.#rest = undefined;
      } else {
        let n: number | null;
        try {
          n = await this.conn.read(buffer);
        } catch {
          n = null; // reset, or closed by this side
        }
        if (n === null) {
          this.#finish({ kind: "lost" });
          continue;
        }
        const turn = cooperate(); // a flood must not starve the others
        if (turn) await turn;
        chunk = buffer.subarray(0, n);
      }
      await this.#frames(chunk);
    }
    const messages = this.#messages;
    this.#messages = [];
    return messages;
  }

  /**
   * Sends each line of `p` (a last piece without `\n` too) as one text
   * message; resolves with `p.length` once the socket took them all.
   * Rejects with `BrokenPipe` once a close frame was sent.
   */
  write(p: Uint8Array): Promise<number> {
    if (this.#closing) {
      return Promise.reject(
        new Deno.errors.BrokenPipe("the WebSocket is closing"),
      );
    }
    const frames: Uint8Array[] = [];
    let start = 0;
    while (start < p.length) {
      const newline = p.indexOf(0x0a, start);
      const end = newline === -1 ? p.length : newline;
      frames.push(encodeFrame(OP_TEXT, p.subarray(start, end)));
      start = end + 1;
    }
    return this.#send(frames).then(() => p.length);
  }

  /**
   * Sends `frame` as a close frame (once) after what is being written, and
   * closes the connection once the peer answered it or after the close
   * wait. Resolves when the connection is closed.
   */
  close(frame: CloseFrame = { code: 1000, reason: "" }): Promise<void> {
    this.#closing ??= (async () => {
      const sent = this.#send([closeFrame(frame)]).catch(() => {});
      // The peer answers our close frame with its own; a peer that closed
      // first has had its answer once ours is sent.
      await settledWithin(
        this.#ended ? sent : Promise.all([sent, this.#endedPromise]),
        this.#closeWaitMs,
      );
      closeQuietly(this.conn);
    })();
    return this.#closing;
  }

  /**
   * Hands the parser whole frames only, so that it never holds a message
   * in many small pieces (one byte per read cost it some 300 bytes each):
   * the bytes of a frame not yet whole wait here, in one buffer, and count
   * against the pending limit with the fragments before them.
   */
  async #frames(chunk: Uint8Array): Promise<void> {
    if (this.#raw) return await this.#feed(chunk.slice());
    this.#append(chunk);
    for (;;) {
      const bytes = this.#partial.subarray(0, this.#partialLength);
      const frame = frameSize(bytes);
      if (frame === null) break;
      if (frame.payload > this.#maxMessage - this.#fragments) {
        // past the bound: the parser refuses it from its header (1009)
        this.#partialLength = 0;
        this.#raw = true;
        await this.#feed(bytes.slice());
        break;
      }
      if (bytes.length < frame.size) break;
      const whole = bytes.slice(0, frame.size); // the parser may keep it
      this.#partial.copyWithin(0, frame.size, bytes.length);
      this.#partialLength -= frame.size;
      if (frame.data) {
        this.#fragments = frame.fin ? 0 : this.#fragments + frame.payload;
      }
      await this.#feed(whole);
      if (this.#ended) break;
    }
    if (this.#partialLength < 1024 && this.#partial.length > 4096) {
      this.#partial = this.#partial.slice(0, 1024); // a big frame's room goes back
    }
    const held = this.#partialLength + this.#fragments;
    if (this.#ended || held === 0) this.#pending?.release(this.#holder);
    else this.#pending?.hold(this.#holder, held);
  }

  #append(chunk: Uint8Array): void {
    const need = this.#partialLength + chunk.length;
    if (need > this.#partial.length) {
      const grown = new Uint8Array(
        Math.max(need, this.#partial.length * 2, 1024),
      );
      grown.set(this.#partial.subarray(0, this.#partialLength));
      this.#partial = grown;
    }
    this.#partial.set(chunk, this.#partialLength);
    this.#partialLength = need;
  }

  #feed(chunk: Uint8Array): Promise<void> {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    return new Promise((resolve) => {
      this.#receiver.write(bytes, (error) => {
        if (error) this.#finish(broken(error));
        resolve();
      });
    });
  }

  #finish(end: WebSocketEnd): void {
    if (this.#ended) return;
    this.#ended = end;
    this.#pending?.release(this.#holder);
    this.#partial = new Uint8Array(0);
    this.#partialLength = 0;
    this.#endedNow();
    // cut off while a read waits: end that read too
    if (end.kind === "evicted") closeQuietly(this.conn);
  }

  /**
   * A pong for a ping; while one is on its way, only the latest ping waits
   * for the next (RFC 6455 allows answering the most recent one only), so a
   * peer that pings and never reads holds one pong here, not thousands.
   */
  #answerPing(data: Uint8Array): void {
    if (this.#closing) return;
    if (this.#pong) {
      this.#nextPong = new Uint8Array(data);
      return;
    }
    this.#pong = true;
    this.#send([encodeFrame(OP_PONG, data)])
      .catch(() => {})
      .finally(() => {
        this.#pong = false;
        const next = this.#nextPong;
        this.#nextPong = null;
        if (next) this.#answerPing(next);
      });
  }

  #send(frames: Uint8Array[]): Promise<void> {
    const bytes = frames.length === 1 ? frames[0] : concat(frames);
    const write = this.#writing.then(() => writeAll(this.conn, bytes));
    this.#writing = write.catch(() => {});
    return write;
  }
}

/**
 * A frame's size from its first bytes: header and payload together, the
 * payload's length, whether it is a data frame (text, binary, continuation)
 * and its FIN bit; `null` while the header is not all there.
 */
function frameSize(
  bytes: Uint8Array,
): { size: number; payload: number; data: boolean; fin: boolean } | null {
  if (bytes.length < 2) return null;
  const masked = (bytes[1] & 0x80) !== 0 ? 4 : 0;
  let payload = bytes[1] & 0x7f;
  let head = 2;
  if (payload === 126) {
    if (bytes.length < 4) return null;
    payload = (bytes[2] << 8) | bytes[3];
    head = 4;
  } else if (payload === 127) {
    if (bytes.length < 10) return null;
    const view = new DataView(bytes.buffer, bytes.byteOffset, 10);
    payload = Number(view.getBigUint64(2)); // past 2^53: refused anyway
    head = 10;
  }
  const opcode = bytes[0] & 0x0f;
  return {
    size: head + masked + payload,
    payload,
    data: opcode < 0x8,
    fin: (bytes[0] & 0x80) !== 0,
  };
}

/** The end of a reading that broke the protocol, with `ws`'s close code. */
function broken(error: Error): WebSocketEnd {
  const status = Object.getOwnPropertySymbols(error)
    .filter((symbol) => symbol.description === "status-code")
    .map((symbol) => (error as unknown as Record<symbol, unknown>)[symbol])[0];
  const code = typeof status === "number" ? status : 1002;
  return { kind: "broken", code, problem: error.message };
}

/**
 * One unmasked frame (server to client), FIN set: `opcode` and `payload`.
 *
 * @example
 * ```ts
 * import { encodeFrame } from "./websocket.ts";
 * encodeFrame(0x1, new TextEncoder().encode("hi")); // Uint8Array [0x81, 2, 0x68, 0x69]
 * ```
 */
export function encodeFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const frame = new Uint8Array(head + n);
  frame[0] = 0x80 | opcode;
  if (n < 126) frame[1] = n;
  else if (n < 65536) {
    frame[1] = 126;
    frame[2] = n >>> 8;
    frame[3] = n & 0xff;
  } else {
    frame[1] = 127;
    new DataView(frame.buffer).setBigUint64(2, BigInt(n));
  }
  frame.set(payload, head);
  return frame;
}

/** A close frame: the code, then the reason cut to 123 bytes of UTF-8. */
function closeFrame({ code, reason }: CloseFrame): Uint8Array {
  const text = utf8Encoder.encode(clipUtf8(reason, 123));
  const payload = new Uint8Array(2 + text.length);
  payload[0] = code >>> 8;
  payload[1] = code & 0xff;
  payload.set(text, 2);
  return encodeFrame(OP_CLOSE, payload);
}

/**
 * `text` cut to at most `max` bytes of UTF-8, never inside a character
 * (a close frame's reason has room for 123).
 *
 * @example
 * ```ts
 * import { clipUtf8 } from "./websocket.ts";
 * clipUtf8("é".repeat(70), 123).length; // 61
 * ```
 */
export function clipUtf8(text: string, max: number): string {
  if (utf8Length(text) <= max) return text;
  let out = "";
  let size = 0;
  for (const char of text) {
    size += utf8Length(char);
    if (size > max) break;
    out += char;
  }
  return out;
}
