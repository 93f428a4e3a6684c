/**
 * One HTTP/1.1 request head, read from a connection within a bound of bytes
 * and of time, and one response written back: what a server needs to serve
 * a few fixed files and upgrade to a WebSocket (`web_chat.ts`), and no more.
 *
 * Strict on purpose: a request has no body (`Content-Length` other than 0,
 * or any `Transfer-Encoding`, is refused), no folded header lines, one
 * `Host`; lines end in CRLF (a bare LF is taken too, as RFC 9112 allows).
 * Every response closes the connection, so nothing that follows a head is
 * ever read as another request.
 *
 * @example
 * ```ts ignore
 * import { readRequest, writeResponse } from "./http_request.ts";
 * const request = await readRequest(conn);
 * if (request) await writeResponse(conn, { status: 200, body: "hello\n" });
 * conn.close();
 * ```
 *
 * @module
 */

import { writeAll } from "./io.ts";
import { concat, deadline } from "./std.ts";

/** The largest request head taken, in bytes: 16 KiB. */
export const MAX_HEAD = 16 * 1024;

/** How long a client may take to send its request head: 10 s. */
export const HEAD_TIMEOUT_MS = 10_000;

/** A request head. */
export interface HttpRequest {
  /** `GET`, `HEAD`, … */
  method: string;
  /** The path, without its query: `/chat.js`. */
  path: string;
  /** Its headers. */
  headers: Headers;
  /** Bytes that came after the head in the same reads (a WebSocket's first frames). */
  rest: Uint8Array;
}

/**
 * A request that cannot be served: the status to answer and why.
 *
 * @example
 * ```ts
 * import { HttpError } from "./http_request.ts";
 * new HttpError(400, "bad request line").status; // 400
 * ```
 */
export class HttpError extends Error {
  /** The status to answer with. */
  readonly status: number;

  /** `status` and a short reason, sent as the body. */
  constructor(status: number, message: string) {
    super(message);
    this.name = "HttpError";
    this.status = status;
  }
}

/** Options of {@linkcode readRequest}. */
export interface ReadRequestOptions {
  /** The largest head taken (default {@linkcode MAX_HEAD}). */
  maxBytes?: number;
  /** How long the head may take to arrive, in ms (default {@linkcode HEAD_TIMEOUT_MS}). */
  timeoutMs?: number;
}

/**
 * Reads one request head from `conn`. Resolves `null` if the client closed
 * before sending one; throws {@linkcode HttpError} for a head that is too
 * large (431), too slow (408) or malformed (400).
 *
 * @example
 * ```ts ignore
 * import { readRequest } from "./http_request.ts";
 * const request = await readRequest(conn, { timeoutMs: 5000 });
 * request?.path; // "/"
 * ```
 */
export async function readRequest(
  conn: Deno.Conn,
  options: ReadRequestOptions = {},
): Promise<HttpRequest | null> {
  const maxBytes = options.maxBytes ?? MAX_HEAD;
  const timeoutMs = options.timeoutMs ?? HEAD_TIMEOUT_MS;
  let buffer = new Uint8Array(1024);
  let filled = 0;
  const reading = (async (): Promise<HttpRequest | null> => {
    for (;;) {
      if (filled === buffer.length) {
        const bigger = new Uint8Array(
          Math.min(buffer.length * 4, maxBytes + 4),
        );
        bigger.set(buffer);
        buffer = bigger;
      }
      const n = await conn.read(buffer.subarray(filled));
      if (n === null) {
        if (filled === 0) return null;
        throw new HttpError(400, "the request ended inside its head");
      }
      const from = Math.max(0, filled - 3);
      filled += n;
      const end = headEnd(buffer, from, filled);
      if (end !== -1) {
        if (end > maxBytes) throw tooLarge(maxBytes);
        return {
          ...parseHead(buffer.subarray(0, end)),
          rest: buffer.slice(end, filled),
        };
      }
      if (filled > maxBytes) throw tooLarge(maxBytes);
    }
  })();
  try {
    return await deadline(reading, timeoutMs);
  } catch (error) {
    if (error instanceof DOMException && error.name === "TimeoutError") {
      reading.catch(() => {}); // ends once the caller closes the connection
      throw new HttpError(
        408,
        `no complete request within ${timeoutMs / 1000} s`,
      );
    }
    throw error;
  }
}

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(431, `request head over ${maxBytes} bytes`);
}

