/**
 * What the main thread and the workers say to each other (postMessage),
 * and what workers say to each other (BroadcastChannel). A `Deno.Conn`
 * cannot cross threads, so only plain data does.
 *
 * @module
 */

/** How connections reach workers. */
export type Mode =
  /** Each worker listens on the port itself (SO_REUSEPORT); the kernel spreads connections. */
  | "reuse-port"
  /** The main thread accepts and relays each connection's bytes to a worker. */
  | "portable";

/** Settings a worker starts with. */
export interface WorkerSettings {
  /** 1-based worker number, for logs and welcomes. */
  index: number;
  /** How connections reach this worker. */
  mode: Mode;
  /** Where to listen (reuse-port mode). */
  host: string;
  /** Where to listen (reuse-port mode). */
  port: number;
  /** The counters shared by every thread (see shared_stats.ts). */
  stats: SharedArrayBuffer;
  /** Each worker's relay backlog (see relay.ts). */
  backlog: SharedArrayBuffer;
  /** Longest line accepted. */
  maxLine: number;
  /** Bound on bytes queued for one client. */
  outboxLimit: number;
}

/** Main thread → worker. */
export type ToWorker =
  | { type: "start"; settings: WorkerSettings }
  /** A port to another worker, for the relay (see relay.ts). */
  | { type: "peer"; index: number; port: MessagePort }
  /** Worker `index` is gone: drop its port. */
  | { type: "peer-gone"; index: number }
  /** portable: a new connection. */
  | { type: "open"; id: number; peer: string }
  /** portable: bytes received from a connection. */
  | { type: "data"; id: number; bytes: Uint8Array }
  /**
   * portable: the connection ended (`reason` says how); `finished` when the
   * peer ended its stream itself, so a last line without `\n` counts.
   */
  | { type: "end"; id: number; reason: string; finished: boolean }
  /** The answer to a `who` request. */
  | { type: "who"; id: number; names: string[] }
  /** Tell your clients goodbye and stop. */
  | { type: "shutdown" }
  /** Fault drill: crash on purpose (SIGUSR1 on the server). */
  | { type: "crash" };

/** Worker → main thread. */
export type FromWorker =
  | { type: "ready" }
  /** A client entered the chat (the main thread keeps the roster). */
  | { type: "joined"; id: number; name: string; peer: string; worker: number }
  /** A client left the chat. */
  | { type: "left"; id: number; reason: string }
  /** A client asked who is here. */
  | { type: "who"; id: number }
  /** portable: bytes to write to each of these connections (a broadcast is one message). */
  | { type: "send"; ids: number[]; bytes: Uint8Array }
  /** portable: write `last` (if any), then close the connection. */
  | { type: "close"; id: number; last?: Uint8Array }
  /** portable: the worker has handled `bytes` of a connection's input. */
  | { type: "ack"; id: number; bytes: number }
  /** The worker hit an uncaught error; it told its clients and stops. */
  | { type: "crashed"; message: string }
  /** The worker said goodbye to its clients after `shutdown`. */
  | { type: "stopped" };
