/**
 * Capacity: how many idle connections a chat server holds, and its memory
 * per connection.
 *
 *   deno task capacity                         # 5,000 to the threaded server
 *   deno task capacity --connections 10000 --server sandbox
 *
 * It opens the connections in batches (each one reads everything it is
 * sent: every join is announced to everyone, so N joins make N²/2
 * notices), waits until the traffic stops, reads the server's resident
 * memory, waits for the server to go idle (see below), reads it again, and
 * checks that the server still answers (`/who` counts everyone; a line
 * still goes through). If a connection fails it stops there and says what
 * limited it (the error, and this process's file descriptor limits).
 *
 * Two memory figures, because V8 keeps the heap it grew under the notices'
 * churn while the server is busy and gives it back once the server has
 * been idle for a while (its memory reducer, some 10 to 30 s after the last
 * burst): "after the joins" is the peak a burst leaves, "once idle" is what
 * the idle connections cost.
 *
 * Loopback only; it stops by itself.
 *
 * @module
 */

import { parseCliOrExit } from "../lib/cli.ts";
import { LineDecoder } from "../lib/line_decoder.ts";
import { closeQuietly, writeAll } from "../lib/io.ts";
import { delay } from "../lib/std.ts";
import {
  CHAT_SERVER_FLAGS,
  chatServer,
  mib,
  spawnServer,
} from "./server_process.ts";

const FLAGS = {
  connections: {
    type: "integer",
    description: "idle connections to open",
    placeholder: "N",
    default: 5000,
    min: 1,
  },
  ...CHAT_SERVER_FLAGS,
  v8Flags: {
    type: "string",
    description:
      "V8 flags for the server, e.g. --max-semi-space-size=1 (smaller heap, more GC)",
    placeholder: "FLAGS",
  },
  idleSeconds: {
    type: "integer",
    description:
      "at most this long, once the joins settle, for the server's memory to come down (0: do not wait)",
    placeholder: "S",
    default: 60,
    min: 0,
  },
  json: { type: "boolean", description: "print the result as JSON" },
} as const;

/** What a capacity run found. */
export interface CapacityResult {
  server: string;
  asked: number;
  held: number;
  /** Why it stopped short, if it did. */
  limitedBy: string | null;
  /** This process's file descriptor limits (soft/hard), as `ulimit` says. */
  fdLimits: string;
  connectSeconds: number;
  settleSeconds: number;
  rssBeforeMiB: number | null;
  /** Right after the joins settled. */
  rssAfterMiB: number | null;
  /** (after - before) / held. */
  kibPerConnection: number | null;
  /** The server's resident memory every 5 s while it was idle (MiB). */
  idleRssMiB: number[];
  /** (the last idle sample - before) / held; null if it did not wait. */
  idleKibPerConnection: number | null;
  /** What each connection of the second half added: (after - half) / (held - half). */
  marginalKibPerConnection: number | null;
  /** The threaded server's own `/stats` line at the end (heap figures). */
  stats: string | null;
  /** The server still answered: `/who` counted everyone, a line went through. */
  stillServing: boolean;
}

const HOST = "127.0.0.1";

/** An idle client: it reads (and counts) whatever comes, and says nothing. */
class Idle {
  bytes = 0;
  readonly done: Promise<void>;
  constructor(readonly conn: Deno.TcpConn) {
    this.done = this.#drain();
  }
  async #drain(): Promise<void> {
    const buffer = new Uint8Array(4096);
    try {
      for (let n = await this.conn.read(buffer); n !== null;) {
        this.bytes += n;
        n = await this.conn.read(buffer);
      }
    } catch {
      // closed
    }
  }
}

async function fdLimits(): Promise<string> {
  try {
    const output = await new Deno.Command("sh", {
      args: ["-c", "echo $(ulimit -Sn)/$(ulimit -Hn)"],
      stdout: "piped",
    }).output();
    return new TextDecoder().decode(output.stdout).trim();
  } catch {
    return "unknown";
  }
}

