/**
 * Soak: hundreds of chat clients join, talk, leave and come back at random
 * against a real chat server for a while; then every message is accounted
 * for.
 *
 *   deno task soak                                    # 30 s, 200 clients
 *   deno task soak --seconds 600 --clients 500 --server sandbox
 *
 * The rule checked: a message that sender S sent after S saw receiver R
 * join reaches R exactly once, in S's order, if R is still there at the
 * end; a receiver that left got an unbroken run of S's messages (no gap,
 * nothing twice, in order). Every client is both a sender and a receiver.
 * Clients leave three ways: `/quit`, a plain close, and a close in the
 * middle of a line (the server drops the half line or, as documented for
 * a clean end of stream, delivers it: either is accepted, once).
 *
 * Loopback only, bounded in time: it stops by itself. Exit 0 when nothing
 * was lost, duplicated or reordered; 1 otherwise.
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
  seconds: {
    type: "number",
    description: "how long the clients talk",
    placeholder: "SECONDS",
    default: 30,
    min: 1,
  },
  clients: {
    type: "integer",
    description: "clients connected at any time (about)",
    placeholder: "N",
    default: 200,
    min: 2,
    max: 2000,
  },
  ...CHAT_SERVER_FLAGS,
  seed: {
    type: "integer",
    description: "seed of the random choices, to replay a run",
    default: 1,
  },
  json: { type: "boolean", description: "print the summary as JSON" },
} as const;

/** What a soak run found. */
export interface SoakSummary {
  server: string;
  seconds: number;
  clients: number;
  sessions: number;
  left: { quit: number; closed: number; cut: number };
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  reordered: number;
  rssStartMiB: number | null;
  rssEndMiB: number | null;
  problems: string[];
}

const HOST = "127.0.0.1";
const enc = new TextEncoder();
const dec = new TextDecoder();

/** A small seeded PRNG (mulberry32): the same seed, the same run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One connection's life: it sends numbered lines and records what it gets. */
class Session {
  name = "";
  /** Messages sent: `0`, `1`, ... */
  sent = 0;
  /** Per receiver: the first number it must get (S saw it join then). */
  readonly owedFrom = new Map<string, number>();
  /** Per sender: the numbers received, in arrival order. */
  readonly received = new Map<string, number[]>();
  /** Half lines others closed on, received as their last line. */
  readonly halves = new Map<string, number>();
  stayed = true;
  readonly reading: Promise<void>;
  #welcomed!: () => void;
  readonly welcomed = new Promise<void>((
    resolve,
  ) => (this.#welcomed = resolve));

  constructor(readonly conn: Deno.TcpConn) {
    this.reading = this.#read();
  }

  async #read(): Promise<void> {
    const decoder = new LineDecoder({ maxLength: Infinity });
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (let n = await this.conn.read(buffer); n !== null;) {
        for (const line of decoder.push(buffer.subarray(0, n))) {
          this.#line(dec.decode(line));
        }
        n = await this.conn.read(buffer);
      }
    } catch {
      // closed by us, or the server went away: the checks will tell
    }
  }

  #line(line: string): void {
    let match = line.match(/^\* welcome ((?:client|guest)-\d+)/);
    if (match) {
      this.name = match[1];
      // who is here already: owed every message from the first
      void writeAll(this.conn, enc.encode("/who\n")).catch(() => {});
      return;
    }
    match = line.match(/^\* \d+ here: (.*)$/);
    if (match && this.name) {
      for (const other of match[1].split(", ")) {
        if (other !== this.name && !this.owedFrom.has(other)) {
          this.owedFrom.set(other, 0);
        }
      }
      return this.#welcomed();
    }
    match = line.match(/^\* ((?:client|guest)-\d+) has joined$/);
    if (match) {
      this.owedFrom.set(match[1], this.sent);
      return;
    }
    match = line.match(/^((?:client|guest)-\d+): (\d+)(~?)$/);
    if (!match) return; // other notices
    const [, from, number, half] = match;
    if (half) this.halves.set(from, (this.halves.get(from) ?? 0) + 1);
    else {
      let list = this.received.get(from);
      if (!list) this.received.set(from, list = []);
      list.push(Number(number));
    }
  }

  /** Sends the next numbered line. */
  send(): Promise<void> {
    return writeAll(this.conn, enc.encode(`${this.sent++}\n`));
  }
}

