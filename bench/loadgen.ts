/**
 * The load generator in Deno, for machines without `cc`: the same modes,
 * arguments and output as bench/loadgen.c (see its header), so
 * `deno task bench` runs everywhere Deno does.
 *
 *   loadgen.ts echo HOST PORT CONNS SIZE SECONDS [raw|line|length] [greeting]
 *   loadgen.ts chat HOST PORT RECEIVERS SECONDS line|length
 *
 * It is slower than the C one: a server that outruns it is measured at the
 * generator's limit, and the bench says so above its tables. Latency stamps
 * are microseconds of `performance.now()`.
 *
 * @module
 */

import { encodeFrames, encodeLine } from "../lib/encoders.ts";
import { type FramingName, FRAMINGS } from "../lib/framing.ts";
import { closeQuietly, writeAll } from "../lib/io.ts";

/** Messages the chat sender may be ahead of the slowest receiver (as in C). */
const WINDOW = 2000;
/** Latency samples kept (reservoir sampling beyond, as in C). */
const MAX_SAMPLES = 200_000;

const now = (): number => performance.now() * 1000; // µs
const utf8 = new TextDecoder();

/** Latency samples, as the C generator keeps them. */
class Samples {
  #kept: number[] = [];
  #seen = 0;

  add(us: number): void {
    this.#seen++;
    if (this.#kept.length < MAX_SAMPLES) this.#kept.push(us);
    else {
      const j = Math.floor(Math.random() * this.#seen);
      if (j < MAX_SAMPLES) this.#kept[j] = us;
    }
  }

  percentile(p: number): number {
    if (this.#kept.length === 0) return 0;
    const sorted = this.#kept.toSorted((a, b) => a - b);
    return Math.round(sorted[Math.floor(p * (sorted.length - 1))]);
  }
}

/** CPU seconds used so far by $SERVER_PID (all threads), or -1. */
async function serverCpu(): Promise<number> {
  const pid = Deno.env.get("SERVER_PID");
  if (!pid) return -1;
  const out = await new Deno.Command("cat", {
    args: [`/proc/${pid}/stat`],
    stdout: "piped",
    stderr: "null",
  }).output().catch(() => null);
  const fields = out?.success
    ? new TextDecoder().decode(out.stdout).split(") ")[1]?.split(" ")
    : undefined;
  if (!fields) return -1;
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100
}

/** The message each echo connection sends, framed as asked. */
function echoMessage(size: number, framing: string): Uint8Array {
  const message = new Uint8Array(size).fill(0x78); // "x"
  if (framing === "line") message[size - 1] = 0x0a;
  if (framing === "length") {
    new DataView(message.buffer).setUint32(0, size - 4);
  }
  return message;
}

/** Ping-pong on every connection at once; "trips bytes p50 p99 cpu". */
async function echo(args: string[]): Promise<string> {
  const [host, port, conns, size, seconds] = args;
  const [framing = "raw", greeting] = args.slice(5);
  const bytes = Number(size);
  const message = echoMessage(bytes, framing);
  const samples = new Samples();
  const connections = await Promise.all(
    Array.from({ length: Number(conns) }, async () => {
      const conn = await Deno.connect({ hostname: host, port: Number(port) });
      conn.setNoDelay(true);
      if (greeting === "greeting") await readLine(conn);
      return conn;
    }),
  );
  const cpu0 = await serverCpu();
  const end = now() + Number(seconds) * 1e6;
  let trips = 0;
  await Promise.all(connections.map(async (conn) => {
    const buffer = new Uint8Array(Math.max(bytes, 65536));
    while (now() < end) {
      const start = now();
      await writeAll(conn, message);
      for (let got = 0; got < bytes;) {
        const n = await conn.read(buffer.subarray(0, bytes - got));
        if (n === null) throw new Error("server closed");
        got += n;
      }
      samples.add(now() - start);
      trips++;
    }
    closeQuietly(conn);
  }));
  const cpu1 = await serverCpu();
  return `${trips} ${trips * bytes * 2} ${samples.percentile(0.5)} ${
    samples.percentile(0.99)
  } ${cpuText(cpu0, cpu1)}`;
}

/**
 * One sender, N receivers (connection 0 sends), the sender at most WINDOW
 * messages ahead of the slowest; "sent delivered p50 p99 cpu".
 */
async function chat(args: string[]): Promise<string> {
  const [host, port, receivers, seconds, framingName] = args;
  const framing = FRAMINGS[framingName as FramingName];
  const samples = new Samples();
  const counts: number[] = [];
  let lastByte = now();
  let running = true;
  const conns = await Promise.all(
    Array.from({ length: Number(receivers) + 1 }, async () => {
      const conn = await Deno.connect({ hostname: host, port: Number(port) });
      conn.setNoDelay(true);
      return conn;
    }),
  );
  // Receivers (1..N) read until the end; the sender's own stream is drained.
  const welcomed: Promise<void>[] = [];
  const reading = conns.map((conn, i) => {
    counts[i] = 0;
    const { promise, resolve: welcome, reject } = Promise.withResolvers<
      void
    >();
    welcomed.push(promise);
    return (async () => {
      const decoder = framing.decoder(Infinity);
      const buffer = new Uint8Array(65536);
      let first = true;
      const read = () => conn.read(buffer).catch(() => null); // closed at the end
      for (let n = await read(); n !== null && running; n = await read()) {
        lastByte = now();
        for (const message of decoder.push(buffer.subarray(0, n))) {
          if (first) {
            first = false;
            welcome();
            continue;
          }
          const t = message.lastIndexOf(0x54); // "T"
          if (t === -1 || !(message[t + 1] >= 0x30 && message[t + 1] <= 0x39)) {
            continue;
          }
          if (++counts[i] % 16 === 0) {
            const stamp = Number(utf8.decode(message.subarray(t + 1)));
            samples.add(lastByte - stamp); // arrived with this read
          }
        }
      }
      if (first) {
        reject(new Error("the server closed a receiver while joining"));
      }
    })();
  });
  // Every client is welcomed; then the join notices settle for 500 ms.
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    Promise.all(welcomed),
    new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error("not every receiver was welcomed within 30 s")),
        30_000,
      );
    }),
  ]).finally(() => clearTimeout(timer));
  while (now() - lastByte < 500_000) await sleep(50);
  counts.fill(0);
  const cpu0 = await serverCpu();
  const end = now() + Number(seconds) * 1e6;
  let sent = 0;
  const sender = conns[0];
  while (now() < end) {
    const slowest = Math.min(...counts.slice(1));
    if (sent - slowest >= WINDOW) {
      await sleep(1);
      continue;
    }
    const texts: string[] = [];
    const stamp = `T${Math.round(now())}`; // one write carries them all
    for (let m = 0; m < 32 && sent - slowest < WINDOW; m++, sent++) {
      texts.push(stamp);
    }
    await writeAll(
      sender,
      framingName === "line"
        ? encodeLine(texts.join("\n"))
        : encodeFrames(texts),
    );
  }
  const cpu1 = await serverCpu();
  running = false;
  for (const conn of conns) closeQuietly(conn);
  await Promise.allSettled(reading);
  const delivered = counts.slice(1).reduce((a, b) => a + b, 0);
  return `${sent} ${delivered} ${samples.percentile(0.5)} ${
    samples.percentile(0.99)
  } ${cpuText(cpu0, cpu1)}`;
}

/** Reads one line, a byte at a time: nothing after it may be read here. */
async function readLine(conn: Deno.Conn): Promise<void> {
  const byte = new Uint8Array(1);
  do {
    if (await conn.read(byte) === null) {
      throw new Error("server closed before its greeting");
    }
  } while (byte[0] !== 0x0a);
}

function cpuText(before: number, after: number): string {
  return before < 0 || after < 0 ? "-1" : (after - before).toFixed(2);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main(): Promise<void> {
  const [mode, ...args] = Deno.args;
  const run = mode === "echo" ? echo : mode === "chat" ? chat : null;
  if (run === null || args.length < 5) {
    console.error(
      "usage: loadgen.ts echo HOST PORT CONNS SIZE SECONDS [raw|line|length] [greeting] | chat HOST PORT RECEIVERS SECONDS line|length",
    );
    Deno.exit(2);
  }
  try {
    console.log(await run(args));
  } catch (error) {
    // as the C generator words it; the process exits without waiting for the rest
    console.error(`loadgen: ${error instanceof Error ? error.message : error}`);
    Deno.exit(1);
  }
}

if (import.meta.main) await main();
