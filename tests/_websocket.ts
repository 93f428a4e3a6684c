/**
 * Test helpers for `lib/websocket.ts`: a server-side `WebSocketConn` over a
 * loopback connection, and a raw client that writes any frame (masked or
 * not, fragmented, broken) and reads the server's frames one by one.
 *
 * @module
 */

import { writeAll } from "../lib/io.ts";
import {
  loadWebSockets,
  WebSocketConn,
  type WebSocketConnOptions,
} from "../lib/websocket.ts";

/** A frame the server sent. */
export interface Frame {
  fin: boolean;
  opcode: number;
  payload: Uint8Array;
}

/** A raw WebSocket client: frames in and out, nothing checked. */
export class RawClient implements Disposable {
  #buffered = new Uint8Array(0);

  constructor(readonly conn: Deno.Conn) {}

  /** Writes `bytes` as they are. */
  write(bytes: Uint8Array): Promise<void> {
    return writeAll(this.conn, bytes);
  }

  /** The server's next frame, or `null` at the end of the stream. */
  async frame(): Promise<Frame | null> {
    for (;;) {
      const frame = parseServerFrame(this.#buffered);
      if (frame) {
        this.#buffered = this.#buffered.slice(frame.size);
        return frame.frame;
      }
      const buffer = new Uint8Array(64 * 1024);
      const n = await this.conn.read(buffer).catch(() => null);
      if (n === null) return null;
      const joined = new Uint8Array(this.#buffered.length + n);
      joined.set(this.#buffered);
      joined.set(buffer.subarray(0, n), this.#buffered.length);
      this.#buffered = joined;
    }
  }

  /** The next text message's text (throws on anything else). */
  async text(): Promise<string> {
    const frame = await this.frame();
    if (frame === null || frame.opcode !== 1) {
      throw new Error(`expected a text frame, got ${JSON.stringify(frame)}`);
    }
    return new TextDecoder().decode(frame.payload);
  }

  [Symbol.dispose](): void {
    try {
      this.conn.close();
    } catch {
      // closed already
    }
  }
}

function parseServerFrame(
  bytes: Uint8Array,
): { frame: Frame; size: number } | null {
  if (bytes.length < 2) return null;
  let length = bytes[1] & 0x7f;
  let at = 2;
  if (length === 126) {
    if (bytes.length < 4) return null;
    length = (bytes[2] << 8) | bytes[3];
    at = 4;
  } else if (length === 127) {
    if (bytes.length < 10) return null;
    length = Number(
      new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(2),
    );
    at = 10;
  }
  if (bytes[1] & 0x80) throw new Error("the server masked a frame");
  if (bytes.length < at + length) return null;
  return {
    frame: {
      fin: (bytes[0] & 0x80) !== 0,
      opcode: bytes[0] & 0x0f,
      payload: bytes.slice(at, at + length),
    },
    size: at + length,
  };
}

/** Options of {@linkcode clientFrame}. */
export interface ClientFrameOptions {
  /** The last frame of its message (default true). */
  fin?: boolean;
  /** Masked, as a client must (default true). */
  mask?: boolean;
  /** The length the header announces (default: the payload's). */
  announce?: number;
}

/** One client frame: `opcode` and `payload`, masked unless told. */
export function clientFrame(
  opcode: number,
  payload: Uint8Array | string,
  options: ClientFrameOptions = {},
): Uint8Array {
  const body = typeof payload === "string"
    ? new TextEncoder().encode(payload)
    : payload;
  const { fin = true, mask = true } = options;
  const n = options.announce ?? body.length;
  const head: number[] = [(fin ? 0x80 : 0) | opcode];
  const maskBit = mask ? 0x80 : 0;
  if (n < 126) head.push(maskBit | n);
  else if (n < 65536) head.push(maskBit | 126, n >> 8, n & 0xff);
  else {
    head.push(maskBit | 127);
    const big = new Uint8Array(8);
    new DataView(big.buffer).setBigUint64(0, BigInt(n));
    head.push(...big);
  }
  const key = [0x12, 0x34, 0x56, 0x78];
  if (mask) head.push(...key);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  for (let i = 0; i < body.length; i++) {
    out[head.length + i] = mask ? body[i] ^ key[i % 4] : body[i];
  }
  return out;
}

/** A `WebSocketConn` (server side) and a raw client, connected on loopback. */
export async function wsPair(
  options: WebSocketConnOptions = {},
): Promise<{ ws: WebSocketConn; client: RawClient } & Disposable> {
  await loadWebSockets();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [conn, server] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    listener.accept(),
  ]);
  const ws = new WebSocketConn(server, options);
  const client = new RawClient(conn);
  return {
    ws,
    client,
    [Symbol.dispose]() {
      client[Symbol.dispose]();
      try {
        server.close();
      } catch {
        // closed already
      }
    },
  };
}

/** A raw client that has done the handshake with a server's `/chat` (plain HTTP). */
export async function rawUpgrade(port: number): Promise<RawClient> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(
    conn,
    new TextEncoder().encode(
      "GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n" +
        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    ),
  );
  // The 101 answer, byte by byte, so that no frame after it is read here.
  let head = "";
  const byte = new Uint8Array(1);
  while (!head.endsWith("\r\n\r\n")) {
    if (await conn.read(byte) === null) throw new Error(`no answer: ${head}`);
    head += String.fromCharCode(byte[0]);
  }
  if (!head.startsWith("HTTP/1.1 101 ")) {
    conn.close();
    throw new Error(`not upgraded: ${head}`);
  }
  return new RawClient(conn);
}
