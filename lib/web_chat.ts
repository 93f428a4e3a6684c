/**
 * The chat's web side: a page and a WebSocket on their own port, so that
 * anyone with a browser joins the same room as `nc` and terminal clients,
 * under the same rules (see `web_member.ts`).
 *
 * The HTTP server serves exactly three things: `GET /` (the page),
 * `GET /chat.js` (its script), both embedded in the program, and
 * `GET /chat`, upgraded to a WebSocket. Anything else is a 404 (unknown
 * path) or a 405 (another method); nothing is read from disk.
 *
 * Who may open the WebSocket: a browser always sends `Origin`, and a page
 * from another site must not join the chat through a visitor's browser, so
 * `Origin`, when present, must be this page's own (`http://` and the `Host`
 * the browser sent). Without `Origin` the client is not a browser (a
 * script, `websocat`), no more dangerous than `nc`: it is let in. And since
 * a site can point its own name at this machine (DNS rebinding), `Host`
 * must be a name only the LAN gives: an IP address, a name without dots,
 * or one under `.local`, `.localhost`, `.lan`, `.internal`, `.home.arpa`,
 * or the `--host` given.
 *
 * @example
 * ```ts ignore
 * import { serveWebOrExit } from "./web_chat.ts";
 * const web = await serveWebOrExit(chat, { host: "127.0.0.1", port: 0, newId: () => nextId++, pacer });
 * // 11:40:03.123 web page on http://127.0.0.1:40125/
 * await web.shutdown();
 * ```
 *
 * @module
 */

import page from "../web/index.html" with { type: "text" };
import script from "../web/chat.js" with { type: "text" };
import type { ChatMember, ChatServer } from "./chat_server.ts";
import {
  exitWithError,
  explainNetError,
  formatAddress,
  isDisconnect,
} from "./errors.ts";
import {
  HttpError,
  type HttpRequest,
  type HttpResponse,
  readRequest,
  writeResponse,
} from "./http_request.ts";
import { closeQuietly } from "./io.ts";
import { log, warn } from "./log.ts";
import { accepted, addressOf, isWildcard, lanAddresses } from "./net.ts";
import type { Pacer } from "./outbox.ts";
import type { PendingLimit } from "./pending_limit.ts";
import { sanitizeText } from "./sanitize.ts";
import { settledWithin } from "./std.ts";
import { acceptHandshake } from "./tls.ts";
import { TokenBucket } from "./token_bucket.ts";
import { serveBrowser } from "./web_member.ts";
import {
  acceptKey,
  handshakeProblem,
  loadWebSockets,
  WebSocketConn,
} from "./websocket.ts";

/**
 * `--web PORT`, the flag of a server that also serves its chat to browsers
 * (a spec for `lib/cli.ts`).
 *
 * @example
 * ```ts ignore
 * import { WEB_FLAG } from "./web_chat.ts";
 * const FLAGS = { web: WEB_FLAG } as const;
 * ```
 */
export const WEB_FLAG = {
  type: "integer",
  description: "also serve the chat to browsers on PORT (0: any free port)",
  placeholder: "PORT",
  max: 65535,
} as const;

/** Options of {@linkcode serveWebOrExit}. */
export interface WebChatOptions {
  /** The address to listen on, as `--host`. */
  host: string;
  /** The port; 0 takes any free one. */
  port: number;
  /** The next member id, from the server's one counter (TCP clients' too). */
  newId: () => number;
  /** The server's pacing: relaying waits while a receiver is behind. */
  pacer: Pick<Pacer, "wait">;
  /** The largest message accepted, in bytes (default 64 KiB). */
  maxFrame?: number;
  /** Disconnect a browser silent for this many seconds (0, the default: never). */
  idleTimeout?: number;
  /** Bytes queued for a browser beyond which it is cut off (default 1 MiB). */
  outboxLimit?: number;
  /** The server-wide bound on replies, shared with the server's other outboxes (see `Outbox`). */
  replies?: PendingLimit;
  /** The server-wide bound on unfinished messages (`--max-unfinished`), shared with TCP clients. */
  pending?: PendingLimit;
  /** Refuse browsers when the room has this many members (default: no limit). */
  maxClients?: number;
  /** `--tls`: serve HTTPS and WSS with this certificate and key. */
  tls?: { cert: string; key: string };
}

