/**
 * One browser in the chat: a WebSocket made into a chat member under the
 * same rules as a TCP client.
 *
 * Each WebSocket text message is one chat line; the server sends one text
 * message per line. The member speaks line framing, so what the room
 * broadcasts to it is line bytes; its `WebSocketConn` turns each line into
 * one message. That connection is the writer of an ordinary `Outbox`, so a
 * browser gets the TCP client's bound, pacing and cut-off unchanged, and
 * its reads are paced as a TCP client's are: while a receiver is behind,
 * nothing more is read from it.
 *
 * @example
 * ```ts ignore
 * import { serveBrowser } from "./web_member.ts";
 * import { WebSocketConn } from "./websocket.ts";
 * // after the 101 answer to the handshake:
 * await serveBrowser(new WebSocketConn(conn), { chat, id: 7, peer: "127.0.0.1:50312 (web)", pacer });
 * ```
 *
 * @module
 */

import type { ChatMember, ChatServer } from "./chat_server.ts";
import { DEFAULT_MAX_MESSAGE } from "./decoder.ts";
import { type Framing, FRAMINGS } from "./framing.ts";
import { log, warn } from "./log.ts";
import { guestName } from "./nick.ts";
import { DEFAULT_OUTBOX_LIMIT, Outbox, type Pacer } from "./outbox.ts";
import type { PendingLimit } from "./pending_limit.ts";
import type { CloseFrame, WebSocketConn, WebSocketEnd } from "./websocket.ts";

/** A chat member whose bytes go through an `Outbox`: a TCP client or a browser. */
export interface OutboxMember extends ChatMember {
  /** Its bounded output queue. */
  readonly outbox: Outbox;
}

/** The WebSocket close codes used here (RFC 6455, section 7.4.1). */
export const CLOSE_CODES = {
  /** The session ended as asked: `/quit`, idle. */
  normal: 1000,
  /** The server is shutting down. */
  goingAway: 1001,
  /** A client that stopped reading. */
  policy: 1008,
  /** A message over `--max-frame`. */
  tooBig: 1009,
  /** The server is full. */
  tryLater: 1013,
} as const;

/** Options of {@linkcode WebMember}. */
export interface WebMemberOptions {
  /** Unique within the server. */
  id: number;
  /** Its address, for the log. */
  peer: string;
  /** Its first name, e.g. `guest-3`. */
  name: string;
  /** Bytes queued for the browser beyond which it is cut off (default 1 MiB). */
  outboxLimit?: number;
  /** The server-wide bound on replies, shared with the server's other outboxes (see `Outbox`). */
  replies?: PendingLimit;
  /** Called once when the outbox cuts the browser off as too slow. */
  onOverflow?: (queued: number) => void;
}

/**
 * A browser as a chat member: line framing, an `Outbox` whose writer is
 * the WebSocket, and a close that sends a close frame whose code says why
 * (see {@linkcode CLOSE_CODES}).
 *
 * @example
 * ```ts ignore
 * import { WebMember } from "./web_member.ts";
 * const member = new WebMember(socket, {
 *   id: 3,
 *   peer: "127.0.0.1:50312 (web)",
 *   name: "guest-3",
 * });
 * member.outbox.send(new TextEncoder().encode("* hello\n")); // one message: "* hello"
 * ```
 */
export class WebMember implements OutboxMember {
  /** Unique within the server. */
  readonly id: number;
  /** Its address, for the log. */
  readonly peer: string;
  /** What others see before its messages. */
  name: string;
  /** Always line framing: each line becomes one WebSocket message. */
  readonly framing: Framing = FRAMINGS.line;
  /** Its bounded output queue. */
  readonly outbox: Outbox;
  /** Set once it left the chat, with why. */
  left?: string;
  #frame: CloseFrame | undefined;
  readonly #ws: WebSocketConn;

