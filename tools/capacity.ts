/**
 * Capacity: how many idle connections a chat server holds, and its memory
 * per connection; and its memory under two attacks on its unfinished-message
 * bound (`--max-unfinished`).
 *
 *   deno task capacity                         # 5,000 to the threaded server
 *   deno task capacity --connections 10000 --server sandbox
 *   deno task capacity --attack unfinished-lines   # 3,000 × 65,000 bytes, no newline
 *   deno task capacity --attack length-prefixes    # 2,000 prefixes of 64 KiB, no payload
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
 * The attacks: each connection sends the start of a message and then
 * nothing, reading whatever it is sent. `unfinished-lines` sends 65,000
 * bytes without a newline (to `--server`, default threaded);
 * `length-prefixes` sends a 4-byte prefix announcing 65,536 bytes and no
 * payload (always the sandbox server with `--framing length`). The server's
 * memory is read before; at the peak (every 250 ms while the attackers
 * connect and settle); while they are still held and the server is quiet;
 * and once they left (those two as the idle figure: every 5 s until it
 * comes down and holds). It counts the attackers the server disconnected
 * for holding too much of an unfinished message (the server's log says
 * each), and compares the growth with the bound plus 20 KiB per attacker.
 *
 * Loopback only; it stops by itself.
 *
 * @module
 */

import { parseCliOrExit } from "../lib/cli.ts";
import { type FramingName, FRAMINGS } from "../lib/framing.ts";
import { closeQuietly, writeAll } from "../lib/io.ts";
import { DEFAULT_PENDING_LIMIT } from "../lib/pending_limit.ts";
import { delay } from "../lib/std.ts";
import {
  CHAT_SERVER_FLAGS,
  chatServer,
  mib,
  type ServerProcess,
  spawnServer,
} from "./server_process.ts";

/** The attacks on the unfinished-message bound, by `--attack` name. */
export const ATTACKS = {
  "unfinished-lines": {
    connections: 3000,
    what: "65,000 bytes of a line, no newline",
    payload: () => new Uint8Array(65_000).fill(0x78), // "x"
  },
  "length-prefixes": {
    connections: 2000,
    what: "a length prefix announcing 65,536 bytes, no payload",
    payload: () => Uint8Array.of(0, 1, 0, 0),
  },
} as const;

/** An attack's name, as `--attack` spells it. */
export type AttackName = keyof typeof ATTACKS;

/** What the goal allows each connection beyond the bound: 20 KiB. */
export const IDLE_BUDGET_BYTES = 20 * 1024;

const FLAGS = {
  connections: {
    type: "integer",
    description:
      "connections to open (default: 5,000 idle; 3,000 or 2,000 attackers)",
    placeholder: "N",
    min: 1,
  },
  attack: {
    type: "string",
    description:
      "attack the unfinished-message bound instead of holding idle connections",
    choices: Object.keys(ATTACKS),
    placeholder: "unfinished-lines|length-prefixes",
  },
  maxUnfinished: {
    type: "integer",
    description:
      "the server's --max-unfinished (default: the server's own, 32 MiB)",
    placeholder: "BYTES",
    min: 1024,
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
      "at most this long for the server's memory to come down once the joins settle (attacks: while held, then once they left); 0: do not wait",
    placeholder: "S",
    default: 60,
    min: 0,
  },
  json: { type: "boolean", description: "print the result as JSON" },
} as const;

/** What a capacity run found. */
export interface CapacityResult {
  /** The server under test. */
  server: string;
  /** Connections asked for. */
  asked: number;
  /** Connections open at the end (connected, and not closed by the server). */
  held: number;
  /** Connections the server closed. */
  closedByServer: number;
  /** Connections open, but never welcomed: the server never accepted them. */
  neverWelcomed: number;
  /** How those ended, each way once (at most 5). */
  closedReasons: string[];
  /** Why it stopped short, if it did. */
  limitedBy: string | null;
  /** This process's file descriptor limits (soft/hard), as `ulimit` says. */
  fdLimits: string;
  /** Seconds spent opening the connections (each batch welcomed). */
  connectSeconds: number;
  /** Seconds until the notices stopped. */
  settleSeconds: number;
  /** The server's RSS before the first connection (MiB). */
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

/** The server's permissions, and V8's flags if any. */
function permissions(v8Flags?: string): string[] {
  return [
    "--allow-net",
    "--allow-read",
    ...(v8Flags ? [`--v8-flags=${v8Flags}`] : []),
  ];
}

/**
 * A client that sends `payload` (the start of a message, or nothing) and
 * then only reads: it counts what it is sent, and tells how its connection
 * ended and with which notice.
 */
class Client {
  bytes = 0;
  /** How its connection ended: cut off for what it held, closed by the server otherwise, or by us. */
  ended: "evicted" | "closed" | "ours" | null = null;
  /** The server's last notice, if it closed the connection. */
  goodbye = "";
  readonly done: Promise<void>;
  #tail = new Uint8Array(0);
  #leaving = false;
  #reset = false;

