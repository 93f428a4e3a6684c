/**
 * One worker thread of the chat server: serves its share of the clients.
 *
 * Each worker keeps the clients it serves in its own {@linkcode ChatRoom}
 * (no other thread touches it, so it needs no lock). A message from one of
 * them goes to its local clients directly and to the other workers through
 * the relay (`relay.ts`: a MessagePort to each, which keeps the order). The main
 * thread owns the roster of everyone (joins, leaves, `/who`); the counters
 * live in shared memory (`shared_stats.ts`).
 *
 * Connections reach a worker in one of two ways (see `messages.ts`): it
 * listens on the shared port itself (`reuse-port`), or the main thread
 * relays their bytes (`portable`). Past that point the chat is the same.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import {
  chatMessage,
  ChatRoom,
  helpLines,
  type Member,
  MessageBatch,
  notice,
  parseChatInput,
} from "../lib/chat_room.ts";
import { describePeerError } from "../lib/errors.ts";
import { FramingError } from "../lib/decoder.ts";
import { encodeLine } from "../lib/encoders.ts";
import { FRAMINGS } from "../lib/framing.ts";
import { LineDecoder } from "../lib/line_decoder.ts";
import { Outbox, Pacer } from "../lib/outbox.ts";
import { accepted, addressOf } from "../lib/net.ts";
import { readLoop } from "../lib/read_loop.ts";
import { decodeLines, sanitizeText } from "../lib/sanitize.ts";
import type { FromWorker, ToWorker, WorkerSettings } from "./messages.ts";
import { Relay } from "./relay.ts";
import { SharedStats } from "./shared_stats.ts";

/** A client as this worker sees it, whichever way its bytes travel. */
interface Client extends Member {
  /** reuse-port: the real outbox (portable: the main thread has it). */
  readonly local?: Outbox;
  /** Its address, for logs. */
  readonly peer: string;
  /** Sends `last` (if any), then closes the connection. */
  close(last?: string): Promise<void>;
  /** Set once it left the room, with why. */
  left?: string;
}

const HELP = encodeLine(
  helpLines([
    ["/who", "who is connected (on every worker)"],
    ["/stats", "clients and messages, counted in shared memory"],
    ["/quit [message]", "leave, with a last word for the others"],
    ["/help", "this list"],
    ["//text", "send text that starts with /"],
  ]).join("\n"),
);

let settings: WorkerSettings;
let stats: SharedStats;
let listener: Deno.TcpListener | undefined;
let relay: Relay;
const room = new ChatRoom<Client>();
const remote = new Map<number, { client: Client; decoder: LineDecoder }>();

function post(message: FromWorker, transfer: Transferable[] = []): void {
  flushSends(); // what was sent before goes first
  self.postMessage(message, transfer);
}

/**
 * portable: bytes for clients whose connections the main thread holds.
 * Consecutive sends of the same bytes (a broadcast) are posted as one
 * message naming every receiver, at the end of the task or before any
 * other message, so each client's bytes keep their order.
 */
let pendingSend: { bytes: Uint8Array; ids: number[] } | null = null;

function sendRemote(id: number, bytes: Uint8Array): void {
  if (pendingSend?.bytes === bytes) {
    pendingSend.ids.push(id);
    return;
  }
  flushSends();
  pendingSend = { bytes, ids: [id] };
  queueMicrotask(flushSends);
}

function flushSends(): void {
  if (pendingSend === null) return;
  const { bytes, ids } = pendingSend;
  pendingSend = null;
  self.postMessage({ type: "send", ids, bytes } satisfies FromWorker);
}

// ---------------------------------------------------------------------------
// The chat: the same for both ways of carrying bytes.

/** Joins `client`: a welcome to it, a notice to everyone else. */
function enter(client: Client): void {
  stats.joined();
  room.join(client);
  const others = stats.snapshot().clients - 1;
  client.outbox.send(encodeLine(notice(
    `welcome ${client.name} (worker ${settings.index}): ${others} other${
      others === 1 ? "" : "s"
    } ` +
      `here; type to chat, /help for commands`,
  )));
  announce(`${client.name} has joined`, client.id);
  post({
    type: "joined",
    id: client.id,
    name: client.name,
    peer: client.peer,
    worker: settings.index,
  });
}