/** A line-reading probe client. */
async function probe(port: number): Promise<{
  conn: Deno.TcpConn;
  next: (pattern: RegExp, ms: number) => Promise<string | null>;
}> {
  const conn = await Deno.connect({ hostname: HOST, port });
  const decoder = new LineDecoder({ maxLength: Infinity });
  const buffer = new Uint8Array(64 * 1024);
  const queue: string[] = [];
  const next = async (pattern: RegExp, ms: number) => {
    const deadline = Date.now() + ms;
    for (;;) {
      while (queue.length > 0) {
        const line = queue.shift()!;
        if (pattern.test(line)) return line;
      }
      if (Date.now() > deadline) return null;
      const n = await conn.read(buffer);
      if (n === null) return null;
      for (const line of decoder.push(buffer.subarray(0, n))) {
        queue.push(new TextDecoder().decode(line));
      }
    }
  };
  return { conn, next };
}

/** Runs the capacity test; resolves with what it found. */
export async function capacity(options: {
  connections: number;
  server: string;
  workers: number;
  v8Flags?: string;
  /** At most this long (s) for the memory to come down once idle (default 60; 0: skip). */
  idleSeconds?: number;
}): Promise<CapacityResult> {
  const [script, args] = chatServer(options.server, options.workers);
  await using server = await spawnServer(script, args, {
    permissions: [
      "--allow-net",
      "--allow-read",
      ...(options.v8Flags ? [`--v8-flags=${options.v8Flags}`] : []),
    ],
  });
  await delay(1000);
  const rssBefore = await server.rss();
  const result: CapacityResult = {
    server: options.server,
    asked: options.connections,
    held: 0,
    limitedBy: null,
    fdLimits: await fdLimits(),
    connectSeconds: 0,
    settleSeconds: 0,
    rssBeforeMiB: mib(rssBefore),
    rssAfterMiB: null,
    kibPerConnection: null,
    idleRssMiB: [],
    idleKibPerConnection: null,
    marginalKibPerConnection: null,
    stats: null,
    stillServing: false,
  };

  const idle: Idle[] = [];
  /** Opens connections up to `count`; false if one failed. */
  const open = async (count: number): Promise<boolean> => {
    const start = Date.now();
    try {
      while (idle.length < count) {
        const batch = Math.min(250, count - idle.length);
        const conns = await Promise.all(
          Array.from(
            { length: batch },
            () => Deno.connect({ hostname: HOST, port: server.port }),
          ),
        );
        idle.push(...conns.map((conn) => new Idle(conn)));
      }
      return true;
    } catch (error) {
      result.limitedBy = `connection ${idle.length + 1}: ${
        (error as Error).message
      }`;
      return false;
    } finally {
      result.connectSeconds += (Date.now() - start) / 1000;
    }
  };
  /** Waits for the join notices to stop flowing (at most 120 s). */
  const settle = async (): Promise<void> => {
    const start = Date.now();
    let total = -1;
    for (;;) {
      await delay(1000);
      const now = idle.reduce((sum, c) => sum + c.bytes, 0);
      if (now === total || Date.now() - start > 120_000) break;
      total = now;
    }
    result.settleSeconds += (Date.now() - start) / 1000;
  };

  // Half, then all: the second half's cost per connection is the marginal
  // one, free of what the runtime grows once (V8's young generation grows
  // to its full size under the notices' churn: tens of MiB, once).
  const half = Math.floor(options.connections / 2);
  let rssHalf: number | null = null;
  if (half > 0 && await open(half)) {
    await settle();
    rssHalf = await server.rss();
  }
  if (result.limitedBy === null) {
    await open(options.connections);
    await settle();
  }
  result.held = idle.length;
  const rssAfter = await server.rss();
  result.rssAfterMiB = mib(rssAfter);
  const perConnection = (rss: number | null): number | null =>
    rssBefore !== null && rss !== null && result.held > 0
      ? kib((rss - rssBefore) / result.held)
      : null;
  result.kibPerConnection = perConnection(rssAfter);
  if (rssHalf !== null && rssAfter !== null && result.held > half) {
    result.marginalKibPerConnection = kib(
      (rssAfter - rssHalf) / (result.held - half),
    );
  }
  const idleSeconds = options.idleSeconds ?? 60;
  if (rssAfter !== null && idleSeconds > 0) {
    const samples = await idleMemory(server, rssAfter, idleSeconds);
    result.idleRssMiB = samples.map((rss) => mib(rss)!);
    result.idleKibPerConnection = perConnection(samples.at(-1) ?? null);
  }

  // Still serving? /who counts everyone; a line reaches an idle client.
  try {
    const a = await probe(server.port);
    const b = await probe(server.port);
    await a.next(/welcome/, 30_000);
    await b.next(/welcome/, 30_000);
    await writeAll(a.conn, new TextEncoder().encode("/who\n"));
    const who = await a.next(/^\* \d+ here/, 30_000);
    const counted = Number(who?.match(/^\* (\d+) here/)?.[1] ?? 0);
    await writeAll(a.conn, new TextEncoder().encode("capacity probe\n"));
    const heard = await b.next(/capacity probe$/, 30_000);
    if (options.server !== "sandbox") {
      await writeAll(a.conn, new TextEncoder().encode("/stats\n"));
      result.stats = (await a.next(/^\* stats:/, 30_000))?.slice(2) ?? null;
    }
    result.stillServing = counted === result.held + 2 && heard !== null;
    closeQuietly(a.conn);
    closeQuietly(b.conn);
  } catch (error) {
    result.limitedBy ??= `probe: ${(error as Error).message}`;
  }
  for (const c of idle) closeQuietly(c.conn);
  await Promise.all(idle.map((c) => c.done));
  await server.stop();
  return result;
}