/** Runs the soak; resolves with what it found. */
export async function soak(options: {
  seconds: number;
  clients: number;
  server: string;
  workers: number;
  seed: number;
}): Promise<SoakSummary> {
  const rand = random(options.seed);
  const [script, args] = chatServer(options.server, options.workers);
  await using server = await spawnServer(script, args);
  const summary: SoakSummary = {
    server: options.server,
    seconds: options.seconds,
    clients: options.clients,
    sessions: 0,
    left: { quit: 0, closed: 0, cut: 0 },
    sent: 0,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    reordered: 0,
    rssStartMiB: null,
    rssEndMiB: null,
    problems: [],
  };

  const all: Session[] = [];
  const join = async (): Promise<Session> => {
    const session = new Session(
      await Deno.connect({ hostname: HOST, port: server.port }),
    );
    await session.welcomed;
    all.push(session);
    summary.sessions++;
    return session;
  };

  // Everyone joins (in batches, so the backlog never overflows).
  const live: Session[] = [];
  for (let i = 0; i < options.clients; i += 50) {
    const batch = Math.min(50, options.clients - i);
    live.push(...await Promise.all(Array.from({ length: batch }, join)));
  }
  await delay(500); // the join notices settle
  const rssStart = await server.rss();

  // Each client: talk every 0.2-1 s; now and then leave and come back.
  const end = Date.now() + options.seconds * 1000;
  const leave = async (session: Session): Promise<void> => {
    session.stayed = false;
    const how = rand();
    if (how < 1 / 3) {
      summary.left.quit++;
      await writeAll(session.conn, enc.encode("/quit\n"));
      await session.reading; // the server closes after /quit
    } else if (how < 2 / 3) {
      summary.left.closed++;
    } else {
      summary.left.cut++;
      // half a line, then gone: the number with a ~ marks it
      await writeAll(session.conn, enc.encode(`${session.sent}~`));
    }
    closeQuietly(session.conn);
    await session.reading;
  };
  const talk = async (first: Session): Promise<void> => {
    let session = first;
    while (Date.now() < end) {
      await delay(200 + rand() * 800);
      if (Date.now() >= end) break;
      try {
        if (rand() < 0.03) {
          await leave(session);
          session = await join();
        } else {
          await session.send();
        }
      } catch (error) {
        summary.problems.push(
          `${session.name}: ${(error as Error).message}`,
        );
        return;
      }
    }
  };
  await Promise.all(live.map((s) => talk(s)));
  const stayers = all.filter((s) => s.stayed);
  const owedBy = (sender: Session, receiver: Session) =>
    receiver === sender ? undefined : sender.owedFrom.get(receiver.name);

  // Quiet: wait until the stayers have everything they are owed (or 30 s).
  const settled = Date.now() + 30_000;
  const complete = () =>
    stayers.every((r) =>
      all.every((s) => {
        const from = owedBy(s, r);
        return from === undefined || from >= s.sent ||
          (r.received.get(s.name)?.at(-1) ?? -1) >= s.sent - 1;
      })
    );
  while (!complete() && Date.now() < settled) await delay(100);
  summary.rssStartMiB = mib(rssStart);
  summary.rssEndMiB = mib(await server.rss());

  // Account for every message.
  const byName = new Map(all.map((s) => [s.name, s]));
  for (const s of all) summary.sent += s.sent;
  for (const r of all) {
    for (const [from, numbers] of r.received) {
      summary.delivered += numbers.length;
      const sender = byName.get(from);
      if (!sender) continue;
      const seen = new Set<number>();
      for (let i = 0; i < numbers.length; i++) {
        if (seen.has(numbers[i])) summary.duplicated++;
        seen.add(numbers[i]);
        if (i > 0 && numbers[i] !== numbers[i - 1] + 1) summary.reordered++;
      }
      if (!r.stayed) continue;
      const from0 = owedBy(sender, r);
      if (from0 === undefined) continue;
      for (let n = from0; n < sender.sent; n++) {
        if (!seen.has(n)) summary.lost++;
      }
    }
    // A stayer owed messages by someone it got nothing from
    if (!r.stayed) continue;
    for (const s of all) {
      const from0 = owedBy(s, r);
      if (from0 !== undefined && !r.received.has(s.name)) {
        summary.lost += Math.max(0, s.sent - from0);
      }
    }
    for (const count of r.halves.values()) {
      if (count > 1) summary.duplicated += count - 1;
    }
  }
  for (const s of stayers) closeQuietly(s.conn);
  await Promise.all(all.map((s) => s.reading));
  const code = await server.stop();
  if (code !== 0) summary.problems.push(`the server exited ${code}`);
  return summary;
}

/** The summary, as people read it. */
export function formatSummary(s: SoakSummary): string {
  const rss = (v: number | null) => v === null ? "n/a" : `${v} MiB`;
  return [
    `soak: ${s.server} server, ${s.seconds} s, ${s.clients} clients at a time, ${s.sessions} sessions`,
    `  left and came back: ${s.left.quit} by /quit, ${s.left.closed} by close, ${s.left.cut} mid-line`,
    `  messages: ${s.sent} sent, ${s.delivered} deliveries checked`,
    `  lost ${s.lost}, duplicated ${s.duplicated}, out of order ${s.reordered}`,
    `  server RSS: ${rss(s.rssStartMiB)} at start, ${rss(s.rssEndMiB)} at end`,
    ...s.problems.map((p) => `  problem: ${p}`),
  ].join("\n");
}

/** Whether a run passed. */
export function passed(s: SoakSummary): boolean {
  return s.lost === 0 && s.duplicated === 0 && s.reordered === 0 &&
    s.problems.length === 0;
}

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "tools/soak.ts",
    summary:
      "soak test: chat clients join, talk, leave and rejoin at random; every message is accounted for (loopback only).",
    role: "tool",
    defaultPort: 0,
    flags: FLAGS,
    example: "--seconds 60 --clients 300",
  });
  const summary = await soak(options);
  console.log(
    options.json ? JSON.stringify(summary, null, 2) : formatSummary(summary),
  );
  Deno.exit(passed(summary) ? 0 : 1);
}

if (import.meta.main) await main();