  constructor(readonly conn: Deno.TcpConn, payload: Uint8Array) {
    this.done = Promise.all([
      writeAll(conn, payload).catch(() => {}),
      this.#drain(),
    ]).then(() => {});
  }

  /** Closes the connection: the client leaves. */
  leave(): void {
    this.#leaving = true;
    closeQuietly(this.conn);
  }

  async #drain(): Promise<void> {
    const buffer = new Uint8Array(4096);
    try {
      for (let n = await this.conn.read(buffer); n !== null;) {
        this.bytes += n;
        // the last few hundred bytes: the goodbye, if one comes
        const joined = new Uint8Array(this.#tail.length + n);
        joined.set(this.#tail);
        joined.set(buffer.subarray(0, n), this.#tail.length);
        this.#tail = joined.slice(-512);
        n = await this.conn.read(buffer);
      }
    } catch {
      this.#reset = true; // or closed by leave()
    }
    if (this.#leaving) this.ended = "ours";
    else {
      const tail = new TextDecoder().decode(this.#tail);
      this.goodbye = tail.match(/\* ([^\n*]*); disconnecting/)?.[1] ??
        (this.#reset ? "reset without a notice" : "closed without a notice");
      this.ended = EVICTED.test(tail) ? "evicted" : "closed";
      closeQuietly(this.conn);
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

/** A probe client that reads messages in `framing`. */
async function probe(port: number, framing: FramingName = "line"): Promise<{
  conn: Deno.TcpConn;
  send: (text: string) => Promise<void>;
  next: (pattern: RegExp, ms: number) => Promise<string | null>;
}> {
  const conn = await Deno.connect({ hostname: HOST, port });
  const decoder = FRAMINGS[framing].decoder(Infinity);
  const buffer = new Uint8Array(64 * 1024);
  const queue: string[] = [];
  const send = (text: string) => writeAll(conn, FRAMINGS[framing].encode(text));
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
  return { conn, send, next };
}

/**
 * Whether the server still answers: `/who` from a new client counts
 * `expected` others besides the two probes, and a line reaches the second
 * probe. The threaded server's `/stats` line too, where asked.
 */
async function stillServes(
  port: number,
  options: { expected: number; framing?: FramingName; stats?: boolean },
): Promise<{ serving: boolean; stats: string | null }> {
  const a = await probe(port, options.framing);
  const b = await probe(port, options.framing);
  try {
    await a.next(/welcome/, 30_000);
    await b.next(/welcome/, 30_000);
    await a.send("/who");
    const who = await a.next(/^\* \d+ here/, 30_000);
    const counted = Number(who?.match(/^\* (\d+) here/)?.[1] ?? 0);
    await a.send("capacity probe");
    const heard = await b.next(/capacity probe$/, 30_000);
    let stats: string | null = null;
    if (options.stats) {
      await a.send("/stats");
      stats = (await a.next(/^\* stats:/, 30_000))?.slice(2) ?? null;
    }
    return {
      serving: counted === options.expected + 2 && heard !== null,
      stats,
    };
  } finally {
    closeQuietly(a.conn);
    closeQuietly(b.conn);
  }
}

/** Options of {@linkcode capacity}. */
export interface CapacityOptions {
  /** Idle connections to open. */
  connections: number;
  /** The server under test: `threaded`, `portable` or `sandbox`. */
  server: string;
  /** Worker threads of the threaded server. */
  workers: number;
  /** V8 flags for the server. */
  v8Flags?: string;
  /** At most this long (s) for the memory to come down once idle (default 60; 0: skip). */
  idleSeconds?: number;
}

/**
 * Runs the capacity test; resolves with what it found.
 *
 * @example
 * ```ts ignore
 * import { capacity, formatCapacity } from "./capacity.ts";
 * const result = await capacity({ connections: 1000, server: "sandbox", workers: 1 });
 * console.log(formatCapacity(result));
 * ```
 */
export async function capacity(
  options: CapacityOptions,
): Promise<CapacityResult> {
  const [script, args] = chatServer(options.server, options.workers);
  await using server = await spawnServer(script, args, {
    permissions: permissions(options.v8Flags),
  });
  await delay(1000);
  const rssBefore = await server.rss();
  const result: CapacityResult = {
    server: options.server,
    asked: options.connections,
    held: 0,
    closedByServer: 0,
    neverWelcomed: 0,
    closedReasons: [],
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

  const idle: Client[] = [];
  /** Opens connections up to `count`; false if one failed. */
  const open = async (count: number): Promise<boolean> => {
    const start = Date.now();
    const failed = await openClients(server.port, {
      clients: idle,
      count,
      payload: new Uint8Array(0),
    });
    result.connectSeconds += (Date.now() - start) / 1000;
    result.limitedBy ??= failed;
    return failed === null;
  };
  /** Waits for the join notices to stop flowing (at most 120 s). */
  const settled = async (): Promise<void> => {
    const start = Date.now();
    await settle(idle);
    result.settleSeconds += (Date.now() - start) / 1000;
  };

  // Half, then all: the second half's cost per connection is the marginal
  // one, free of what the runtime grows once (V8's young generation grows
  // to its full size under the notices' churn: tens of MiB, once).
  const half = Math.floor(options.connections / 2);
  let rssHalf: number | null = null;
  if (half > 0 && await open(half)) {
    await settled();
    rssHalf = await server.rss();
  }
  if (result.limitedBy === null) {
    await open(options.connections);
    await settled();
  }
  result.held = idle.filter((c) => c.ended === null && c.bytes > 0).length;
  result.neverWelcomed = idle.filter((c) => c.ended === null && c.bytes === 0)
    .length;
  const closed = idle.filter((c) => c.ended !== null);
  result.closedByServer = closed.length;
  result.closedReasons = [...new Set(closed.map((c) => c.goodbye))].slice(0, 5);
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
    const probed = await stillServes(server.port, {
      expected: result.held,
      stats: options.server !== "sandbox",
    });
    result.stillServing = probed.serving;
    result.stats = probed.stats;
  } catch (error) {
    result.limitedBy ??= `probe: ${(error as Error).message}`;
  }
  for (const c of idle) c.leave();
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

/**
 * The result, as people read it.
 *
 * @example
 * ```ts ignore
 * import { capacity, formatCapacity } from "./capacity.ts";
 * console.log(formatCapacity(await capacity({ connections: 100, server: "sandbox", workers: 1 })));
 * ```
 */
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
    ...(r.neverWelcomed > 0
      ? [
        `  never welcomed (the server did not accept them): ${r.neverWelcomed}`,
      ]
      : []),
    ...(r.closedByServer > 0
      ? [
        `  closed by the server: ${r.closedByServer} (${
          r.closedReasons.join("; ")
        })`,
      ]
      : []),
    ...(r.limitedBy ? [`  limited by: ${r.limitedBy}`] : []),
  ].join("\n");
}

/** Options of {@linkcode attack}. */
export interface AttackOptions {
  /** Which attack. */
  attack: AttackName;
  /** Attacking connections (default: the attack's, 3,000 or 2,000). */
  connections?: number;
  /** The server for `unfinished-lines` (`length-prefixes` always uses the sandbox server). */
  server: string;
  /** Worker threads of the threaded server. */
  workers: number;
  /** The server's `--max-unfinished` (default: the server's own). */
  maxUnfinished?: number;
  /** V8 flags for the server. */
  v8Flags?: string;
  /** At most this long (s) for the memory to come down once the attackers left (default 60; 0: skip). */
  idleSeconds?: number;
}

/** What an attack run found. */
export interface AttackResult {
  /** Which attack. */
  attack: AttackName;
  /** What each attacker sent. */
  what: string;
  /** The server and its flags. */
  server: string;
  /** Attackers asked for. */
  asked: number;
  /** Attackers that connected. */
  connected: number;
  /** The server's `--max-unfinished` bound in bytes. */
  maxUnfinishedBytes: number;
  /** Attackers the server disconnected for the unfinished bytes they held (its log's count). */
  evicted: number;
  /**
   * Of those, how many read the server's notice; the others were reset: the
   * server closed while their bytes were still arriving, and a reset
   * discards what it had sent.
   */
  noticesRead: number;
  /** Attackers the server closed for another reason. */
  closedOtherwise: number;
  /** How the attackers cut off without the eviction notice ended, each way once (at most 5). */
  otherReasons: string[];
  /** Attackers still connected at the peak. */
  held: number;
  /** Attackers connected, but never welcomed: the server never accepted them. */
  neverWelcomed: number;
  /** The threaded server's `/stats` line once the attackers left (heap figures). */
  stats: string | null;
  /** This process's file descriptor limits (soft/hard). */
  fdLimits: string;
  /** The server's RSS before the first attacker (MiB). */
  rssBeforeMiB: number | null;
  /** The highest of the samples taken every 250 ms while the attackers connected and were held. */
  rssPeakMiB: number | null;
  /**
   * The server's memory every 5 s while the attackers were still held, the
   * server quiet (as the idle figure: until it comes down and holds), MiB.
   */
  heldRssMiB: number[];
  /** The server's memory every 5 s once the attackers left (MiB). */
  afterRssMiB: number[];
  /** Growth allowed by the goal: the bound plus 20 KiB per attacker (MiB). */
  budgetMiB: number;
  /** Peak − before (MiB). */
  growthMiB: number | null;
  /** The growth at the peak stayed within the budget. */
  withinBudget: boolean | null;
  /** The last sample while held − before (MiB). */
  heldGrowthMiB: number | null;
  /** The growth while held, once quiet, stayed within the budget. */
  heldWithinBudget: boolean | null;
  /** The last sample after − before (MiB). */
  retainedMiB: number | null;
  /** Once the attackers left, the server gave back at least half of what it grew. */
  fellBack: boolean | null;
  /** During the attack: `/who` counted the held attackers, a line went through. */
  stillServing: boolean;
  /** Why the attack stopped short, if it did. */
  limitedBy: string | null;
}

/** The server's notice to a client it cut off for its unfinished message. */
const EVICTED = /held \d+ bytes of an unfinished/;
/** The server's log line for it. */
const EVICTED_LOG = /left \(held \d+ bytes of an unfinished/;

/**
 * Attacks a server's bound on unfinished messages (see the module doc);
 * resolves with its memory before, at the peak and after, and the
 * attackers it disconnected.
 *
 * @example
 * ```ts ignore
 * import { attack, formatAttack } from "./capacity.ts";
 * const result = await attack({ attack: "unfinished-lines", connections: 50, server: "sandbox", workers: 1 });
 * console.log(formatAttack(result));
 * ```
 */
export async function attack(options: AttackOptions): Promise<AttackResult> {
  const spec = ATTACKS[options.attack];
  const asked = options.connections ?? spec.connections;
  const lengths = options.attack === "length-prefixes";
  const kind = lengths ? "sandbox" : options.server;
  const [script, args] = chatServer(kind, options.workers);
  const extra = [
    ...(lengths ? ["--framing", "length"] : []),
    ...(options.maxUnfinished !== undefined
      ? ["--max-unfinished", String(options.maxUnfinished)]
      : []),
  ];
  const bound = options.maxUnfinished ?? DEFAULT_PENDING_LIMIT;
  await using server = await spawnServer(script, [...args, ...extra], {
    permissions: permissions(options.v8Flags),
    count: EVICTED_LOG,
  });
  await delay(1000);
  const rssBefore = await server.rss();
  const threaded = kind !== "sandbox";
  const result: AttackResult = {
    attack: options.attack,
    what: spec.what,
    server: [
      kind,
      ...(threaded ? [`${options.workers} workers`] : []),
      ...extra,
    ]
      .join(" "),
    asked,
    connected: 0,
    maxUnfinishedBytes: bound,
    evicted: 0,
    noticesRead: 0,
    closedOtherwise: 0,
    otherReasons: [],
    held: 0,
    neverWelcomed: 0,
    stats: null,
    fdLimits: await fdLimits(),
    rssBeforeMiB: mib(rssBefore),
    rssPeakMiB: null,
    heldRssMiB: [],
    afterRssMiB: [],
    budgetMiB: mib(bound + IDLE_BUDGET_BYTES * asked)!,
    growthMiB: null,
    withinBudget: null,
    heldGrowthMiB: null,
    heldWithinBudget: null,
    retainedMiB: null,
    fellBack: null,
    stillServing: false,
    limitedBy: null,
  };

  const peak = new PeakSampler(server, rssBefore);
  const attackers: Client[] = [];
  result.limitedBy = await openClients(server.port, {
    clients: attackers,
    count: asked,
    payload: spec.payload(),
  });
  result.connected = attackers.length;
  // held until the notices stop flowing (the server reads every attacker's
  // bytes and announces every join and every eviction)
  await settle(attackers);
  const count = (ended: Client["ended"]) =>
    attackers.filter((a) => a.ended === ended).length;
  result.held = attackers.filter((a) => a.ended === null && a.bytes > 0)
    .length;
  result.neverWelcomed = count(null) - result.held;
  try {
    const probed = await stillServes(server.port, {
      expected: result.held,
      framing: lengths ? "length" : "line",
    });
    result.stillServing = probed.serving;
  } catch (error) {
    result.limitedBy ??= `probe: ${(error as Error).message}`;
  }
  const rssPeak = await peak.stop();
  // the server's own count: an attacker reset mid-send never reads its notice
  result.evicted = server.counted;
  result.noticesRead = count("evicted");
  const cut = attackers.filter((a) => a.ended === "closed");
  result.closedOtherwise = Math.max(
    0,
    result.noticesRead + cut.length - result.evicted,
  );
  result.otherReasons = [...new Set(cut.map((a) => a.goodbye))].slice(0, 5);

  const idleSeconds = options.idleSeconds ?? 60;
  const quiet = (busy: number | null) =>
    busy !== null && idleSeconds > 0
      ? idleMemory(server, busy, idleSeconds)
      : Promise.resolve([]);
  // held: from the peak down; after: from where it was while held
  const held = await quiet(rssPeak);
  for (const a of attackers) a.leave();
  await Promise.all(attackers.map((a) => a.done));
  const after = await quiet(held.at(-1) ?? rssPeak);
  result.heldRssMiB = held.map((rss) => mib(rss)!);
  result.afterRssMiB = after.map((rss) => mib(rss)!);
  if (threaded) {
    try {
      const probed = await stillServes(server.port, {
        expected: 0,
        stats: true,
      });
      result.stats = probed.stats;
    } catch {
      // the figures above stand without it
    }
  }

  if (rssBefore !== null && rssPeak !== null) {
    const before = result.rssBeforeMiB!;
    const above = (rss: number) => Math.round((rss - before) * 10) / 10;
    result.rssPeakMiB = mib(rssPeak);
    result.growthMiB = above(result.rssPeakMiB!);
    result.withinBudget = result.growthMiB <= result.budgetMiB;
    const heldLast = result.heldRssMiB.at(-1);
    if (heldLast !== undefined) {
      result.heldGrowthMiB = above(heldLast);
      result.heldWithinBudget = result.heldGrowthMiB <= result.budgetMiB;
    }
    const afterLast = result.afterRssMiB.at(-1);
    if (afterLast !== undefined) {
      result.retainedMiB = above(afterLast);
      result.fellBack = result.retainedMiB <= result.growthMiB / 2;
    }
  }
  await server.stop();
  return result;
}

/** The server's highest resident memory, sampled every 250 ms until stopped. */
class PeakSampler {
  #peak: number | null;
  #running = true;
  readonly #loop: Promise<void>;

  constructor(server: ServerProcess, start: number | null) {
    this.#peak = start;
    this.#loop = (async () => {
      while (this.#running) {
        this.#take(await server.rss());
        await delay(250);
      }
      this.#take(await server.rss());
    })();
  }

  #take(rss: number | null): void {
    if (rss !== null) this.#peak = Math.max(this.#peak ?? 0, rss);
  }

  /** Stops sampling (after one last sample); the peak, or null if none was read. */
  async stop(): Promise<number | null> {
    this.#running = false;
    await this.#loop;
    return this.#peak;
  }
}

/** Options of `openClients`. */
interface OpenOptions {
  /** The clients so far; the new ones are pushed here. */
  clients: Client[];
  /** Open until there are this many. */
  count: number;
  /** What each new client sends. */
  payload: Uint8Array;
}

/**
 * Opens clients in batches of 250, each batch welcomed (or closed) before
 * the next: a server that falls behind on accept() would otherwise let its
 * listen backlog overflow, and a client whose handshake the kernel dropped
 * there believes it is connected while the server never hears of it. Null,
 * or what stopped it (a connection that failed).
 */
async function openClients(
  port: number,
  options: OpenOptions,
): Promise<string | null> {
  const { clients, count, payload } = options;
  try {
    while (clients.length < count) {
      const batch = Math.min(250, count - clients.length);
      const conns = await Promise.all(
        Array.from(
          { length: batch },
          () => Deno.connect({ hostname: HOST, port }),
        ),
      );
      const fresh = conns.map((conn) => new Client(conn, payload));
      clients.push(...fresh);
      const deadline = Date.now() + 30_000;
      while (
        !fresh.every((c) => c.bytes > 0 || c.ended !== null) &&
        Date.now() < deadline
      ) await delay(20);
    }
    return null;
  } catch (error) {
    return `connection ${clients.length + 1}: ${(error as Error).message}`;
  }
}

/** Waits until the bytes `clients` were sent hold still for a second (at most 120 s): the notices stopped. */
async function settle(clients: Client[]): Promise<void> {
  const start = Date.now();
  let last = -1;
  for (;;) {
    await delay(1000);
    const now = clients.reduce((sum, c) => sum + c.bytes, 0);
    if (now === last || Date.now() - start > 120_000) return;
    last = now;
  }
}

/**
 * An attack's result, as people read it.
 *
 * @example
 * ```ts ignore
 * import { attack, formatAttack } from "./capacity.ts";
 * console.log(formatAttack(await attack({ attack: "length-prefixes", connections: 50, server: "sandbox", workers: 1 })));
 * ```
 */
export function formatAttack(r: AttackResult): string {
  const yes = (b: boolean | null) => b === null ? "n/a" : b ? "yes" : "NO";
  const samples = (list: number[]) =>
    `${list.at(-1)} MiB after ${list.length * 5} s (${
      list.join(", ")
    } MiB every 5 s)`;
  return [
    `attack ${r.attack}: ${r.connected} of ${r.asked} connections, each ${r.what}, against ${r.server}`,
    `  bound (--max-unfinished): ${r.maxUnfinishedBytes} bytes (${
      mib(r.maxUnfinishedBytes)
    } MiB); disconnected by it: ${r.evicted} (${r.noticesRead} read its notice); closed otherwise: ${r.closedOtherwise}; held: ${r.held}`,
    ...(r.otherReasons.length > 0
      ? [`  cut off without that notice: ${r.otherReasons.join("; ")}`]
      : []),
    `  server RSS ${r.rssBeforeMiB ?? "n/a"} MiB before, ${
      r.rssPeakMiB ?? "n/a"
    } MiB at the peak: grew ${
      r.growthMiB ?? "n/a"
    } MiB; the goal allows ${r.budgetMiB} MiB (the bound + 20 KiB × ${r.asked}): ${
      yes(r.withinBudget)
    }`,
    ...(r.heldRssMiB.length > 0
      ? [
        `  held, the server quiet: ${
          samples(r.heldRssMiB)
        }: grew ${r.heldGrowthMiB} MiB: ${yes(r.heldWithinBudget)}`,
      ]
      : []),
    ...(r.afterRssMiB.length > 0
      ? [
        `  once they left: ${
          samples(r.afterRssMiB)
        }, ${r.retainedMiB} MiB above before; gave back at least half: ${
          yes(r.fellBack)
        }`,
      ]
      : []),
    `  still serving during the attack: ${
      r.stillServing ? "yes" : "NO"
    }; file descriptors (soft/hard): ${r.fdLimits}`,
    ...(r.neverWelcomed > 0
      ? [
        `  never welcomed (the server did not accept them): ${r.neverWelcomed}`,
      ]
      : []),
    ...(r.stats ? [`  the server's /stats once they left: ${r.stats}`] : []),
    ...(r.limitedBy ? [`  limited by: ${r.limitedBy}`] : []),
  ].join("\n");
}

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "tools/capacity.ts",
    summary:
      "capacity test: how many idle connections a chat server holds, its memory per connection, and its memory under attack (loopback only).",
    role: "tool",
    defaultPort: 0,
    flags: FLAGS,
    example: "--attack unfinished-lines",
  });
  if (options.attack !== undefined) {
    const result = await attack({
      ...options,
      attack: options.attack as AttackName,
    });
    console.log(
      options.json ? JSON.stringify(result, null, 2) : formatAttack(result),
    );
    Deno.exit(
      result.stillServing && result.limitedBy === null &&
        result.neverWelcomed === 0
        ? 0
        : 1,
    );
  }
  const result = await capacity({
    ...options,
    connections: options.connections ?? 5000,
  });
  console.log(
    options.json ? JSON.stringify(result, null, 2) : formatCapacity(result),
  );
  Deno.exit(
    result.stillServing && result.limitedBy === null &&
      result.closedByServer === 0 && result.neverWelcomed === 0
      ? 0
      : 1,
  );
}

if (import.meta.main) await main();
