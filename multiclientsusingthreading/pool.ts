/**
 * The worker pool: starts the workers (numbered from 1), links them into a
 * mesh, keeps the roster for them (names, `/who`, the log of who came and
 * went), replaces a worker that crashes, and stops them all.
 *
 * In reuse-port mode the first worker opens the port (`--port 0`
 * included) and the others join it once it is listening, so no listener is
 * ever opened only to be closed: a connection the kernel accepted is always
 * served.
 *
 * @example
 * ```ts ignore
 * import { WorkerPool } from "./pool.ts";
 * const pool = new WorkerPool({ ...settings, workers: 4, mode: "reuse-port" });
 * const port = await pool.start();
 * ```
 *
 * @module
 */

import { exitWithError } from "../lib/errors.ts";
import { log, warn } from "../lib/log.ts";
import { Roster } from "../lib/roster.ts";
import type { FromWorker, Mode, ToWorker } from "./messages.ts";
import { mainCell, meshBacklogBuffer } from "./mesh.ts";
import type { SharedStats } from "./shared_stats.ts";
import type { WireMode } from "../lib/wire.ts";
import { settledWithin } from "../lib/std.ts";

/** What the pool starts its workers with. */
export interface PoolOptions {
  /** How many workers. */
  workers: number;
  /** How connections reach them. */
  mode: Mode;
  /** Where the workers listen (reuse-port). */
  host: string;
  /** The port (reuse-port: 0 lets the first worker pick one). */
  port: number;
  /** Longest line accepted. */
  maxLine: number;
  /** Bound on bytes queued for one client; the mesh's bound derives from it. */
  outboxLimit: number;
  /** Bytes of unfinished lines held by all workers together. */
  maxUnfinished: number;
  /** Bytes of replies unread, all workers together (reuse-port). */
  maxReplies: number;
  /** Commands each client may send a second (see chat_server.ts). */
  maxCommands: number;
  /** The counters every thread shares. */
  stats: SharedStats;
  /** `--wire`, for the workers' own connections. */
  wire?: WireMode;
  /** `--tls`: what the workers' listeners serve. */
  tls?: { cert: string; key: string };
  /** `--web`: the web page's port (worker 1 serves it). */
  web?: number;
}

/** What the portable forwarder does with its workers' messages. */
export interface ForwardingHandler {
  /** `reply`, `entered`, `exited`, `broadcast`, `close` and `ack` from worker `index`. */
  handle(index: number, message: FromWorker): void;
  /** Worker `index` is gone: its connections are told and closed. */
  workerGone(index: number): void;
}

/** A worker's listener could not be opened; `cause` is the error it met. */
export class ListenFailed extends Error {
  /** The error's name. */
  override name = "ListenFailed";
  /** Which listener: the chat's port, or the web page's. */
  readonly flag: "--port" | "--web";

  /** `message` and `cause` as for any error; `flag` says which listener. */
  constructor(
    message: string,
    options: { cause: Error; flag: "--port" | "--web" },
  ) {
    super(message, { cause: options.cause });
    this.flag = options.flag;
  }
}

/** The workers, the roster, and the lifecycle. */
export class WorkerPool {
  /** Set by the portable forwarder, which owns the connections. */
  forwarding?: ForwardingHandler;
  readonly #options: PoolOptions;
  /** Workers by number, from 1 (index 0 unused). */
  readonly #workers: (Worker | undefined)[] = [undefined];
  readonly #roster = new Roster({ log });
  /** Which worker serves each client, to clear the roster after a crash. */
  readonly #workerOf = new Map<number, number>();
  readonly #backlog: SharedArrayBuffer;
  /** Workers not ready yet: a crash now fails their start (no respawn loop). */
  readonly #starting = new Map<number, (error: Error) => void>();
  #port: number;
  /** Where worker 1 serves the web page (`--web`), once it does. */
  #web: Deno.NetAddr | undefined;
  #started = false;
  #next = 0;
  #drill = 0;
  #stopping = false;
  #stopped: (() => void) | undefined;
  #stoppedCount = 0;

  /** A pool; nothing starts before {@linkcode WorkerPool.start}. */
  constructor(options: PoolOptions) {
    this.#options = options;
    this.#port = options.port;
    this.#backlog = meshBacklogBuffer(options.workers);
  }

  /** The workers' backlog counters (`mesh.ts`), for the forwarder in portable mode. */
  get backlog(): SharedArrayBuffer {
    return this.#backlog;
  }

