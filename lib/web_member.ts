/**
 * One browser in the chat: a WebSocket made into a chat member under the
 * same rules as a TCP client.
 *
 * Each WebSocket text message is one chat line; the server sends one text
 * message per line. The member speaks line framing, so what the room
 * broadcasts to it is line bytes; a {@linkcode SocketWriter} turns each
 * line into one message. That writer sits behind an ordinary `Outbox`, so
 * a browser gets the TCP client's bound, pacing and cut-off unchanged.
 *
 * A WebSocket has no backpressure of its own: `send()` never waits. Deno's
 * server-side `bufferedAmount` counts the bytes `send()` took that are not
 * yet written to the socket (not what sits in the kernel's buffers), so a
 * write waits while it is over a high-water mark: for the `Outbox`, a
 * browser that stops reading is a connection whose writes stop finishing.
 *
 * @example
 * ```ts ignore
 * import { serveBrowser } from "./web_member.ts";
 * import { Pacer } from "./outbox.ts";
 *
 * const { socket, response } = Deno.upgradeWebSocket(request);
 * socket.onopen = () =>
 *   serveBrowser(socket, { chat, id: 7, peer: "127.0.0.1:50312 (web)", pacer });
 * return response;
 * ```
 *
 * @module
 */

import type { ChatMember, ChatServer } from "./chat_server.ts";
import { DEFAULT_MAX_MESSAGE } from "./decoder.ts";
import { utf8Length } from "./encoders.ts";
import { type Framing, FRAMINGS } from "./framing.ts";
import type { Closer, Writer } from "./io.ts";
import { log, warn } from "./log.ts";
import { guestName } from "./nick.ts";
import { DEFAULT_OUTBOX_LIMIT, Outbox, type Pacer } from "./outbox.ts";
import type { PendingLimit } from "./pending_limit.ts";
import { delay, settledWithin } from "./std.ts";

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
  /** A client that stopped reading, or sends faster than the room reads. */
  policy: 1008,
  /** A message over `--max-frame`. */
  tooBig: 1009,
  /** The server is full. */
  tryLater: 1013,
} as const;

/** A close frame's code and reason. */
export interface CloseFrame {
  /** The close code (see {@linkcode CLOSE_CODES}). */
  code: number;
  /** A short reason, at most 123 bytes of UTF-8. */
  reason: string;
}

/** The part of a WebSocket that a {@linkcode SocketWriter} uses. */
export interface TextSocket {
  /** `1` while open. */
  readonly readyState: number;
  /** Bytes taken by `send()` and not yet written to the connection. */
  readonly bufferedAmount: number;
  /** Queues one text message. */
  send(text: string): void;
  /** Starts the closing handshake. */
  close(code?: number, reason?: string): void;
}

/** Options of {@linkcode SocketWriter}. */
export interface SocketWriterOptions {
  /** A write waits while more than this many bytes are unwritten (default 64 KiB). */
  highWater?: number;
  /** How often a waiting write looks at `bufferedAmount`, in ms (default 10). */
  pollMs?: number;
  /** The close frame to send when the writer closes (default 1000, no reason). */
  closing?: () => CloseFrame;
}

/** The default high-water mark of a {@linkcode SocketWriter}: 64 KiB. */
export const DEFAULT_HIGH_WATER = 64 * 1024;

const OPEN = 1;
const CONNECTING = 0;
const utf8 = new TextDecoder();

/**
 * A `Writer` over a WebSocket, for an `Outbox`: each write is whole lines
 * (what a room broadcasts in line framing), and each line goes out as one
 * text message. The write resolves once the socket's unwritten bytes are
 * back under the high-water mark, so a peer that stops reading stops the
 * writes (Deno's WebSocket has no other backpressure). Closing sends a
 * close frame.
 *
 * @example
 * ```ts
 * import { SocketWriter } from "./web_member.ts";
 * const sent: string[] = [];
 * const socket = {
 *   readyState: 1,
 *   bufferedAmount: 0,
 *   send: (text: string) => void sent.push(text),
 *   close: () => {},
 * };
 * await new SocketWriter(socket).write(new TextEncoder().encode("a\nb\n"));
 * sent; // ["a", "b"]
 * ```
 */
