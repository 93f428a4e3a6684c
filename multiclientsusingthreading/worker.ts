/**
 * One worker thread of the chat server: serves its share of the clients.
 *
 * The chat's rules are `lib/chat_server.ts`, the same as the sandbox's. What
 * is particular to a worker is where things live: its own clients are in
 * its own room (no other thread touches them, so no lock); messages go to
 * the other workers through the mesh (`mesh.ts`), or in portable mode to the
 * main thread, which writes them to everyone (`fan_out_room.ts`); the roster
 * of everyone (names, `/who`) is the main thread's, asked by message; the
 * counters live in shared memory (`shared_stats.ts`).
 *
 * Connections reach a worker in one of two ways: it listens on the shared
 * port itself (`reuse-port`), or the main thread forwards their bytes
 * (`portable`, see `forwarder.ts`). Past that point the chat is the same.
 * With `--web`, worker 1 also serves the page, and its browsers join its
 * room like any client (`lib/web_chat.ts`).
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { type ChatMember, ChatServer } from "../lib/chat_server.ts";
import { isCommand, Outgoing } from "../lib/chat_room.ts";
import { FramingError } from "../lib/decoder.ts";
import { FRAMINGS } from "../lib/framing.ts";
import { LineDecoder } from "../lib/line_decoder.ts";
import { freeBuffer } from "../lib/io.ts";
import { concat } from "../lib/std.ts";
import { log } from "../lib/log.ts";
import { accepted, addressOf } from "../lib/net.ts";
import { guestName } from "../lib/nick.ts";
import { Outbox, Pacer, repliesLimit } from "../lib/outbox.ts";
import { type PendingHolder, PendingLimit } from "../lib/pending_limit.ts";
import { endReason, readLoop } from "../lib/read_loop.ts";
import type { Directory, Newcomer, RenameResult } from "../lib/roster.ts";
import { decodeLines } from "../lib/sanitize.ts";
import type { FromWorker, ToWorker, WorkerSettings } from "./messages.ts";
import { FanOutRoom } from "./fan_out_room.ts";
import { Mesh } from "./mesh.ts";
import { SharedStats } from "./shared_stats.ts";
import { type WireLog, wireLogFor } from "../lib/wire.ts";
import { acceptHandshake } from "../lib/tls.ts";
import { wireAccepted } from "../lib/wire_conn.ts";
import type { WebChat } from "../lib/web_chat.ts";

/**
 * A client as this worker sees it, whichever way its bytes travel: its
 * outbox is an {@linkcode Outbox} when this worker holds the connection
 * (reuse-port, a browser), a forwarding stub when the main thread does.
 */
type Client = ChatMember;

let settings: WorkerSettings;
let stats: SharedStats;
let listener: Deno.Listener | undefined;
let mesh: Mesh;
let chat: ChatServer<Client>;
let pending: PendingLimit;
/** This worker's share of the bound on replies unread (its own outboxes, reuse-port). */
let replies: PendingLimit;
let web: WebChat | undefined;

function post(message: FromWorker, transfer: Transferable[] = []): void {
  if (replying !== null) postReplies(); // what was said first goes first
  self.postMessage(message, transfer);
}

/**
 * portable: replies to one client, gathered until anything else is posted
 * (or this turn ends, or 64 KiB): a flood of commands would otherwise cost
 * the main thread, which serves every client, one message per answer.
 */
let replying: { id: number; parts: Uint8Array[]; size: number } | null = null;

/** The most bytes of replies gathered into one message. */
const REPLY_BATCH = 64 * 1024;

/** Has the main thread queue `bytes` for client `id` alone; its Outbox enforces the bounds. */
function reply(id: number, bytes: Uint8Array): boolean {
  if (
    replying !== null &&
    (replying.id !== id || replying.size + bytes.length > REPLY_BATCH)
  ) postReplies();
  if (replying === null) {
    replying = { id, parts: [], size: 0 };
    queueMicrotask(() => replying !== null && postReplies());
  }
  replying.parts.push(bytes);
  replying.size += bytes.length;
  return true;
}

function postReplies(): void {
  const { id, parts } = replying!;
  replying = null;
  const bytes = parts.length === 1 ? parts[0] : concat(parts);
  self.postMessage({ type: "reply", id, bytes } satisfies FromWorker);
}

// ---------------------------------------------------------------------------
// The roster is the main thread's: joins and leaves are told, renames and
// `/who` asked, each request answered by number.

let nextRequest = 1;
const waiting = new Map<number, (value: RenameResult | string[]) => void>();

