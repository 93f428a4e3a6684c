/**
 * What the main thread and the workers say to each other (`postMessage`).
 * A `Deno.Conn` cannot cross threads, so only plain data does; what workers
 * say to each other goes through the mesh (`mesh.ts`).
 *
 * @module
 */

import type { RenameResult } from "../lib/roster.ts";
import type { WireMode } from "../lib/wire.ts";

/** How connections reach workers. */
export type Mode =
  /** Each worker listens on the port itself (SO_REUSEPORT); the kernel spreads connections. */
  | "reuse-port"
  /** The main thread accepts and forwards each connection's bytes to a worker. */
  | "portable";

/** Settings a worker starts with. */
export interface WorkerSettings {
  /** The worker's number, from 1, for logs and welcomes. */
  index: number;
  /** How connections reach this worker. */
  mode: Mode;
  /** Where to listen (reuse-port mode). */
  host: string;
  /** Where to listen (reuse-port mode); 0 for the first worker to pick one. */
  port: number;
  /** The counters shared by every thread (see shared_stats.ts). */
  stats: SharedArrayBuffer;
  /** Each worker's mesh backlog (see mesh.ts). */
  backlog: SharedArrayBuffer;
  /** Bound on one worker's mesh backlog, in bytes. */
  backlogLimit: number;
  /** Longest line accepted. */
  maxLine: number;
  /** Bound on bytes queued for one client. */
  outboxLimit: number;
  /** This worker's share of the bytes held in unfinished lines. */
  maxUnfinished: number;
  /** This worker's share of the bytes of replies unread (reuse-port: its own outboxes). */
  maxReplies: number;
  /** Commands each client may send a second (see chat_server.ts). */
  maxCommands: number;
  /** `--wire`: show every socket call and its bytes (reuse-port). */
  wire?: WireMode;
  /** `--tls`: the certificate and key to serve (reuse-port, and the web page). */
  tls?: { cert: string; key: string };
  /** `--web`: the web page's port, served by worker 1 (0 for it to pick one). */
  web?: number;
}

/** Main thread → worker. */
export type ToWorker =
  | { type: "start"; settings: WorkerSettings }
  /** A port to another worker, for the mesh. */
  | { type: "peer"; index: number; port: MessagePort }
  /** Worker `index` is gone: drop its port. */
  | { type: "peer-gone"; index: number }
  /** portable: a new connection. */
  | { type: "open"; id: number; peer: string }
  /** portable: bytes received from a connection. */
  | { type: "data"; id: number; bytes: Uint8Array<ArrayBuffer> }
  /**
   * portable: the connection's input ended; `finished` when the peer ended
   * its stream itself (half-close: its last line counts, and what it asked
   * is answered before the worker says `close`), else it was reset.
   */
  | { type: "end"; id: number; reason: string; finished: boolean }
  /** The answer to a request (`rename`, `who`). */
  | { type: "answer"; request: number; value: RenameResult | string[] }
  /** Tell your clients goodbye and stop. */
  | { type: "shutdown" }
  /** Fault drill: crash on purpose (SIGUSR2 on the server). */
  | { type: "crash" };

/** Worker → main thread. */
export type FromWorker =
  /** Listening (reuse-port: on `port`; worker 1 with `--web`: the page on `web`) and ready. */
  | { type: "ready"; port: number; web?: Deno.NetAddr }
  /** reuse-port: the listener could not be opened; the error by class name. */
  | { type: "listen-failed"; error: string; message: string }
  /** Worker 1 could not open the web page's port; it serves TCP clients all the same. */
  | { type: "web-failed"; error: string; message: string }
  /** A client entered the chat (the main thread keeps the roster). */
  | { type: "joined"; id: number; name: string; peer: string }
  /** A client asks to be renamed; answered with a {@linkcode RenameResult}. */
  | { type: "rename"; request: number; id: number; name: string }
  /** A client asks who is here; answered with the names. */
  | { type: "who"; request: number }
  /** A client left the chat. */
  | { type: "left"; id: number; reason: string }
  /** portable: a reply, bytes for one client alone. */
  | { type: "reply"; id: number; bytes: Uint8Array }
  /**
   * portable: a client is in the chat (said after its welcome): broadcasts
   * reach it from now on.
   */
  | { type: "entered"; id: number }
  /** portable: a client is out of the chat: broadcasts no longer reach it. */
  | { type: "exited"; id: number }
  /**
   * portable: bytes for every client in the chat, whichever worker serves
   * it, but `except` (the sender): one message, fanned out by the main thread.
   */
  | { type: "broadcast"; bytes: Uint8Array; except?: number }
  /** portable: write `last` (if any), then close the connection. */
  | { type: "close"; id: number; last?: Uint8Array }
  /**
   * portable: of a connection's last post, `bytes` are no chat message (a
   * command's), so they no longer count in the window of all connections:
   * another client's post may go while the worker answers them.
   */
  | { type: "release"; id: number; bytes: number }
  /** portable: the worker has handled `bytes` of a connection's input. */
  | { type: "ack"; id: number; bytes: number }
  /** The worker hit an uncaught error; it told its clients and stops. */
  | { type: "crashed"; message: string }
  /** The worker said goodbye to its clients after `shutdown`. */
  | { type: "stopped" };
