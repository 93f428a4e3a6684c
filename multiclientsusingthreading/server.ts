/**
 * Concurrent chat server: clients spread over a pool of worker threads.
 *
 * Every line a client sends goes to every other client, on every worker,
 * as `guest-7: hello`; joins and leaves are announced as `* ` lines. The
 * main thread supervises: it starts the workers (`pool.ts`), keeps the
 * roster, prints the counters they share through a SharedArrayBuffer,
 * replaces a worker that crashes, and shuts everything down on Ctrl+C.
 *
 * How connections reach the workers (a Deno.Conn cannot be sent to one):
 * - Linux, by default: every worker listens on the same port
 *   (SO_REUSEPORT) and the kernel spreads new connections among them.
 * - Elsewhere, or with --portable: this thread accepts, and forwards each
 *   connection's bytes to a worker and the worker's replies back
 *   (`forwarder.ts`).
 *
 * Try it:
 *   deno run -A multiclientsusingthreading/server.ts          # terminal A
 *   deno run -A multiclientsusingthreading/client.ts          # terminals B, C, D...
 *   nc 127.0.0.1 5002                                         # or telnet
 *   deno run -A multiclientsusingthreading/server.ts --web 5080   # and a browser on http://127.0.0.1:5080/
 *   kill -USR2 <server pid>      # fault drill: crash a worker, watch it be replaced
 *
 * @module
 */

import { MAX_COMMANDS_FLAG } from "../lib/chat_server.ts";
import { type CliOptions, parseCliOrExit } from "../lib/cli.ts";
import { DEFAULT_MAX_MESSAGE } from "../lib/decoder.ts";
import { exitWithError, explainNetError } from "../lib/errors.ts";
import { log, warn } from "../lib/log.ts";
import { listenOrExit, sayListening } from "../lib/net.ts";
import {
  DEFAULT_OUTBOX_LIMIT,
  MAX_REPLIES_FLAG,
  outboxLimitProblem,
} from "../lib/outbox.ts";
import { DEFAULT_PENDING_LIMIT } from "../lib/pending_limit.ts";
import { onShutdown } from "../lib/shutdown.ts";
import { Forwarder } from "./forwarder.ts";
import type { Mode } from "./messages.ts";
import { ListenFailed, migrationNote, WorkerPool } from "./pool.ts";
import { SharedStats } from "./shared_stats.ts";
import { WIRE_FLAG, wireLogFor } from "../lib/wire.ts";
import {
  sayWebListening,
  WEB_FLAG,
  webListenProblem,
} from "../lib/web_chat.ts";
import {
  listenTlsOrExit,
  serverTlsOrExit,
  TLS_SERVER_FLAGS,
} from "../lib/tls_options.ts";

const DEFAULT_PORT = 5002;
/** Everything closes within this, however slow the clients. */
const SHUTDOWN_MS = 1500;
/** The fault drill's signal. Never SIGUSR1: Deno opens its debugger on that one. */
const DRILL_SIGNAL = "SIGUSR2";

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
    description: "accept on the main thread and forward bytes to workers " +
      "(the default where SO_REUSEPORT is missing: macOS, Windows)",
  },
  maxLine: {
    type: "integer",
    description: "longest line accepted or sent, in bytes",
    placeholder: "BYTES",
    min: 64,
    default: DEFAULT_MAX_MESSAGE,
  },
  outboxLimit: {
    type: "integer",
    description:
      "bytes queued for a client that stops reading before it is cut off",
    placeholder: "BYTES",
    min: 16 * 1024,
    default: DEFAULT_OUTBOX_LIMIT,
  },
  maxUnfinished: {
    type: "integer",
    description: "bytes of unfinished lines held for all clients together; " +
      "past it, the client holding the most is disconnected",
    placeholder: "BYTES",
    min: 16 * 1024,
    default: DEFAULT_PENDING_LIMIT,
  },
  maxReplies: MAX_REPLIES_FLAG,
  maxCommands: MAX_COMMANDS_FLAG,
  statsInterval: {
    type: "seconds",
    description: "print the shared counters every SECONDS when they change",
    default: 10,
  },
  ...TLS_SERVER_FLAGS,
  wire: WIRE_FLAG,
  web: WEB_FLAG,
} as const;