function ask<T extends RenameResult | string[]>(
  message: (request: number) => FromWorker,
): Promise<T> {
  const request = nextRequest++;
  post(message(request));
  return new Promise((resolve) =>
    waiting.set(request, resolve as (value: RenameResult | string[]) => void)
  );
}

const directory: Directory = {
  join(newcomer: Newcomer): number {
    stats.joined();
    post({ type: "joined", ...newcomer });
    return stats.snapshot().clients - 1;
  },
  rename: (id, name) =>
    ask<RenameResult>((request) => ({ type: "rename", request, id, name })),
  names: () => ask<string[]>((request) => ({ type: "who", request })),
  leave(id, reason): void {
    stats.left();
    post({ type: "left", id, reason });
  },
};

/** `/stats`: the counters, read straight from shared memory, and this worker's memory. */
function statsLine(): string[] {
  const s = stats.snapshot();
  const m = Deno.memoryUsage();
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  return [
    `stats: ${s.clients} connected, ${s.joined} since start, ${
      plural(s.messages, "message")
    } relayed; memory: ${mib(m.rss)} MiB resident, this worker's heap ${
      mib(m.heapUsed)
    } of ${mib(m.heapTotal)} MiB, ${mib(m.external)} MiB external`,
  ];
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

// ---------------------------------------------------------------------------
// Pacing: read no more from a client while a receiver is behind, here
// (the outboxes this worker holds) or on another worker.

const pacer = new Pacer(localOutboxes);

function* localOutboxes(): Generator<Outbox> {
  for (const client of chat.room.members()) {
    if (client.outbox instanceof Outbox) yield client.outbox;
  }
}

function paced(): Promise<void> | undefined {
  const here = pacer.wait();
  const there = mesh.congested() ? mesh.drained() : undefined;
  if (here && there) return Promise.all([here, there]).then(() => {});
  return here ?? there;
}

/** Runs `step` once no receiver is behind, checked right before it runs. */
function whenClear(step: () => void | Promise<void>): void | Promise<void> {
  const wait = paced();
  return wait ? wait.then(() => whenClear(step)) : step();
}

// ---------------------------------------------------------------------------
// reuse-port: this worker listens and owns its connections.

async function acceptLoop(webAddr?: Deno.NetAddr): Promise<void> {
  const endpoint = { hostname: settings.host, port: settings.port };
  try {
    listener = settings.tls
      ? Deno.listenTls({ ...endpoint, ...settings.tls, reusePort: true })
      : Deno.listen({ ...endpoint, reusePort: true });
  } catch (error) {
    const { name, message } = error as Error;
    return post({ type: "listen-failed", error: name, message });
  }
  post({
    type: "ready",
    port: (listener.addr as Deno.NetAddr).port,
    web: webAddr,
  });
  const wire = wireLogFor(settings.wire, { framing: "line" });
  for await (const conn of accepted(listener)) void serveConnection(conn, wire);
}

async function serveConnection(
  accepted: Deno.Conn,
  wire?: WireLog,
): Promise<void> {
  // TLS: the handshake first; nothing is said to a client before it.
  const failure = await acceptHandshake(accepted);
  if (failure) {
    return log(`${addressOf(accepted.remoteAddr)} ${failure}`);
  }
  const conn = wireAccepted(accepted, wire);
  const outbox = new Outbox(conn, { limit: settings.outboxLimit, replies });
  const id = stats.nextClientId();
  const client: Client = {
    id,
    name: guestName(id),
    peer: addressOf(conn.remoteAddr),
    framing: FRAMINGS.line,
    outbox,
    close: (last) => outbox.close(last),
  };
  chat.enter(client);
  const end = await readLoop(conn, {
    decoder: new LineDecoder({ maxLength: settings.maxLine, runs: true }),
    onMessages: (runs) => {
      // Relay only while no receiver, here or on another worker, is behind:
      // checked just before, so many senders at once cannot push a reader
      // past its bound.
      return whenClear(() => chat.receive(client, runs.flatMap(decodeLines)));
    },
    pending,
    onEvicted: (held) => chat.drop(client, evictedReason(held)),
    lost: () => outbox.reason !== undefined,
  });
  if (end.kind === "framing") return await chat.drop(client, end.error.message);
  chat.leave(client, outbox.reason ?? endReason(end));
  await outbox.close();
}

function evictedReason(held: number): string {
  return `held ${held} bytes of an unfinished line when the server was full`;
}

// ---------------------------------------------------------------------------
// portable: the main thread owns the connection and forwards its bytes.

/** A forwarded connection: its decoder, and its lines still being handled. */
interface Forwarded extends PendingHolder {
  client: Client;
  decoder: LineDecoder;
  /** Set while a command waits for the main thread: later bytes queue behind it. */
  busy: Promise<void> | null;
}

const forwarded = new Map<number, Forwarded>();

function openForwarded(id: number, peer: string): void {
  const toMain = (bytes: Uint8Array): boolean => reply(id, bytes);
  const client: Client = {
    id,
    name: guestName(id),
    peer,
    framing: FRAMINGS.line,
    outbox: {
      // What the chat says to this client alone: the main thread queues it
      // as a reply (a broadcast goes as one message for everyone:
      // fan_out_room.ts).
      send: toMain,
      reply: toMain,
    },
    close: (last) => {
      forwarded.delete(id);
      post({ type: "close", id, last });
      return Promise.resolve();
    },
  };
  forwarded.set(id, {
    client,
    decoder: new LineDecoder({ maxLength: settings.maxLine, runs: true }),
    busy: null,
    evict: (held) => void chat.drop(client, evictedReason(held)),
  });
  chat.enter(client);
}

/** Runs `step` for a forwarded client after whatever it is still doing. */
function inOrder(entry: Forwarded, step: () => void | Promise<void>): void {
  const run = (): void | Promise<void> => step();
  const next = entry.busy ? entry.busy.then(run) : run();
  if (next) {
    const done: Promise<void> = next.finally(() => {
      if (entry.busy === done) entry.busy = null;
    });
    entry.busy = done;
  }
}

function forwardedData(id: number, bytes: Uint8Array<ArrayBuffer>): void {
  const entry = forwarded.get(id);
  if (!entry) return; // closed meanwhile
  inOrder(entry, () => {
    let runs: Uint8Array[];
    try {
      runs = entry.decoder.push(bytes);
      pending.hold(entry, entry.decoder.buffered);
    } catch (error) {
      if (!(error instanceof FramingError)) throw error;
      pending.release(entry);
      return chat.drop(entry.client, error.message);
    }
    const size = bytes.length;
    const texts = runs.flatMap(decodeLines);
    freeBuffer(bytes); // decoded, and the rest copied into the decoder
    // Commands are answered to their sender alone: their bytes need not hold
    // the other clients' posts while this worker answers thousands of them.
    const quiet = size - entry.decoder.buffered - messageBytes(texts);
    if (quiet > 0) post({ type: "release", id, bytes: quiet });
    // The ack lets the main thread read more: after the lines are handled
    // and no other worker is behind.
    const ack = (): void => post({ type: "ack", id, bytes: size });
    const asked = chat.receive(entry.client, texts);
    const wait = asked ? asked.then(paced) : paced();
    if (wait) return wait.then(ack);
    ack();
  });
}

/**
 * At least the bytes the chat messages among `texts` came in (UTF-16 units
 * times 3, and a line's end): what a post may relay to everyone.
 */
function messageBytes(texts: readonly string[]): number {
  let bytes = 0;
  for (const text of texts) {
    if (!isCommand(text)) bytes += 3 * text.length + 2;
  }
  return bytes;
}

function forwardedEnd(id: number, reason: string, finished: boolean): void {
  const entry = forwarded.get(id);
  if (!entry) return;
  inOrder(entry, () => {
    pending.release(entry);
    // A last line without "\n" counts at a clean end, not when cut by a reset.
    let last: Uint8Array | null = null;
    try {
      last = finished ? entry.decoder.end() : null;
    } catch {
      // a line decoder's end never throws
    }
    entry.decoder.clear(); // a line cut short by a reset gives back its memory now
    const asked = last
      ? chat.receive(entry.client, [last].flatMap(decodeLines))
      : undefined;
    const leave = (): void => {
      chat.leave(entry.client, reason);
      // Whatever it asked before it shut its side is answered: now close.
      if (forwarded.delete(id)) post({ type: "close", id });
    };
    if (asked) return asked.then(leave);
    leave();
  });
}

// ---------------------------------------------------------------------------
// Lifecycle: start, shutdown, crash.

async function start(startSettings: WorkerSettings): Promise<void> {
  settings = startSettings;
  stats = new SharedStats(settings.stats);
  pending = new PendingLimit(settings.maxUnfinished);
  replies = repliesLimit(settings.maxReplies);
  const where = `worker ${settings.index}`;
  // portable: the main thread writes each broadcast to every forwarded
  // client, whichever worker serves it (see fan_out_room.ts).
  const room = settings.mode === "portable"
    ? new FanOutRoom<Client>({
      post: (message) => {
        // Counted until the main thread has them out (see mesh.ts), so a
        // browser's messages wait here while a client there reads slowly.
        if (message.type === "broadcast") mesh.toMain(message.bytes.length);
        post(message);
      },
      forwarded: (client) => forwarded.has(client.id),
    })
    : undefined;
  mesh = new Mesh(settings.index, {
    backlog: settings.backlog,
    limit: settings.backlogLimit,
    main: settings.mode === "portable",
    // Messages from other workers go to all of ours (portable: those whose
    // socket this worker holds; the main thread wrote to the rest).
    deliver: (bytes) => {
      const message = Outgoing.encoded("line", bytes);
      if (room) room.here(message);
      else chat.room.broadcast(message);
      return pacer.wait();
    },
  });
  chat = new ChatServer<Client>({
    directory,
    room,
    maxMessage: settings.maxLine,
    maxCommands: settings.maxCommands,
    where,
    // To the other workers' clients; in portable mode only browsers (on
    // worker 1, with --web) are not reached through the main thread.
    relay: room && settings.web === undefined
      ? undefined
      : (message) => mesh.send(message.bytes(FRAMINGS.line)),
    commands: [{
      usage: "/stats",
      help: "clients and messages, counted in shared memory",
      run: statsLine,
    }],
    onRelayed: (count) => stats.relayed(count),
    // a read of short lines from a long name relays many times its size
    maxBatch: settings.outboxLimit / 8,
    pace: paced,
  });
  const webAddr = await serveWeb();
  if (settings.mode === "reuse-port") void acceptLoop(webAddr);
  else post({ type: "ready", port: settings.port, web: webAddr });
}

/**
 * `--web`, in worker 1: the page and its WebSocket (HTTPS and WSS with
 * `--tls`). Loaded only then, so a server without `--web` never reads web/.
 */
async function serveWeb(): Promise<Deno.NetAddr | undefined> {
  if (settings.web === undefined || settings.index !== 1) return undefined;
  const { WebChat } = await import("../lib/web_chat.ts");
  const { loadWebSockets } = await import("../lib/websocket.ts");
  try {
    await loadWebSockets();
    web = new WebChat(chat, {
      host: settings.host,
      port: settings.web,
      newId: () => stats.nextClientId(),
      pacer: { wait: paced },
      maxFrame: settings.maxLine,
      outboxLimit: settings.outboxLimit,
      replies,
      pending,
      tls: settings.tls,
    });
  } catch (error) {
    const { name, message } = error as Error;
    post({ type: "web-failed", error: name, message });
    return undefined;
  }
  return web.addr;
}

async function shutdown(): Promise<void> {
  listener?.close();
  await chat.shutdown();
  await web?.shutdown(); // after the chat told every browser why
  mesh.close();
  post({ type: "stopped" });
}

let crashing = false;

/**
 * An uncaught error: tell this worker's clients, let the others know they
 * left, report to the main thread (which starts a replacement), and stop.
 */
async function crash(error: unknown): Promise<void> {
  if (crashing) return;
  crashing = true;
  listener?.close();
  const message = error instanceof Error ? error.message : String(error);
  const reason = `server error in worker ${settings.index}`;
  await Promise.all(
    [...chat.room.members()].map((client) => chat.drop(client, reason)),
  );
  await web?.shutdown(); // frees the page's port for the replacement
  mesh.close();
  post({ type: "crashed", message });
  self.close();
}

self.addEventListener("error", (event) => {
  event.preventDefault();
  void crash(event.error);
});
self.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  void crash(event.reason);
});

self.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  switch (message.type) {
    case "start":
      return void start(message.settings);
    case "peer":
      return mesh.connect(message.index, message.port);
    case "peer-gone":
      return mesh.disconnect(message.index);
    case "open":
      return openForwarded(message.id, message.peer);
    case "data":
      return forwardedData(message.id, message.bytes);
    case "end":
      return forwardedEnd(message.id, message.reason, message.finished);
    case "answer":
      waiting.get(message.request)?.(message.value);
      waiting.delete(message.request);
      return;
    case "shutdown":
      void shutdown();
      return;
    case "crash":
      setTimeout(() => {
        throw new Error("crash drill: this worker was told to fail (SIGUSR2)");
      });
      return;
  }
};
