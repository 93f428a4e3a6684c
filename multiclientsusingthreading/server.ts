/**
 * Concurrent chat server: clients spread over a pool of worker threads.
 *
 * Every line a client sends goes to every other client, on every worker,
 * as `client-7: hello`; joins and leaves are announced as `* ` lines. The
 * main thread supervises: it starts the workers, keeps the roster (who is
 * connected), prints the counters they share through a SharedArrayBuffer,
 * replaces a worker that crashes, and shuts everything down on Ctrl+C.
 *
 * How connections reach the workers (a Deno.Conn cannot be sent to one):
 * - Linux, by default: every worker listens on the same port
 *   (SO_REUSEPORT) and the kernel spreads new connections among them.
 * - Elsewhere, or with --portable: this thread accepts, and relays each
 *   connection's bytes to a worker and the worker's replies back.
 *
 * Try it:
 *   deno run -A multiclientsusingthreading/server.ts          # terminal A
 *   deno run -A multiclientsusingthreading/client.ts          # terminals B, C, D...
 *   nc 127.0.0.1 5002                                         # or telnet
 *   kill -USR1 <server pid>      # fault drill: crash a worker, watch it be replaced
 *
 * @module
 */

import { type CliOptions, parseCliOrExit } from "../lib/cli.ts";
import { exitWithError } from "../lib/errors.ts";
import { DEFAULT_MAX_MESSAGE } from "../lib/decoder.ts";
import { encodeLine } from "../lib/encoders.ts";
import {
  closeQuietly,
  FIRST_READ_BUFFER_SIZE,
  grownBuffer,
} from "../lib/io.ts";
import { log, warn } from "../lib/log.ts";
import { accepted, addressOf, listenOrExit, sayListening } from "../lib/net.ts";
import { DEFAULT_OUTBOX_LIMIT, Outbox, Pacer } from "../lib/outbox.ts";
import { onShutdown } from "../lib/shutdown.ts";
import { notice } from "../lib/chat_room.ts";
import { describePeerError, isDisconnect } from "../lib/errors.ts";
import type { FromWorker, Mode, ToWorker } from "./messages.ts";
import { relayBacklogBuffer } from "./relay.ts";
import { SharedStats } from "./shared_stats.ts";

const DEFAULT_PORT = 5002;
/**
 * portable: at most this many bytes of one connection are relayed to its
 * worker and not yet handled. Kept small because what is in flight is not
 * paced: relayed to N receivers with names and escapes it can grow several
 * times over (up to ~8x for one-character lines) before the pacer can stop
 * the sender, and it must stay well within half of an outbox's bound.
 */
const RELAY_WINDOW = 64 * 1024;
/** Everything closes within this, however slow the clients. */
const SHUTDOWN_MS = 1500;

const FLAGS = {
  workers: {
    type: "integer",
    description: "worker threads",
    min: 1,
    max: 256,
    default: navigator.hardwareConcurrency,
  },
  portable: {
    type: "boolean",
    description: "accept on the main thread and relay bytes to workers " +
      "(the default where SO_REUSEPORT is missing: macOS, Windows)",
  },
  maxLine: {
    type: "integer",
    description: "longest line accepted, in bytes",
    placeholder: "BYTES",
    min: 1,
    default: DEFAULT_MAX_MESSAGE,
  },
  outboxLimit: {
    type: "integer",
    description:
      "bytes queued for a client that stops reading before it is cut off",
    placeholder: "BYTES",
    min: 1024,
    default: DEFAULT_OUTBOX_LIMIT,
  },
  statsInterval: {
    type: "seconds",
    description:
      "print the shared counters every SECONDS when they change",
    default: 10,
  },
} as const;

type Options = CliOptions<typeof FLAGS>;

function parseOptions(): Options {
  return parseCliOrExit(Deno.args, {
    script: "multiclientsusingthreading/server.ts",
    summary:
      "chat server; clients are served concurrently by a pool of worker threads.",
    role: "server",
    defaultPort: DEFAULT_PORT,
    flags: FLAGS,
    example: "--workers 4",
  });
}