  /** Where the web page is served (`--web`), once the pool started. */
  get web(): Deno.NetAddr | undefined {
    return this.#web;
  }

  /** Workers alive now. */
  get size(): number {
    return this.#workers.filter(Boolean).length;
  }

  /**
   * Starts every worker and waits until each is ready; resolves with the
   * port. In reuse-port mode worker 1 opens the port first.
   */
  async start(): Promise<number> {
    await this.#spawn(1);
    const rest = Array.from(
      { length: this.#options.workers - 1 },
      (_, i) => this.#spawn(i + 2),
    );
    await Promise.all(rest);
    this.#started = true;
    return this.#port;
  }

  /** Posts `message` to worker `index`, if it is alive. */
  post(index: number, message: ToWorker, transfer: Transferable[] = []): void {
    this.#workers[index]?.postMessage(message, transfer);
  }

  /** A live worker for a new connection, in turn. */
  pick(): number {
    const count = this.#workers.length - 1;
    for (let tries = 0; tries < count; tries++) {
      const index = (this.#next++ % count) + 1;
      if (this.#workers[index]) return index;
    }
    throw new Error("no worker is alive");
  }

  #spawn(index: number): Promise<void> {
    const worker = new Worker(new URL("./worker.ts", import.meta.url), {
      type: "module",
      name: `worker ${index}`,
    });
    this.#workers[index] = worker;
    return new Promise((resolve, reject) => {
      this.#starting.set(index, reject);
      worker.onmessage = (event: MessageEvent<FromWorker>) => {
        const message = event.data;
        if (message.type === "ready") {
          this.#port = message.port;
          this.#web = message.web ?? this.#web;
          this.#starting.delete(index);
          return resolve();
        }
        const failed = message.type === "listen-failed" ||
          (message.type === "web-failed" && !this.#started);
        if (failed) {
          this.#stop(index);
          this.#starting.delete(index);
          return reject(
            new ListenFailed(message.message, {
              cause: netError(message.error, message.message),
              flag: message.type === "web-failed" ? "--web" : "--port",
            }),
          );
        }
        if (message.type === "web-failed") {
          // A replacement worker 1: its TCP clients come first.
          return warn(
            `worker ${index} could not serve the web page again ` +
              `(${message.message}); browsers cannot join until a restart`,
          );
        }
        this.#onMessage(index, message);
      };
      worker.onerror = (event) => {
        // An error the worker could not handle itself: it is gone.
        event.preventDefault();
        this.#onCrash(index, event.message);
      };
      const { workers: _, stats, ...settings } = this.#options;
      this.post(index, {
        type: "start",
        settings: {
          ...settings,
          index,
          port: this.#port,
          // The page's port, as first picked (a replacement keeps it).
          web: this.#web?.port ?? settings.web,
          stats: stats.buffer,
          backlog: this.#backlog,
          // An eighth of an outbox: what a worker may have waiting from the
          // others. A reader at half its bound, the broadcast that passed it
          // and what is on its way (the limit and one more) stay in the bound.
          backlogLimit: Math.floor(settings.outboxLimit / 8),
          maxUnfinished: Math.floor(
            settings.maxUnfinished / this.#options.workers,
          ),
          maxReplies: Math.floor(settings.maxReplies / this.#options.workers),
        },
      });
      this.#linkPeers(index);
    });
  }

  /** Gives worker `index` a MessagePort to each other live worker, and them one to it. */
  #linkPeers(index: number): void {
    for (let other = 1; other < this.#workers.length; other++) {
      if (other === index || !this.#workers[other]) continue;
      const { port1, port2 } = new MessageChannel();
      this.post(index, { type: "peer", index: other, port: port1 }, [port1]);
      this.post(other, { type: "peer", index, port: port2 }, [port2]);
    }
  }

  #onMessage(index: number, message: FromWorker): void {
    switch (message.type) {
      case "joined":
        this.#workerOf.set(message.id, index);
        this.#roster.join({ ...message, where: `worker ${index}` });
        return;
      case "rename": {
        const value = this.#roster.rename(message.id, message.name);
        return this.post(index, {
          type: "answer",
          request: message.request,
          value,
        });
      }
      case "who":
        return this.post(index, {
          type: "answer",
          request: message.request,
          value: this.#roster.names(),
        });
      case "left":
        this.#workerOf.delete(message.id);
        return this.#roster.leave(message.id, message.reason);
      case "reply":
      case "entered":
      case "exited":
      case "broadcast":
      case "close":
      case "release":
      case "ack":
        return this.forwarding?.handle(index, message);
      case "crashed":
        return this.#onCrash(index, message.message);
      case "stopped":
        if (++this.#stoppedCount === this.size) this.#stopped?.();
        return;
    }
  }

  /** Ends worker `index` and unlinks it from the others. */
  #stop(index: number): void {
    this.#workers[index]?.terminate();
    this.#workers[index] = undefined;
    // Nobody will drain its mesh backlog: clear it, so no sender waits on it.
    // Its posts to this thread that never arrive are forgotten too.
    const backlog = new Int32Array(this.#backlog);
    for (const cell of [index, mainCell(backlog, index)]) {
      Atomics.store(backlog, cell, 0);
      Atomics.notify(backlog, cell);
    }
    for (let other = 1; other < this.#workers.length; other++) {
      this.post(other, { type: "peer-gone", index });
    }
  }

  /** A worker died: log it, drop its clients, start a replacement. */
  #onCrash(index: number, message: string): void {
    if (!this.#workers[index]) return;
    this.#stop(index);
    const reason = `server error in worker ${index}`;
    for (const [id, worker] of this.#workerOf) {
      if (worker !== index) continue;
      this.#workerOf.delete(id);
      this.#roster.leave(id, reason);
    }
    this.forwarding?.workerGone(index);
    const failStart = this.#starting.get(index);
    if (failStart) {
      this.#starting.delete(index);
      return failStart(
        new Error(`worker ${index} could not start: ${message}`),
      );
    }
    warn(`worker ${index} crashed: ${message}`);
    if (this.#stopping) return;
    this.#spawn(index).then(
      () => log(`worker ${index} replaced`),
      (error) => {
        warn(`${error.message}; going on with ${this.size} workers`);
        if (this.size === 0) exitWithError("no worker left.");
      },
    );
  }

  /** The fault drill: one worker (in turn) fails on purpose, to watch the recovery. */
  crashDrill(): void {
    const index = (this.#drill++ % (this.#workers.length - 1)) + 1;
    log(`crash drill on worker ${index}`);
    this.post(index, { type: "crash" });
  }

  /** Every worker says goodbye to its clients; resolves when all did, or after `ms`. */
  async shutdown(ms: number): Promise<void> {
    this.#stopping = true;
    const allStopped = new Promise<void>((
      resolve,
    ) => (this.#stopped = resolve));
    for (let index = 1; index < this.#workers.length; index++) {
      this.post(index, { type: "shutdown" });
    }
    await settledWithin(allStopped, ms);
    for (const worker of this.#workers) worker?.terminate();
  }
}

/** The `Deno.errors` class named `name`, rebuilt from a worker's report. */
function netError(name: string, message: string): Error {
  const classes = Deno.errors as unknown as Record<
    string,
    new (message: string) => Error
  >;
  return new (classes[name] ?? Error)(message);
}

/**
 * What happens to the connections waiting on a worker's listener when the
 * worker crashes, on this system: Linux hands them to the rest of the
 * reuse-port group when `net.ipv4.tcp_migrate_req` is 1 (per network
 * namespace, off by default); otherwise the kernel resets them.
 *
 * @example
 * ```ts ignore
 * import { migrationNote } from "./pool.ts";
 * log(migrationNote());
 * ```
 */
export function migrationNote(): string {
  const path = "/proc/sys/net/ipv4/tcp_migrate_req";
  let setting: string;
  try {
    // Only where reading is allowed already (it needs -A): never a prompt.
    if (
      Deno.permissions.querySync({ name: "read", path }).state !== "granted"
    ) {
      throw new Deno.errors.NotCapable(path);
    }
    setting = Deno.readTextFileSync(path).trim();
  } catch {
    return "if a worker crashes, the connections waiting on its listener move " +
      "to the others where net.ipv4.tcp_migrate_req is 1, and are reset " +
      "where it is 0 (check: sysctl net.ipv4.tcp_migrate_req)";
  }
  return setting === "1"
    ? "if a worker crashes, the connections waiting on its listener move to " +
      "the others (net.ipv4.tcp_migrate_req is 1)"
    : "if a worker crashes, the connections waiting on its listener are " +
      "reset: `sysctl -w net.ipv4.tcp_migrate_req=1` (as root) moves them " +
      "to the others instead";
}