type Options = CliOptions<typeof FLAGS>;

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "multiclientsusingthreading/server.ts",
    summary:
      "chat server; clients are served concurrently by a pool of worker threads.",
    role: "server",
    defaultPort: DEFAULT_PORT,
    flags: FLAGS,
    example: "--workers 4",
    // portable mode: broadcasts on their way from a worker count twice more
    check: (o) =>
      outboxLimitProblem(o.outboxLimit, {
        bytes: o.maxLine,
        flag: "--max-line",
        times: 4,
      }),
    notes: [
      `Fault drill (not on Windows): kill -${DRILL_SIGNAL.slice(3)} <pid> ` +
      `(${DRILL_SIGNAL}) makes one worker crash,`,
      "to watch it be replaced. Never send SIGUSR1: Deno answers it by opening",
      "its debugger on 127.0.0.1:9229, which anyone on this machine could use.",
    ],
  });
  const mode: Mode = options.portable || Deno.build.os !== "linux"
    ? "portable"
    : "reuse-port";
  const cores = navigator.hardwareConcurrency;
  if (options.workers > cores) {
    warn(
      `${options.workers} workers on ${cores} cores: each costs memory (about ` +
        `10 MiB), and more workers than cores only take turns on them`,
    );
  }
  readWorkerModulesOrExit(options);
  const certificate = await serverTlsOrExit(options); // --tls

  const stats = new SharedStats();
  const tls = certificate && { cert: certificate.cert, key: certificate.key };
  const pool = new WorkerPool({ ...options, mode, stats, tls });
  let listener: Deno.Listener | undefined;
  let forwarder: Forwarder | undefined;
  onShutdown(async (signal) => {
    log(`${signal}: telling every client, then stopping`);
    listener?.close();
    const forced = setTimeout(() => Deno.exit(0), SHUTDOWN_MS + 300);
    await pool.shutdown(SHUTDOWN_MS);
    await forwarder?.shutdown();
    clearTimeout(forced);
    log("bye");
    Deno.exit(0);
  });
  if (Deno.build.os !== "windows") {
    Deno.addSignalListener(DRILL_SIGNAL, () => pool.crashDrill());
  }

  let port: number;
  if (mode === "portable") {
    // socket() + bind() + listen() here; the workers get the bytes.
    listener = certificate
      ? listenTlsOrExit(options, certificate)
      : listenOrExit(options, { quiet: true });
    forwarder = new Forwarder(pool, {
      outboxLimit: options.outboxLimit,
      maxReplies: options.maxReplies,
      stats,
      wire: wireLogFor(options.wire, { framing: "line" }),
      backlog: pool.backlog,
    });
    pool.forwarding = forwarder;
    await startPool(pool, options);
    port = (listener.addr as Deno.NetAddr).port;
  } else {
    // Each worker listens with SO_REUSEPORT, which would also let a second
    // server share the port silently: holding the same port number in UDP
    // (which has no such sharing here) stops that.
    if (options.port !== 0) claimPortOrExit(options);
    port = await startPool(pool, options);
    if (options.port === 0) claimPortOrWarn({ ...options, port });
  }
  sayListening(
    { transport: "tcp", hostname: options.host, port },
    `${certificate ? " (TLS)" : ""} with ${options.workers} worker${
      options.workers === 1 ? "" : "s"
    } (${
      mode === "reuse-port"
        ? "reuse-port: the kernel spreads connections"
        : "portable: this thread forwards bytes"
    })`,
  );
  if (pool.web) sayWebListening({ ...pool.web, tls }); // served by worker 1
  if (mode === "reuse-port") log(migrationNote());
  printStatsEvery(options.statsInterval, stats, pool);
  if (listener && forwarder) await forwarder.serve(listener);
}

/** Starts the workers, or exits saying why the port could not be opened. */
async function startPool(pool: WorkerPool, options: Options): Promise<number> {
  try {
    return await pool.start();
  } catch (error) {
    if (error instanceof ListenFailed && error.flag === "--web") {
      exitWithError(
        webListenProblem(error.cause, { ...options, port: options.web ?? 0 }),
      );
    }
    if (error instanceof ListenFailed) {
      exitWithError(
        explainNetError(error.cause, { action: "listen", ...options }),
      );
    }
    exitWithError((error as Error).message);
  }
}

/** Holds UDP `host:port`, the reuse-port server's claim on the port number. */
function claimPort(options: Options & { port: number }): Deno.DatagramConn {
  return Deno.listenDatagram({
    transport: "udp",
    hostname: options.host,
    port: options.port,
  });
}

function claimPortOrExit(options: Options): void {
  try {
    claimPort(options);
  } catch (error) {
    exitWithError(explainNetError(error, { action: "listen", ...options }));
  }
}

/** For a port the system picked, a claim that fails only loses the guard. */
function claimPortOrWarn(options: Options & { port: number }): void {
  try {
    claimPort(options);
  } catch (error) {
    warn(
      `could not hold UDP port ${options.port} (${
        (error as Error).message
      }): ` +
        "a second reuse-port server could share this port unnoticed",
    );
  }
}

/**
 * The workers load their modules (`worker.ts` and `lib/`; with `--web`, the
 * page in `web/`) when they start: ask for reading those once, in our
 * words, rather than let each worker fail with a trace.
 */
function readWorkerModulesOrExit(
  options: { host: string; web?: number },
): void {
  // The workers listen: one question here, not one each.
  askOnce({ name: "net", host: options.host });
  const dirs = [
    "./",
    "../lib/",
    ...(options.web === undefined ? [] : ["../web/"]),
  ];
  for (const dir of dirs) {
    const path = new URL(dir, import.meta.url);
    const descriptor = { name: "read", path } as const;
    const status = Deno.permissions.querySync(descriptor).state === "prompt"
      ? Deno.permissions.requestSync(descriptor)
      : Deno.permissions.querySync(descriptor);
    if (status.state !== "granted") {
      exitWithError(
        `the worker threads load their code from ${path.pathname}, which ` +
          "Deno may not read: run with --allow-read (or -A), or use " +
          "`deno task threading:server`.",
      );
    }
  }
}

/** Asks for a permission now, if Deno would ask, so the workers need not. */
function askOnce(descriptor: Deno.PermissionDescriptor): void {
  if (Deno.permissions.querySync(descriptor).state === "prompt") {
    Deno.permissions.requestSync(descriptor);
  }
}

/** The counters, read straight from shared memory, whenever they change. */
function printStatsEvery(
  seconds: number,
  stats: SharedStats,
  pool: WorkerPool,
): void {
  if (seconds <= 0) return;
  const line = (): string => {
    const s = stats.snapshot();
    return `stats: ${s.clients} connected on ${pool.size} workers, ${s.joined} since start, ` +
      `${s.messages} message${s.messages === 1 ? "" : "s"} relayed`;
  };
  let last = line();
  const timer = setInterval(() => {
    const now = line();
    if (now !== last) log(now);
    last = now;
  }, seconds * 1000);
  Deno.unrefTimer(timer);
}

if (import.meta.main) {
  await main().catch((error) =>
    exitWithError(error instanceof Error ? error.message : String(error))
  );
}