/** Where the head ends (after its blank line), searching from `from`; -1 if not yet. */
function headEnd(bytes: Uint8Array, from: number, to: number): number {
  for (let i = from; i < to; i++) {
    if (bytes[i] !== 0x0a) continue;
    if (i + 1 < to && bytes[i + 1] === 0x0a) return i + 2; // LF LF
    if (i + 2 < to && bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a) {
      return i + 3; // (CR) LF CR LF
    }
  }
  return -1;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// deno-lint-ignore no-control-regex -- controls are what a header value may not hold
const FIELD_VALUE = /^[^\x00-\x08\x0a-\x1f\x7f]*$/;

/**
 * Parses a request head (its bytes up to and including the blank line).
 * Throws {@linkcode HttpError} (400, or 505 for another HTTP version) when
 * it is not a request served here.
 *
 * @example
 * ```ts
 * import { parseHead } from "./http_request.ts";
 * const head = new TextEncoder().encode("GET /chat?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
 * parseHead(head).path; // "/chat"
 * ```
 */
export function parseHead(
  bytes: Uint8Array,
): Omit<HttpRequest, "rest"> {
  // Latin-1: each byte one character, so no byte is lost or merged.
  let text = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    text += String.fromCharCode(...bytes.subarray(i, i + 4096));
  }
  const lines = text.split("\n").map((line) =>
    line.endsWith("\r") ? line.slice(0, -1) : line
  );
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  while (lines.length > 0 && lines[0] === "") lines.shift(); // RFC 9112, 2.2
  const [method, target, version, ...extra] = (lines.shift() ?? "").split(" ");
  if (
    extra.length > 0 || !TOKEN.test(method ?? "") || !target ||
    version === undefined
  ) {
    throw new HttpError(400, "bad request line");
  }
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
    throw new HttpError(505, "HTTP/1.1 only");
  }
  if (!target.startsWith("/")) {
    throw new HttpError(400, "the request target must be a path");
  }
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon);
    const raw = line.slice(colon + 1);
    const value = raw.replace(/^[ \t]+|[ \t]+$/g, "");
    if (colon <= 0 || !TOKEN.test(name) || !FIELD_VALUE.test(raw)) {
      throw new HttpError(400, "bad header line");
    }
    const key = name.toLowerCase();
    if (key === "host" && headers.has("host")) {
      throw new HttpError(400, "more than one Host header");
    }
    headers.append(key, value);
  }
  if (version === "HTTP/1.1" && !headers.has("host")) {
    throw new HttpError(400, "no Host header");
  }
  const length = headers.get("content-length");
  if (headers.has("transfer-encoding") || (length !== null && length !== "0")) {
    throw new HttpError(400, "a request body is not accepted here");
  }
  const query = target.search(/[?#]/);
  return {
    method,
    path: query === -1 ? target : target.slice(0, query),
    headers,
  };
}

/** A response: its status, headers and body. */
export interface HttpResponse {
  /** 200, 404, … */
  status: number;
  /** Its headers; `Content-Length` and `Connection: close` are added. */
  headers?: Headers;
  /** The body, UTF-8; none for a HEAD request or a 101. */
  body?: string;
}

const REASONS: Record<number, string> = {
  101: "Switching Protocols",
  200: "OK",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  426: "Upgrade Required",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

/**
 * Writes `response` to `conn`. A 101 keeps the connection (a WebSocket
 * follows); every other response says `Connection: close`, and the caller
 * closes it.
 *
 * @example
 * ```ts ignore
 * import { writeResponse } from "./http_request.ts";
 * await writeResponse(conn, { status: 404, body: "not found\n" });
 * ```
 */
export async function writeResponse(
  conn: Deno.Conn,
  response: HttpResponse,
  options: { head?: boolean } = {},
): Promise<void> {
  const { status } = response;
  const body = new TextEncoder().encode(response.body ?? "");
  const headers = new Headers(response.headers);
  if (status !== 101) {
    headers.set("content-length", String(body.length));
    headers.set("connection", "close");
  }
  let head = `HTTP/1.1 ${status} ${REASONS[status] ?? "Status"}\r\n`;
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  head += "\r\n";
  const bytes = new TextEncoder().encode(head);
  const whole = options.head || status === 101 ? bytes : concat([bytes, body]);
  await writeAll(conn, whole);
}