/** Removes `client` (once) and tells everyone else why. */
function leave(client: Client, reason: string): void {
  if (client.left !== undefined || room.leave(client.id) === undefined) return;
  client.left = reason;
  stats.left();
  announce(`${client.name} has left${reason ? ` (${reason})` : ""}`);
  post({ type: "left", id: client.id, reason });
}

/** Sends bytes to every client on every worker but `exceptId`. */
function broadcast(bytes: Uint8Array, exceptId?: number): void {
  room.broadcast(bytes, exceptId);
  relay.send(bytes);
}

function announce(text: string, exceptId?: number): void {
  broadcast(encodeLine(notice(text)), exceptId);
}

/**
 * Pacing: senders wait while one of our clients' outboxes is congested
 * (reuse-port only; in portable mode the main thread holds the outboxes).
 */
const pacer = new Pacer(localOutboxes);

function* localOutboxes(): Generator<Outbox> {
  for (const client of room.members()) if (client.local) yield client.local;
}

/**
 * The lines one read completed (as runs: see LineDecoder's `runs`): chat
 * messages are relayed as one block (one encode, one post to the other
 * workers); commands are answered.
 */
function handleLines(client: Client, runs: Uint8Array[]): void {
  const batch = new MessageBatch(FRAMINGS.line);
  const flush = (): void => {
    const count = batch.size;
    const block = batch.take();
    if (block === null) return;
    broadcast(block, client.id);
    stats.relayed(count);
  };
  for (const line of runs.flatMap(decodeLines)) {
    if (client.left !== undefined) break;
    const input = parseChatInput(sanitizeText(line));
    if (input.kind === "message") {
      batch.add(chatMessage(client.name, input.text));
      continue;
    }
    flush(); // keep this client's messages and commands in order
    command(client, input.name, input.arg);
  }
  flush();
}

function command(client: Client, name: string, arg: string): void {
  const reply = (line: string): void =>
    void client.outbox.send(encodeLine(notice(line)));
  switch (name) {
    case "/help":
      client.outbox.send(HELP);
      return;
    case "/who":
      post({ type: "who", id: client.id }); // the main thread owns the roster
      return;
    case "/stats": {
      const s = stats.snapshot();
      const m = Deno.memoryUsage();
      const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
      reply(
        `stats: ${s.clients} connected, ${s.joined} since start, ${s.messages} messages relayed; ` +
          `memory: ${mib(m.rss)} MiB resident, this worker's heap ${
            mib(m.heapUsed)
          } of ${mib(m.heapTotal)} MiB, ${mib(m.external)} MiB external`,
      );
      return;
    }
    case "/quit":
      leave(client, arg ? `quit: ${arg}` : "quit");
      void client.close(notice("bye"));
      return;
    default:
      reply(`unknown command ${name}; /help lists the commands`);
  }
}

// ---------------------------------------------------------------------------
// reuse-port: this worker listens and owns its connections.

async function acceptLoop(): Promise<void> {
  listener = Deno.listen({
    hostname: settings.host,
    port: settings.port,
    reusePort: true,
  });
  post({ type: "ready" });
  for await (const conn of accepted(listener)) void serveConnection(conn);
}

async function serveConnection(conn: Deno.TcpConn): Promise<void> {
  let gone = "";
  const outbox = new Outbox(conn, {
    limit: settings.outboxLimit,
    onOverflow: (queued) => (gone = `too slow: ${queued} bytes unread`),
    onError: (error) => (gone = describePeerError(error)),
  });
  const id = stats.nextClientId();
  const client: Client = {
    id,
    name: `client-${id}`,
    peer: addressOf(conn.remoteAddr),
    outbox,
    local: outbox,
    close: (last) =>
      outbox.close(last === undefined ? undefined : encodeLine(last)),
  };
  enter(client);
  const end = await readLoop(conn, {
    decoder: new LineDecoder({ maxLength: settings.maxLine, runs: true }),
    onMessages: (runs) => {
      handleLines(client, runs);
      // Read no more from this client while a receiver, here or on another
      // worker, is behind.
      const here = pacer.wait();
      const there = relay.congested() ? relay.drained() : undefined;
      if (here || there) return Promise.all([here, there]).then(() => {});
    },
  });
  if (end.kind === "framing") {
    leave(client, end.error.message);
    await client.close(notice(`${end.error.message}; disconnecting`));
    return;
  }
  const reason = end.kind === "reset" ? describePeerError(end.error) : gone;
  leave(client, reason);
  await outbox.close();
}