/**
 * The server's resident memory every 5 s for at most `seconds` (in 5 s
 * steps), ending early once it came down from `busy` (by a tenth or more)
 * and then held still (three samples within 1%): V8 gave back what it grew.
 */
async function idleMemory(
  server: { rss(): Promise<number | null> },
  busy: number,
  seconds: number,
): Promise<number[]> {
  const samples: number[] = [];
  while (samples.length < Math.ceil(seconds / 5)) {
    await delay(5000);
    const rss = await server.rss();
    if (rss === null) break;
    samples.push(rss);
    const last3 = samples.slice(-3);
    const low = Math.min(...last3);
    if (
      last3.length === 3 && low < busy * 0.9 &&
      Math.max(...last3) - low <= low * 0.01
    ) break;
  }
  return samples;
}

function kib(bytes: number): number {
  return Math.round(bytes / 1024 * 10) / 10;
}

/** The result, as people read it. */
export function formatCapacity(r: CapacityResult): string {
  return [
    `capacity: ${r.server} server held ${r.held} of ${r.asked} idle connections` +
    ` (connected in ${r.connectSeconds.toFixed(1)} s, notices settled in ${
      r.settleSeconds.toFixed(1)
    } s)`,
    `  server RSS ${r.rssBeforeMiB ?? "n/a"} MiB -> ${
      r.rssAfterMiB ?? "n/a"
    } MiB right after the joins: ${
      r.kibPerConnection ?? "n/a"
    } KiB per connection on average, ${
      r.marginalKibPerConnection ?? "n/a"
    } KiB for each of the second half`,
    ...(r.idleRssMiB.length > 0
      ? [
        `  once idle: ${r.idleRssMiB.at(-1)} MiB after ${
          r.idleRssMiB.length * 5
        } s (${r.idleRssMiB.join(", ")} MiB every 5 s): ${
          r.idleKibPerConnection ?? "n/a"
        } KiB per connection`,
      ]
      : []),
    `  still serving: ${
      r.stillServing ? "yes" : "NO"
    }; file descriptors (soft/hard): ${r.fdLimits}`,
    ...(r.stats ? [`  the server's /stats: ${r.stats}`] : []),
    ...(r.limitedBy ? [`  limited by: ${r.limitedBy}`] : []),
  ].join("\n");
}

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "tools/capacity.ts",
    summary:
      "capacity test: how many idle connections a chat server holds, and its memory per connection (loopback only).",
    role: "tool",
    defaultPort: 0,
    flags: FLAGS,
    example: "--connections 10000",
  });
  const result = await capacity(options);
  console.log(
    options.json ? JSON.stringify(result, null, 2) : formatCapacity(result),
  );
  Deno.exit(result.stillServing && result.limitedBy === null ? 0 : 1);
}

if (import.meta.main) await main();