export class SocketWriter implements Writer, Closer {
  readonly #socket: TextSocket;
  readonly #highWater: number;
  readonly #pollMs: number;
  readonly #closing: () => CloseFrame;
  #closed = false;

  /** Writes to `socket`; see {@linkcode SocketWriterOptions}. */
  constructor(socket: TextSocket, options: SocketWriterOptions = {}) {
    this.#socket = socket;
    this.#highWater = options.highWater ?? DEFAULT_HIGH_WATER;
    this.#pollMs = options.pollMs ?? 10;
    this.#closing = options.closing ?? (() => ({ code: 1000, reason: "" }));
  }

  /**
   * Sends each line of `p` (a last piece without `\n` as a line too) as
   * one message; resolves with `p.length` once the socket has caught up.
   * Rejects with `BrokenPipe` once the socket or the writer is closed.
   */
  async write(p: Uint8Array): Promise<number> {
    this.#checkOpen();
    const lines = utf8.decode(p).split("\n");
    if (lines[lines.length - 1] === "") lines.pop();
    for (const line of lines) this.#socket.send(line);
    while (this.#socket.bufferedAmount > this.#highWater) {
      await delay(this.#pollMs);
      this.#checkOpen();
    }
    return p.length;
  }

  /** Sends the close frame `closing` gives (once); a waiting write rejects. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const state = this.#socket.readyState;
    if (state !== OPEN && state !== CONNECTING) return;
    const { code, reason } = this.#closing();
    this.#socket.close(code, clipUtf8(reason, 123));
  }

  #checkOpen(): void {
    if (this.#closed || this.#socket.readyState !== OPEN) {
      throw new Deno.errors.BrokenPipe("the WebSocket is closed");
    }
  }
}

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
  /** How long a close waits for the browser's closing handshake, in ms (default 1000). */
  closeWaitMs?: number;
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
  readonly #closeWaitMs: number;
  readonly #closed: Promise<void>;

  /** A member over `socket` (a WebSocket); see {@linkcode WebMemberOptions}. */
  constructor(socket: TextSocket & EventTarget, options: WebMemberOptions) {
    this.id = options.id;
    this.peer = options.peer;
    this.name = options.name;
    this.#closeWaitMs = options.closeWaitMs ?? 1000;
    this.#closed = new Promise((resolve) => {
      socket.addEventListener("close", () => resolve(), { once: true });
    });
    const writer = new SocketWriter(socket, { closing: () => this.#closing() });
    this.outbox = new Outbox(writer, {
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
   * the browser answered it (or after the close wait: a browser that
   * stopped reading never answers).
   */
  async close(last?: Uint8Array): Promise<void> {
    await this.outbox.close(last);
    await settledWithin(this.#closed, this.#closeWaitMs);
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
  /** Paces the room: relaying waits while a receiver's outbox is congested. */
  pacer: Pick<Pacer, "wait">;
  /** The largest message accepted, in bytes of UTF-8 (default 64 KiB). */
  maxFrame?: number;
  /** Disconnect after this many seconds without a message (0, the default: never). */
  idleTimeout?: number;
  /**
   * Bytes queued for the browser beyond which it is cut off, and bytes it
   * may send while the room is paced before it is (default 1 MiB).
   */
  outboxLimit?: number;
  /** The server-wide bound on replies, shared with the server's other outboxes (see `Outbox`). */
  replies?: PendingLimit;
  /** Refuse it when the room has this many members (default: no limit). */
  maxClients?: number;
  /** How long a close waits for the browser's closing handshake, in ms (default 1000). */
  closeWaitMs?: number;
}

/**
 * One browser's life in the chat, from an open WebSocket: enter, receive
 * and relay, leave. Resolves once the socket closed. The rules are the TCP
 * client's: `--max-clients` counts everyone, a message over `maxFrame`
 * gets a notice and a close (1009), idle time counts messages; binary
 * messages are refused with a notice. The pending limit has no part here:
 * a WebSocket message arrives whole.
 *
 * Deno reads a WebSocket whether or not we are ready, so while the room is
 * paced a browser's messages wait in an inbox bounded like its outbox: one
 * that sends past that bound is cut off as too fast.
 *
 * @example
 * ```ts ignore
 * import { serveBrowser } from "./web_member.ts";
 * socket.onopen = () => serveBrowser(socket, { chat, id, peer, pacer });
 * ```
 */
export async function serveBrowser(
  socket: WebSocket,
  options: BrowserOptions,
): Promise<void> {
  const { chat, pacer } = options;
  const maxFrame = options.maxFrame ?? DEFAULT_MAX_MESSAGE;
  const inboxLimit = options.outboxLimit ?? DEFAULT_OUTBOX_LIMIT;
  const member: WebMember = new WebMember(socket, {
    id: options.id,
    peer: options.peer,
    name: guestName(options.id),
    outboxLimit: options.outboxLimit,
    replies: options.replies,
    closeWaitMs: options.closeWaitMs,
    // Later, not inside the broadcast that overflowed it.
    onOverflow: () =>
      queueMicrotask(() =>
        chat.leave(member, member.outbox.reason ?? "too slow")
      ),
  });
  const ended = new Promise<CloseEvent>((resolve) => {
    socket.addEventListener("close", resolve, { once: true });
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
    return await member.close();
  }

  let inbox: string[] = [];
  let held = 0;
  let entered = false;
  let relaying = false;
  const relay = async (): Promise<void> => {
    relaying = true;
    try {
      while (inbox.length > 0 && member.left === undefined) {
        const texts = inbox;
        inbox = [];
        held = 0;
        await chat.receive(member, texts);
        await pacer.wait();
      }
    } finally {
      relaying = false;
    }
  };
  const idle = idleTimer(options.idleTimeout ?? 0, (seconds) => {
    member.closeWith(CLOSE_CODES.normal, "idle");
    void chat.drop(member, `idle for ${seconds} s`);
  });

  socket.onmessage = (event: MessageEvent) => {
    if (member.left !== undefined) return;
    idle.touch();
    if (typeof event.data !== "string") {
      chat.tell(member, "binary messages are not accepted; send text");
      return;
    }
    const text = event.data;
    const size = text.length * 3 <= maxFrame ? text.length : utf8Length(text);
    if (size > maxFrame) {
      const problem =
        `message of ${size} bytes is over the maximum of ${maxFrame} bytes`;
      warn(`${member.peer}: ${problem}`);
      member.closeWith(CLOSE_CODES.tooBig, "message too big");
      void chat.drop(member, problem);
      return;
    }
    inbox.push(text);
    held += size;
    if (held > inboxLimit) {
      member.closeWith(CLOSE_CODES.policy, "too fast");
      void chat.drop(member, `too fast: ${held} bytes not yet relayed`);
      return;
    }
    if (entered && !relaying) void relay();
  };

  await chat.enter(member);
  entered = true;
  if (!relaying) void relay();

  const end = await ended;
  idle.stop();
  chat.leave(member, member.outbox.reason ?? closeReason(end));
  await member.outbox.close();
}

/** Why a browser's socket closed, for a `has left (…)` notice: empty when it just left. */
function closeReason(event: CloseEvent): string {
  if (event.code === 1000 || event.code === 1001 || event.code === 1005) {
    return "";
  }
  if (event.code === 1006 || event.code === 0) return "connection lost";
  return `closed with WebSocket code ${event.code}`;
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

/** `text` cut to at most `max` bytes of UTF-8, never inside a character. */
function clipUtf8(text: string, max: number): string {
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
