/**
 * Test helpers for a server's web side: start it with `--web`, a TCP
 * guest, and a WebSocket client that is not a browser.
 *
 * @module
 */

import { assert } from "./_assert.ts";
import { connect, LineConn, type Server, startServer } from "./_helpers.ts";
import { writeAll } from "../lib/io.ts";

/** The line a server prints once its page is served. */
export const WEB_LINE = /web page on (https?):\/\/(\S+):(\d+)\//;

/** A server started with `--web`, and the web port it printed. */
export type WebServer = Server & { web: number; url: string };

/** Starts `script` (the sandbox server by default) with `--web webPort`. */
export async function startWebServer(
  args: string[] = [],
  webPort = 0,
  script = "sandbox/server.ts",
): Promise<WebServer> {
  const server = await startServer(script, [
    "--web",
    String(webPort),
    ...args,
  ]);
  const match = await server.stdout.waitFor(WEB_LINE);
  const web = Number(match[3]);
  return Object.assign(server, { web, url: `${match[1]}://127.0.0.1:${web}/` });
}

/** A TCP chat client that knows its name from the welcome. */
export async function guest(
  server: Server,
): Promise<LineConn & { name: string }> {
  const conn = new LineConn(await connect(server.port));
  const welcome = (await conn.line())!;
  const name = welcome.match(/^\* welcome (guest-\d+):/)?.[1];
  assert(name, `unexpected welcome: ${welcome}`);
  return Object.assign(conn, { name });
}

/** A WebSocket client that is not a browser (Deno's own): no `Origin`. */
export class WsClient implements AsyncDisposable {
  readonly closed: Promise<CloseEvent>;
  readonly #queue: string[] = [];
  #wake: (() => void) | null = null;

  private constructor(readonly socket: WebSocket) {
    this.closed = new Promise((resolve) => {
      socket.addEventListener("close", (event) => {
        resolve(event);
        this.#wake?.();
      });
    });
    socket.addEventListener("message", (event) => {
      this.#queue.push(
        typeof event.data === "string" ? event.data : "(binary)",
      );
      this.#wake?.();
    });
  }

  static async open(port: number): Promise<WsClient> {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/chat`);
    const client = new WsClient(socket);
    await new Promise((resolve, reject) => {
      socket.addEventListener("open", resolve, { once: true });
      socket.addEventListener("error", reject, { once: true });
    });
    return client;
  }

  /** The next message, or `null` once closed; throws after `ms`. */
  async next(ms = 10_000): Promise<string | null> {
    const deadline = Date.now() + ms;
    let closed = false;
    this.closed.then(() => (closed = true));
    while (this.#queue.length === 0) {
      await Promise.resolve(); // let `closed` settle
      if (closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no message within ${ms} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#wake = null;
    }
    return this.#queue.shift()!;
  }

  /** Reads messages until one matches `pattern`; returns it. */
  async until(pattern: RegExp, ms = 10_000): Promise<string> {
    for (;;) {
      const message = await this.next(ms);
      if (message === null) {
        throw new Error(`closed before a message matched ${pattern}`);
      }
      if (pattern.test(message)) return message;
    }
  }

  send(text: string | Uint8Array): void {
    this.socket.send(text);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.close();
    await this.closed;
  }
}

/**
 * Over WSS, verified with the certificate in `caFile`: opens the chat's
 * WebSocket as the page would (its `https://` origin) and returns the
 * first text message. Deno's `WebSocket` cannot be given a CA, so the
 * handshake and the one frame are read by hand.
 */
export async function wssFirstMessage(
  port: number,
  caFile: string,
): Promise<string> {
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port,
    caCerts: [await Deno.readTextFile(caFile)],
  });
  try {
    const origin = `https://127.0.0.1:${port}`;
    await writeAll(
      conn,
      new TextEncoder().encode([
        "GET /chat HTTP/1.1",
        `Host: 127.0.0.1:${port}`,
        `Origin: ${origin}`,
        "Upgrade: websocket",
        "Connection: Upgrade",
        `Sec-WebSocket-Key: ${btoa("a test nonce 16b")}`,
        "Sec-WebSocket-Version: 13",
        "",
        "",
      ].join("\r\n")),
    );
    let bytes = new Uint8Array(0);
    const more = async (): Promise<void> => {
      const buffer = new Uint8Array(16 * 1024);
      const n = await conn.read(buffer);
      if (n === null) throw new Error("closed before a whole message came");
      bytes = new Uint8Array([...bytes, ...buffer.subarray(0, n)]);
    };
    const headEnd = (): number =>
      new TextDecoder().decode(bytes).indexOf("\r\n\r\n");
    while (headEnd() < 0) await more();
    const head = new TextDecoder().decode(bytes).slice(0, headEnd());
    if (!head.startsWith("HTTP/1.1 101")) {
      throw new Error(`no upgrade: ${head}`);
    }
    bytes = bytes.subarray(headEnd() + 4);
    // A server's frame: FIN + text, unmasked; a 7-bit or a 16-bit length.
    while (bytes.length < 4) await more();
    const short = bytes[1] & 0x7f;
    const [start, length] = short === 126
      ? [4, (bytes[2] << 8) | bytes[3]]
      : [2, short];
    while (bytes.length < start + length) await more();
    return new TextDecoder().decode(bytes.subarray(start, start + length));
  } finally {
    conn.close();
  }
}