// ---------------------------------------------------------------------------
// portable: the main thread owns the connection and relays its bytes.

function openRemote(id: number, peer: string): void {
  const client: Client = {
    id,
    name: `client-${id}`,
    peer,
    outbox: {
      send: (bytes) => {
        sendRemote(id, bytes);
        return true; // the main thread's Outbox enforces the bound
      },
    },
    close: (last) => {
      remote.delete(id);
      post({
        type: "close",
        id,
        last: last === undefined ? undefined : encodeLine(last),
      });
      return Promise.resolve();
    },
  };
  remote.set(id, {
    client,
    decoder: new LineDecoder({ maxLength: settings.maxLine, runs: true }),
  });
  enter(client);
}

function remoteData(id: number, bytes: Uint8Array): void {
  const entry = remote.get(id);
  if (!entry) return; // closed meanwhile
  try {
    handleLines(entry.client, entry.decoder.push(bytes));
  } catch (error) {
    if (!(error instanceof FramingError)) throw error;
    leave(entry.client, error.message);
    void entry.client.close(notice(`${error.message}; disconnecting`));
    return;
  }
  // The ack lets the main thread read more; hold it while another worker is behind.
  const ack = (): void => post({ type: "ack", id, bytes: bytes.length });
  if (relay.congested()) relay.drained().then(ack);
  else ack();
}

function remoteEnd(id: number, reason: string, finished: boolean): void {
  const entry = remote.get(id);
  if (!entry) return;
  remote.delete(id);
  // A last line without "\n" counts at a clean end, not when cut by a reset.
  const last = finished ? entry.decoder.end() : null;
  if (last !== null) handleLines(entry.client, [last]);
  leave(entry.client, reason);
}

// ---------------------------------------------------------------------------
// Lifecycle: start, shutdown, crash.

async function shutdown(): Promise<void> {
  listener?.close();
  const goodbyes = [...room.members()].map((client) =>
    client.close(notice("server shutting down"))
  );
  await Promise.all(goodbyes);
  relay.close();
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
  const clients = [...room.members()];
  for (const client of clients) {
    leave(client, `server error in worker ${settings.index}`);
  }
  await Promise.all(
    clients.map((client) =>
      client.close(
        notice(
          `server error in worker ${settings.index}; disconnecting (reconnect to go on)`,
        ),
      )
    ),
  );
  relay.close();
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
      settings = message.settings;
      stats = new SharedStats(settings.stats);
      // Messages from other workers go to all of ours.
      relay = new Relay(settings.index, settings.backlog, (bytes) => {
        room.broadcast(bytes);
        return pacer.wait();
      });
      if (settings.mode === "reuse-port") void acceptLoop();
      else post({ type: "ready" });
      return;
    case "peer":
      return relay.connect(message.index, message.port);
    case "peer-gone":
      return relay.disconnect(message.index);
    case "open":
      return openRemote(message.id, message.peer);
    case "data":
      return remoteData(message.id, message.bytes);
    case "end":
      return remoteEnd(message.id, message.reason, message.finished);
    case "who": {
      const client = room.get(message.id);
      client?.outbox.send(
        encodeLine(
          notice(`${message.names.length} here: ${message.names.join(", ")}`),
        ),
      );
      return;
    }
    case "shutdown":
      void shutdown();
      return;
    case "crash":
      setTimeout(() => {
        throw new Error("crash drill: this worker was told to fail (SIGUSR1)");
      });
      return;
  }
};