  /** A member over `ws`; see {@linkcode WebMemberOptions}. */
  constructor(ws: WebSocketConn, options: WebMemberOptions) {
    this.id = options.id;
    this.peer = options.peer;
    this.name = options.name;
    this.#ws = ws;
    this.outbox = new Outbox({
      write: (p) => ws.write(p),
      close: () => void ws.close(this.#closing()),
    }, {
      limit: options.outboxLimit ?? DEFAULT_OUTBOX_LIMIT,
      replies: options.replies,
      onOverflow: options.onOverflow,
    });
  }

  /** The close frame its next close sends, when the reason is not the usual one. */
  closeWith(code: number, reason: string): void {
    this.#frame ??= { code, reason };
  }

  /**
   * Sends what is queued, then `last`, then a close frame; resolves once
   * the connection is closed: the browser answered, or the close wait
   * passed (a browser that stopped reading never answers).
   */
  async close(last?: Uint8Array): Promise<void> {
    await this.outbox.close(last);
    await this.#ws.close(this.#closing());
  }

  /** Why it closes: cut off, a reason given, shut down, or it quit. */
  #closing(): CloseFrame {
    if (this.outbox.reason !== undefined) {
      return { code: CLOSE_CODES.policy, reason: this.outbox.reason };
    }
    if (this.#frame) return this.#frame;
    return this.left === undefined
      ? { code: CLOSE_CODES.goingAway, reason: "server shutting down" }
      : { code: CLOSE_CODES.normal, reason: "bye" };
  }
}

/** Options of {@linkcode serveBrowser}. */
export interface BrowserOptions {
  /** The chat it joins. */
  chat: ChatServer<ChatMember>;
  /** Its id, from the server's one counter (TCP clients' too). */
  id: number;
  /** Its address, for the log, e.g. `127.0.0.1:50312 (web)`. */
  peer: string;
  /** Paces the room: nothing more is read while a receiver's outbox is congested. */
  pacer: Pick<Pacer, "wait">;
  /** The largest message accepted, in bytes of UTF-8 (default 64 KiB), as the `WebSocketConn` was made with. */
  maxFrame?: number;
  /** Disconnect after this many seconds without a message (0, the default: never). */
  idleTimeout?: number;
  /** Bytes queued for the browser beyond which it is cut off (default 1 MiB). */
  outboxLimit?: number;
  /** The server-wide bound on replies, shared with the server's other outboxes (see `Outbox`). */
  replies?: PendingLimit;
  /** Refuse it when the room has this many members (default: no limit). */
  maxClients?: number;
}

/**
 * One browser's life in the chat, from an open WebSocket: enter, receive
 * and relay, leave. Resolves once the connection is closed. The rules are
 * the TCP client's: `--max-clients` counts everyone, a message over
 * `maxFrame` gets a notice and a close (1009), idle time counts messages,
 * and what one read brought is relayed, paced, before the next read;
 * binary messages are refused with a notice. Messages a browser sent
 * before it closed are relayed before it leaves.
 *
 * @example
 * ```ts ignore
 * import { serveBrowser } from "./web_member.ts";
 * await serveBrowser(ws, { chat, id, peer, pacer });
 * ```
 */
export async function serveBrowser(
  ws: WebSocketConn,
  options: BrowserOptions,
): Promise<void> {
  const { chat, pacer } = options;
  const maxFrame = options.maxFrame ?? DEFAULT_MAX_MESSAGE;
  const member: WebMember = new WebMember(ws, {
    id: options.id,
    peer: options.peer,
    name: guestName(options.id),
    outboxLimit: options.outboxLimit,
    replies: options.replies,
    // Later, not inside the broadcast that overflowed it.
    onOverflow: () =>
      queueMicrotask(() =>
        chat.leave(member, member.outbox.reason ?? "too slow")
      ),
  });

  const max = options.maxClients;
  if (max !== undefined && chat.room.size >= max) {
    log(
      `${member.peer} refused: server full (${max} client${
        max === 1 ? "" : "s"
      })`,
    );
    member.closeWith(CLOSE_CODES.tryLater, "server full");
    chat.tell(
      member,
      `server full (${max} client${max === 1 ? "" : "s"}); try again later`,
    );
    // Read on, so that the browser's answer to our close frame is seen.
    const reading = (async () => {
      while (await ws.read() !== null); // refused: nothing is relayed
    })();
    await member.close();
    return await reading;
  }

  chat.enter(member);
  const idle = idleTimer(options.idleTimeout ?? 0, (seconds) => {
    member.closeWith(CLOSE_CODES.normal, "idle");
    void chat.drop(member, `idle for ${seconds} s`);
  });
  // Read on after leaving (cut off, idle): the close handshake ends it.
  for (let batch = await ws.read(); batch !== null; batch = await ws.read()) {
    if (member.left !== undefined) continue;
    idle.touch();
    const texts: string[] = [];
    for (const message of batch) {
      if (typeof message === "string") texts.push(message);
      else chat.tell(member, "binary messages are not accepted; send text");
    }
    if (texts.length === 0) continue;
    for (let wait = pacer.wait(); wait; wait = pacer.wait()) await wait;
    await chat.receive(member, texts);
  }
  idle.stop();
  const end = ws.end ?? { kind: "lost" };
  if (end.kind === "evicted") {
    // cut off by the server-wide bound on unfinished messages, as a TCP
    // client holding an unfinished line: its connection is closed already
    chat.leave(
      member,
      `held ${end.held} bytes of an unfinished message when the server was full`,
    );
    return await member.close();
  }
  if (end.kind === "broken" && member.left === undefined) {
    const problem = end.code === CLOSE_CODES.tooBig
      ? `message over the maximum of ${maxFrame} bytes`
      : `broke the WebSocket protocol (${end.problem})`;
    warn(`${member.peer}: ${problem}`);
    member.closeWith(
      end.code,
      end.code === CLOSE_CODES.tooBig ? "message too big" : "protocol error",
    );
    return await chat.drop(member, problem);
  }
  // The browser closed first: its close code comes back (RFC 6455, 5.5.1).
  if (end.kind === "closed") member.closeWith(echoedCode(end.code), "bye");
  chat.leave(member, member.outbox.reason ?? closeReason(end));
  await member.close();
}

/**
 * The code answering a peer's close frame: its own, where it may be sent
 * (1005, "no code", may not: 1000 then).
 */
function echoedCode(code: number): number {
  const sendable = (code >= 1000 && code <= 1003) ||
    (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
  return sendable ? code : CLOSE_CODES.normal;
}

/** Why a browser's reading ended, for a `has left (…)` notice: empty when it just left. */
function closeReason(end: WebSocketEnd): string {
  if (end.kind === "lost") return "connection lost";
  if (end.kind === "broken") return end.problem;
  if (end.kind === "evicted") return "server full";
  if (end.code === 1000 || end.code === 1001 || end.code === 1005) return "";
  return `closed with WebSocket code ${end.code}`;
}

/** A session's idle timer, re-armed lazily: a message only stamps the time. */
function idleTimer(
  seconds: number,
  onIdle: (seconds: number) => void,
): { touch(): void; stop(): void } {
  if (seconds <= 0) return { touch() {}, stop() {} };
  const timeout = seconds * 1000;
  let last = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const check = (): void => {
    const left = last + timeout - Date.now();
    if (left > 0) timer = setTimeout(check, left);
    else onIdle(seconds);
  };
  timer = setTimeout(check, timeout);
  return {
    touch: () => void (last = Date.now()),
    stop: () => clearTimeout(timer),
  };
}