async function main(): Promise<void> {
  const options = parseOptions();
  const mode: Mode = options.portable || Deno.build.os !== "linux"
    ? "portable"
    : "reuse-port";
  const stats = new SharedStats();

  // reuse-port: bind here first to learn the port (--port 0), let every
  // worker bind it too, then step aside. portable: this thread listens.
  const listener = listenOrExit(options, {
    reusePort: mode === "reuse-port",
    quiet: true,
  });
  const pool = new WorkerPool(options, mode, stats, {
    ...options,
    port: listener.addr.port,
  });
  await pool.start().catch((error) => exitWithError(error.message));
  if (mode === "reuse-port") listener.close();

  onShutdown(async (signal) => {
    log(`${signal}: telling every client, then stopping`);
    if (mode === "portable") closeQuietly(listener);
    const forced = setTimeout(() => Deno.exit(0), SHUTDOWN_MS + 300);
    await pool.shutdown(SHUTDOWN_MS);
    clearTimeout(forced);
    log("bye");
    Deno.exit(0);
  });
  if (Deno.build.os !== "windows") {
    Deno.addSignalListener("SIGUSR1", () => pool.crashDrill());
  }
  // Only now, with Ctrl+C handled too, do we say we listen.
  sayListening(
    listener.addr,
    ` with ${options.workers} worker${options.workers === 1 ? "" : "s"} (${
      mode === "reuse-port"
        ? "reuse-port: the kernel spreads connections"
        : "portable: this thread relays bytes"
    })`,
  );
  printStatsEvery(options.statsInterval, stats, pool);

  if (mode === "portable") await pool.acceptAndRelay(listener);
}

/** The counters, read straight from shared memory, whenever they change. */
function printStatsEvery(
  seconds: number,
  stats: SharedStats,
  pool: WorkerPool,
): void {
  if (seconds <= 0) return;
  let last = "";
  const timer = setInterval(() => {
    const s = stats.snapshot();
    const line =
      `stats: ${s.clients} connected on ${pool.size} workers, ${s.joined} since start, ` +
      `${s.messages} messages relayed`;
    if (line !== last) log(line);
    last = line;
  }, seconds * 1000);
  Deno.unrefTimer(timer);
}

/** A connection this thread owns (portable mode). */
interface Relayed {
  conn: Deno.TcpConn;
  outbox: Outbox;
  worker: number;
  inFlight: number;
  resume?: () => void;
}

/** The worker threads, the roster, and (portable) the relayed connections. */
class WorkerPool {
  readonly #workers: (Worker | undefined)[] = [];
  readonly #roster = new Map<
    number,
    { name: string; peer: string; worker: number }
  >();
  readonly #relayed = new Map<number, Relayed>();
  readonly #closing: Promise<void>[] = [];
  readonly #backlog: Int32Array;
  #next = 0;
  #drill = 0;
  readonly #pacer = new Pacer(() =>
    [...this.#relayed.values()].map((r) => r.outbox)
  );
  /** Workers not ready yet: a crash now fails their start (no respawn loop). */
  readonly #starting = new Map<number, (error: Error) => void>();
  #stopping = false;
  #stopped: (() => void) | undefined;
  #stoppedCount = 0;

  constructor(
    readonly options: Options,
    readonly mode: Mode,
    readonly stats: SharedStats,
    readonly endpoint: { host: string; port: number },
  ) {
    this.#backlog = new Int32Array(relayBacklogBuffer(options.workers));
  }

  get size(): number {
    return this.#workers.filter(Boolean).length;
  }