/** The files served, by path: embedded, never read from disk. */
const FILES: ReadonlyMap<string, { type: string; body: string }> = new Map([
  ["/", { type: "text/html; charset=utf-8", body: page }],
  ["/chat.js", { type: "text/javascript; charset=utf-8", body: script }],
]);

/** The WebSocket's path. */
const CHAT_PATH = "/chat";

/** The page's one inline style sheet, allowed by its hash and nothing else. */
const STYLE_HASH = await sha256Source(
  page.match(/<style>([\s\S]*?)<\/style>/)?.[1] ?? "",
);

/** A `Host` header (name or IP, optional port) that may go into a header. */
const HOST_HEADER =
  /^(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/i;

/** Whether `host` is a well-formed `Host` header, its port (if any) a port. */
function isHostHeader(host: string): boolean {
  const match = host.match(HOST_HEADER);
  return match !== null &&
    (match[1] === undefined || Number(match[1]) <= 65535);
}

/** Names a web site cannot point at this machine: the LAN's own. */
const LAN_SUFFIXES = [
  ".local",
  ".localhost",
  ".lan",
  ".internal",
  ".home.arpa",
];

/**
 * How many connections may be sending their request at once; past it the
 * oldest of the address that has the most is closed.
 */
const MAX_REQUESTS = 256;

/**
 * Connections sending their request head, by peer address, oldest first:
 * room is made at the expense of the address that takes the most, so one
 * machine churning connections cuts only its own.
 */
class Requests {
  #size = 0;
  readonly #byHost = new Map<string, Set<Deno.Conn>>();

  get size(): number {
    return this.#size;
  }

  add(conn: Deno.Conn): void {
    const host = hostOf(conn);
    let conns = this.#byHost.get(host);
    if (conns === undefined) this.#byHost.set(host, conns = new Set());
    if (conns.has(conn)) return;
    conns.add(conn);
    this.#size++;
  }

  delete(conn: Deno.Conn): void {
    const host = hostOf(conn);
    const conns = this.#byHost.get(host);
    if (!conns?.delete(conn)) return;
    this.#size--;
    if (conns.size === 0) this.#byHost.delete(host);
  }

  /** The oldest connection of the address with the most. */
  victim(): Deno.Conn | undefined {
    let most: Set<Deno.Conn> | undefined;
    for (const conns of this.#byHost.values()) {
      if (most === undefined || conns.size > most.size) most = conns;
    }
    return most?.values().next().value;
  }
}

function hostOf(conn: Deno.Conn): string {
  return (conn.remoteAddr as Deno.NetAddr).hostname;
}

/** Refused WebSockets logged one by one at once; then one a second, the rest counted. */
export const REFUSALS_LOGGED_AT_ONCE = 10;

/**
 * The chat's HTTP server: the page, its script, and the WebSocket, over
 * connections it accepts itself (`http_request.ts`, `websocket.ts`): every
 * request head is bounded (16 KiB, 10 s), at most 256 are read at once (a
 * new connection past that closes the oldest one still sending its head,
 * from the address that has the most: a browser sends its head at once, a
 * connection that dawdles is the attacker's), every WebSocket message is bounded by `maxFrame`, and every
 * connection closes, whatever the peer does.
 *
 * @example
 * ```ts ignore
 * import { WebChat } from "./web_chat.ts";
 * const web = new WebChat(chat, { host: "127.0.0.1", port: 0, newId: () => 1, pacer });
 * web.url; // "http://127.0.0.1:40125/"
 * await web.shutdown();
 * ```
 */
export class WebChat {
  readonly #listener: Deno.Listener;
  readonly #chat: ChatServer<ChatMember>;
  readonly #options: WebChatOptions;
  /** Connections still in their HTTP request, and open WebSockets. */
  readonly #conns = new Set<Deno.Conn>();
  /** Connections still sending their request head. */
  readonly #requests = new Requests();
  readonly #browsers = new Set<Promise<void>>();
  #stopping = false;
  /** Refusals logged one by one (anyone may repeat one at will); the rest counted. */
  readonly #refusalLog = new TokenBucket({
    burst: REFUSALS_LOGGED_AT_ONCE,
    perSecond: 1,
  });
  #unlogged = 0;

  /** Listens at once (throws if it cannot); see {@linkcode WebChatOptions}. */
  constructor(chat: ChatServer<ChatMember>, options: WebChatOptions) {
    this.#chat = chat;
    this.#options = options;
    const where = { hostname: options.host, port: options.port };
    this.#listener = options.tls
      ? Deno.listenTls({ ...where, ...options.tls })
      : Deno.listen(where);
    void this.#acceptLoop();
  }

  /** The address it listens on. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr as Deno.NetAddr;
  }

  /** The page's address, e.g. `http://127.0.0.1:5080/`. */
  get url(): string {
    const scheme = this.#options.tls ? "https" : "http";
    return `${scheme}://${formatAddress(this.addr.hostname, this.addr.port)}/`;
  }

  /**
   * Refuses new browsers and closes the listener and every connection
   * still open. Call it after the chat's own shutdown, which tells each
   * browser why it closes.
   */
  async shutdown(): Promise<void> {
    this.#stopping = true;
    closeQuietly(this.#listener);
    await settledWithin(Promise.all(this.#browsers), 1000);
    for (const conn of this.#conns) closeQuietly(conn);
  }

  async #acceptLoop(): Promise<void> {
    for await (const conn of accepted(this.#listener)) {
      if (this.#stopping) {
        closeQuietly(conn);
        continue;
      }
      if (this.#requests.size >= MAX_REQUESTS) {
        const victim = this.#requests.victim()!;
        this.#requests.delete(victim);
        closeQuietly(victim);
      }
      void this.#serve(conn);
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    this.#conns.add(conn);
    this.#requests.add(conn);
    let upgraded: { ws: WebSocketConn; peer: string } | null = null;
    try {
      upgraded = await this.#request(conn);
    } catch (error) {
      if (!isDisconnect(error) && !(error instanceof Deno.errors.BadResource)) {
        warn(`web: ${(error as Error).message}`);
      }
    } finally {
      this.#requests.delete(conn);
    }
    if (upgraded === null) {
      closeQuietly(conn);
      this.#conns.delete(conn);
      return;
    }
    const browser = serveBrowser(upgraded.ws, {
      chat: this.#chat,
      id: this.#options.newId(),
      peer: upgraded.peer,
      pacer: this.#options.pacer,
      maxFrame: this.#options.maxFrame,
      idleTimeout: this.#options.idleTimeout,
      outboxLimit: this.#options.outboxLimit,
      replies: this.#options.replies,
      maxClients: this.#options.maxClients,
    }).finally(() => {
      closeQuietly(conn);
      this.#conns.delete(conn);
      this.#browsers.delete(browser);
    });
    this.#browsers.add(browser);
    await browser;
  }

  /** Answers one request; the WebSocket when it was an upgrade, else `null` (close). */
  async #request(
    conn: Deno.Conn,
  ): Promise<{ ws: WebSocketConn; peer: string } | null> {
    const peer = `${addressOf(conn.remoteAddr)} (web)`;
    if (await acceptHandshake(conn)) return null; // TLS that failed: nothing to say
    let request: HttpRequest | null;
    try {
      request = await readRequest(conn);
    } catch (error) {
      if (!(error instanceof HttpError)) return null; // reset, closed
      await writeResponse(conn, plain(error.status, error.message));
      return null;
    }
    if (request === null) return null;
    this.#requests.delete(conn); // its head is in: no longer one to close for room
    const { method, path, headers } = request;
    if (path !== CHAT_PATH) {
      await writeResponse(conn, this.#file(method, path, headers), {
        head: method === "HEAD",
      });
      return null;
    }
    const refusal = this.#upgradeRefusal(request, peer);
    if (refusal) {
      await writeResponse(conn, refusal);
      return null;
    }
    await writeResponse(conn, {
      status: 101,
      headers: new Headers({
        Upgrade: "websocket",
        Connection: "Upgrade",
        "Sec-WebSocket-Accept": await acceptKey(
          headers.get("sec-websocket-key")!,
        ),
      }),
    });
    await loadWebSockets(); // loaded at start: at once
    const ws = new WebSocketConn(conn, {
      maxMessage: this.#options.maxFrame,
      rest: request.rest,
      pending: this.#options.pending,
    });
    return { ws, peer };
  }

  #file(method: string, path: string, headers: Headers): HttpResponse {
    const file = FILES.get(path);
    if (file === undefined) return plain(404, "not found");
    if (method !== "GET" && method !== "HEAD") {
      return plain(405, "method not allowed", { Allow: "GET, HEAD" });
    }
    return {
      status: 200,
      headers: secured(file.type, {
        host: headers.get("host"),
        tls: this.#options.tls !== undefined,
      }),
      body: file.body,
    };
  }

  /** Why this request may not open the chat's WebSocket (`null`: it may). */
  #upgradeRefusal(request: HttpRequest, peer: string): HttpResponse | null {
    const { method, headers } = request;
    if (method !== "GET") {
      return plain(405, "method not allowed", { Allow: "GET" });
    }
    if (headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return plain(426, "this is the chat's WebSocket; open / in a browser", {
        Upgrade: "websocket",
      });
    }
    const problem = upgradeProblem(headers, {
      ownNames: [this.#options.host],
      tls: this.#options.tls !== undefined,
    });
    if (problem !== null) {
      if (this.#refusalLog.take()) {
        const more = this.#unlogged === 0 ? "" : ` (and ${this.#unlogged} ` +
          "more refused since the last one logged)";
        this.#unlogged = 0;
        warn(`${peer} refused: ${problem}${more}`);
      } else this.#unlogged++;
      return plain(403, problem);
    }
    const bad = handshakeProblem(headers);
    if (bad !== null) {
      return plain(400, `bad WebSocket handshake: ${bad}`, {
        "Sec-WebSocket-Version": "13",
      });
    }
    if (this.#stopping) return plain(503, "server shutting down");
    return null;
  }
}

/**
 * Serves the web side of `chat` (see {@linkcode WebChat}) and says where
 * (see {@linkcode sayWebListening}); if it cannot listen, prints why and
 * exits 1.
 *
 * @example
 * ```ts ignore
 * import { serveWebOrExit } from "./web_chat.ts";
 * const web = await serveWebOrExit(chat, { host: "0.0.0.0", port: 5080, newId, pacer });
 * // 11:40:03.123 web page on http://127.0.0.1:5080/ (this machine)
 * // 11:40:03.124 browsers on other machines can open http://192.168.1.23:5080/ (wlan0)
 * ```
 */
export async function serveWebOrExit(
  chat: ChatServer<ChatMember>,
  options: WebChatOptions,
): Promise<WebChat> {
  try {
    await loadWebSockets();
  } catch (error) {
    exitWithError((error as Error).message);
  }
  let web: WebChat;
  try {
    web = new WebChat(chat, options);
  } catch (error) {
    exitWithError(webListenProblem(error, options));
  }
  sayWebListening({ ...web.addr, tls: options.tls });
  return web;
}

/**
 * Why the web side could not listen, in one sentence that names `--web`.
 *
 * @example
 * ```ts ignore
 * import { webListenProblem } from "./web_chat.ts";
 * webListenProblem(new Deno.errors.AddrInUse("…"), { host: "127.0.0.1", port: 5080 });
 * // "127.0.0.1:5080 is already in use: … pick another with --web PORT …"
 * ```
 */
export function webListenProblem(
  error: unknown,
  where: { host: string; port: number },
): string {
  if (error instanceof Error && error.message.startsWith("--web needs")) {
    return error.message; // the WebSocket library's permission (websocket.ts)
  }
  // explainNetError's advice names --port; the web side's flag is --web.
  return explainNetError(error, { action: "listen", ...where })
    .replace("--port", "--web");
}

/**
 * Prints `web page on http://HOST:PORT/` and, on `0.0.0.0`, the addresses
 * browsers on other machines can open (a browser cannot open `0.0.0.0`:
 * this machine's page is said at its loopback address).
 *
 * @example
 * ```ts ignore
 * import { sayWebListening } from "./web_chat.ts";
 * sayWebListening({ hostname: "0.0.0.0", port: 5080 });
 * // 11:40:03.123 web page on http://127.0.0.1:5080/ (this machine)
 * // 11:40:03.124 browsers on other machines can open http://192.168.1.23:5080/ (wlan0)
 * ```
 */
export function sayWebListening(
  where: { hostname: string; port: number; tls?: unknown },
): void {
  const scheme = where.tls ? "https" : "http";
  if (isWildcard(where.hostname)) {
    const here = where.hostname === "0.0.0.0" ? "127.0.0.1" : "::1";
    log(
      `web page on ${scheme}://${
        formatAddress(here, where.port)
      }/ (this machine)`,
    );
  } else {
    log(
      `web page on ${scheme}://${formatAddress(where.hostname, where.port)}/`,
    );
  }
  for (const line of lanAddresses(where.hostname, where.port)) {
    // net.ts words them for TCP: "other machines can connect to ADDR (if)".
    const lan = line.match(/can connect to (\S+) \((.+)\)$/);
    if (lan) {
      log(
        `browsers on other machines can open ${scheme}://${lan[1]}/ (${
          lan[2]
        })`,
      );
    }
  }
}

/**
 * Why a WebSocket upgrade with these headers must be refused (`null`: it
 * may go on). `Host` must be a LAN name (see the module doc) or one of
 * `ownNames`; `Origin`, when present, must be `http://` (with `tls`,
 * `https://`) + `Host`.
 *
 * @example
 * ```ts
 * import { upgradeProblem } from "./web_chat.ts";
 * const headers = (origin: string) =>
 *   new Headers({ host: "192.168.1.23:5080", origin });
 * upgradeProblem(headers("http://192.168.1.23:5080")); // null
 * upgradeProblem(headers("https://evil.example")); // "a page from https://evil.example may not join …"
 * ```
 */
export function upgradeProblem(
  headers: Headers,
  options: { ownNames?: readonly string[]; tls?: boolean } = {},
): string | null {
  const ownNames = options.ownNames ?? [];
  const scheme = options.tls ? "https" : "http";
  const host = headers.get("host")?.toLowerCase() ?? "";
  if (!isHostHeader(host)) return `bad Host header: ${clip(host)}`;
  const name = host.startsWith("[")
    ? host.slice(0, host.indexOf("]") + 1)
    : host.replace(/:\d+$/, "");
  if (!isLanName(name) && !ownNames.includes(name)) {
    return `the page was opened as ${
      clip(host)
    }, a name a web site could point at this machine; open it by IP address`;
  }
  const origin = headers.get("origin");
  if (origin !== null && origin.toLowerCase() !== `${scheme}://${host}`) {
    return `a page from ${clip(origin)} may not join a chat served at ${host}`;
  }
  return null;
}

/** An IP address, a name without dots, or one under a LAN-only suffix. */
function isLanName(name: string): boolean {
  return /^\d{1,3}(?:\.\d{1,3}){3}$/.test(name) || name.startsWith("[") ||
    !name.includes(".") || LAN_SUFFIXES.some((suffix) => name.endsWith(suffix));
}

/**
 * The headers of every page response: its type, and a content security
 * policy that allows the page's own script, its inline style sheet (by
 * hash) and its own WebSocket, and nothing else.
 */
function secured(
  type: string,
  page: { host: string | null; tls?: boolean } = { host: null },
): Headers {
  const { host } = page;
  const ws = page.tls ? "wss" : "ws";
  const socket = host !== null && isHostHeader(host) ? ` ${ws}://${host}` : "";
  return new Headers({
    "Content-Type": type,
    "Content-Security-Policy": [
      "default-src 'none'",
      "script-src 'self'",
      `style-src '${STYLE_HASH}'`,
      `connect-src 'self'${socket}`,
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join("; "),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
  });
}

/** A short plain-text response, with the same protective headers. */
function plain(
  status: number,
  text: string,
  extra: Record<string, string> = {},
): HttpResponse {
  const headers = secured("text/plain; charset=utf-8");
  for (const [name, value] of Object.entries(extra)) headers.set(name, value);
  return { status, headers, body: text.endsWith("\n") ? text : `${text}\n` };
}

/** `sha256-…`, the CSP source that allows exactly `text`. */
async function sha256Source(text: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(text),
  );
  return `sha256-${btoa(String.fromCharCode(...new Uint8Array(digest)))}`;
}

/** A header value made safe for the log and cut short. */
function clip(text: string): string {
  const safe = sanitizeText(text);
  return safe.length > 80 ? `${safe.slice(0, 80)}…` : safe;
}