  /** Starts every worker and waits until each is ready. */
  async start(): Promise<void> {
    await Promise.all(
      Array.from({ length: this.options.workers }, (_, i) => this.#spawn(i)),
    );
  }

  /** Gives worker `slot` a MessagePort to each other live worker, and them one to it. */
  #linkPeers(slot: number): void {
    for (let other = 0; other < this.#workers.length; other++) {
      if (other === slot || !this.#workers[other]) continue;
      const { port1, port2 } = new MessageChannel();
      this.#post(slot, { type: "peer", index: other + 1, port: port1 }, [
        port1,
      ]);
      this.#post(other, { type: "peer", index: slot + 1, port: port2 }, [
        port2,
      ]);
    }
  }

  #spawn(slot: number): Promise<void> {
    const worker = new Worker(new URL("./worker.ts", import.meta.url), {
      type: "module",
    });
    this.#workers[slot] = worker;
    const index = slot + 1;
    return new Promise((resolve, reject) => {
      this.#starting.set(slot, reject);
      worker.onmessage = (event: MessageEvent<FromWorker>) => {
        if (event.data.type !== "ready") {
          return this.#onMessage(slot, event.data);
        }
        this.#starting.delete(slot);
        resolve();
      };
      worker.onerror = (event) => {
        // An error the worker could not handle itself: it is gone.
        event.preventDefault();
        this.#onCrash(slot, event.message);
      };
      this.#post(slot, {
        type: "start",
        settings: {
          index,
          mode: this.mode,
          host: this.endpoint.host,
          port: this.endpoint.port,
          stats: this.stats.buffer,
          backlog: this.#backlog.buffer as SharedArrayBuffer,
          maxLine: this.options.maxLine,
          outboxLimit: this.options.outboxLimit,
        },
      });
      this.#linkPeers(slot);
    });
  }

  #post(slot: number, message: ToWorker, transfer: Transferable[] = []): void {
    this.#workers[slot]?.postMessage(message, transfer);
  }

  #onMessage(slot: number, message: FromWorker): void {
    switch (message.type) {
      case "joined":
        this.#roster.set(message.id, {
          name: message.name,
          peer: message.peer,
          worker: message.worker,
        });
        return log(
          `${message.name} joined from ${message.peer} (worker ${message.worker})`,
        );
      case "left": {
        const entry = this.#roster.get(message.id);
        this.#roster.delete(message.id);
        if (entry) {
          log(
            `${entry.name} left${message.reason ? ` (${message.reason})` : ""}`,
          );
        }
        return;
      }
      case "who": {
        const ids = [...this.#roster.keys()].sort((a, b) => a - b);
        const names = ids.map((id) => this.#roster.get(id)!.name);
        return this.#post(slot, { type: "who", id: message.id, names });
      }
      case "send":
        for (const id of message.ids) {
          this.#relayed.get(id)?.outbox.send(message.bytes);
        }
        return;
      case "close": {
        const relayed = this.#relayed.get(message.id);
        if (relayed) this.#closing.push(relayed.outbox.close(message.last));
        return;
      }
      case "ack": {
        const relayed = this.#relayed.get(message.id);
        if (!relayed) return;
        relayed.inFlight -= message.bytes;
        if (relayed.inFlight < RELAY_WINDOW) relayed.resume?.();
        return;
      }
      case "crashed":
        return this.#onCrash(slot, message.message);
      case "stopped":
        if (++this.#stoppedCount === this.size) this.#stopped?.();
        return;
    }
  }

  /** A worker died: log it, drop its clients, start a replacement. */
  #onCrash(slot: number, message: string): void {
    const worker = this.#workers[slot];
    if (!worker) return;
    worker.terminate();
    this.#workers[slot] = undefined;
    if (!this.#starting.has(slot)) {
      warn(`worker ${slot + 1} crashed: ${message}`);
    }
    // Nobody will drain its relay backlog: clear it, so no sender waits on it.
    Atomics.store(this.#backlog, slot + 1, 0);
    Atomics.notify(this.#backlog, slot + 1);
    for (let other = 0; other < this.#workers.length; other++) {
      this.#post(other, { type: "peer-gone", index: slot + 1 });
    }
    for (const [id, entry] of this.#roster) {
      if (entry.worker === slot + 1) this.#roster.delete(id);
    }
    // portable: this thread still holds that worker's connections.
    for (const [id, relayed] of this.#relayed) {
      if (relayed.worker !== slot) continue;
      this.#relayed.delete(id);
      relayed.outbox.close(
        encodeLine(
          notice(
            `server error in worker ${
              slot + 1
            }; disconnecting (reconnect to go on)`,
          ),
        ),
      );
    }
    const failStart = this.#starting.get(slot);
    if (failStart) {
      this.#starting.delete(slot);
      return failStart(
        new Error(`worker ${slot + 1} could not start: ${message}`),
      );
    }
    if (this.#stopping) return;
    this.#spawn(slot).then(
      () => log(`worker ${slot + 1} replaced`),
      (error) => {
        warn(`${error.message}; going on with ${this.size} workers`);
        if (this.size === 0) exitWithError("no worker left.");
      },
    );
  }

  /** SIGUSR1: make one worker (in turn) fail, to watch the recovery. */
  crashDrill(): void {
    const slot = this.#drill++ % this.#workers.length;
    log(`SIGUSR1: crash drill on worker ${slot + 1}`);
    this.#post(slot, { type: "crash" });
  }

  /** Every worker says goodbye to its clients; resolves when all did, or after `ms`. */
  async shutdown(ms: number): Promise<void> {
    this.#stopping = true;
    const allStopped = new Promise<void>((
      resolve,
    ) => (this.#stopped = resolve));
    for (let slot = 0; slot < this.#workers.length; slot++) {
      this.#post(slot, { type: "shutdown" });
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      allStopped,
      new Promise((resolve) => (timer = setTimeout(resolve, ms))),
    ]);
    clearTimeout(timer);
    for (const relayed of this.#relayed.values()) {
      this.#closing.push(
        relayed.outbox.close(encodeLine(notice("server shutting down"))),
      );
    }
    await Promise.all(this.#closing);
    for (const worker of this.#workers) worker?.terminate();
  }

  /** portable: accept here; relay each connection's bytes to a worker. */
  async acceptAndRelay(listener: Deno.TcpListener): Promise<void> {
    for await (const conn of accepted(listener)) void this.#relay(conn);
  }

  async #relay(conn: Deno.TcpConn): Promise<void> {
    const id = this.stats.nextClientId();
    let slot = this.#next++ % this.#workers.length;
    while (!this.#workers[slot]) slot = this.#next++ % this.#workers.length;
    let gone = "";
    const relayed: Relayed = {
      conn,
      worker: slot,
      inFlight: 0,
      outbox: new Outbox(conn, {
        limit: this.options.outboxLimit,
        onOverflow: (queued) => (gone = `too slow: ${queued} bytes unread`),
        onError: (error) => (gone = describePeerError(error)),
      }),
    };
    this.#relayed.set(id, relayed);
    this.#post(slot, { type: "open", id, peer: addressOf(conn.remoteAddr) });
    let buffer = new Uint8Array(FIRST_READ_BUFFER_SIZE);
    let finished = false; // the peer ended its stream cleanly (FIN)
    try {
      for (;;) {
        if (relayed.inFlight >= RELAY_WINDOW) {
          await new Promise<void>((resolve) => (relayed.resume = resolve));
        }
        await this.#pacer.wait(); // portable pacing: this thread holds every outbox
        const room = RELAY_WINDOW - relayed.inFlight;
        const n = await conn.read(
          buffer.length > room ? buffer.subarray(0, room) : buffer,
        );
        if (n === null) {
          finished = true;
          break;
        }
        relayed.inFlight += n;
        const bytes = buffer.slice(0, n); // its own memory, moved (not copied) to the worker
        buffer = grownBuffer(buffer, n);
        this.#post(relayed.worker, { type: "data", id, bytes }, [bytes.buffer]);
      }
    } catch (error) {
      if (isDisconnect(error)) gone = describePeerError(error);
      else if (
        !(error instanceof Deno.errors.BadResource ||
          error instanceof Deno.errors.Interrupted)
      ) {
        throw error;
      }
    }
    if (this.#relayed.delete(id)) {
      this.#post(relayed.worker, { type: "end", id, reason: gone, finished });
      await relayed.outbox.close();
    }
  }
}

if (import.meta.main) {
  await main().catch((error) =>
    exitWithError(error instanceof Error ? error.message : String(error))
  );
}
