/**
 * Test helpers: start the real scripts as child processes, drive them over
 * real sockets, and always clean up (Deno's sanitizers stay on).
 *
 * @module
 */

import { READ_BUFFER_SIZE, writeAll } from "../lib/io.ts";
import { type Decoder } from "../lib/decoder.ts";
import { type FramingName, FRAMINGS } from "../lib/framing.ts";
import { concat, delay, textLineStream } from "../lib/std.ts";
import {
  installed,
  LISTENING,
  rssBytes as processRss,
} from "../tools/server_process.ts";

const ROOT = new URL("../", import.meta.url);

/** Path of a script from the project root, for `deno run`. */
export function scriptPath(script: string): string {
  return new URL(script, ROOT).pathname;
}

/** Collects a child's stream line by line, and lets tests wait for a line. */
export class LineLog {
  readonly lines: string[] = [];
  readonly done: Promise<void>;
  #waiters: (() => void)[] = [];

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      const lines = stream.pipeThrough(new TextDecoderStream()).pipeThrough(
        textLineStream(),
      );
      for await (const line of lines) {
        this.lines.push(line);
        for (const wake of this.#waiters.splice(0)) wake();
      }
      for (const wake of this.#waiters.splice(0)) wake();
    })();
  }

  get text(): string {
    return this.lines.join("\n");
  }

  /** Resolves with the first line matching `pattern`, or throws after `ms`. */
  async waitFor(pattern: RegExp, ms = 10_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    let closed = false;
    this.done.then(() => (closed = true));
    for (;;) {
      for (const line of this.lines) {
        const match = line.match(pattern);
        if (match) return match;
      }
      if (closed) break;
      const left = deadline - Date.now();
      if (left <= 0) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    throw new Error(
      `no line matched ${pattern} within ${ms} ms; got:\n${this.text}`,
    );
  }
}

/** Resolves as `promise` does, or throws `message` after `ms`. */
export async function within<T>(
  promise: Promise<T>,
  ms: number,
  message: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A script running as a child process. */
export class Child implements AsyncDisposable {
  readonly process: Deno.ChildProcess;
  readonly stdout: LineLog;
  readonly stderr: LineLog;
  #status: Promise<Deno.CommandStatus>;
  readonly #pipedStdin: boolean;

  constructor(
    script: string,
    args: string[],
    options: { stdin?: boolean; env?: Record<string, string> } = {},
  ) {
    this.process = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net",
        "--allow-read",
        "--allow-sys",
        "--allow-env",
        scriptPath(script),
        ...args,
      ],
      cwd: new URL(".", ROOT).pathname,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", ...options.env },
    }).spawn();
    this.#pipedStdin = options.stdin ?? false;
    this.stdout = new LineLog(this.process.stdout);
    this.stderr = new LineLog(this.process.stderr);
    this.#status = this.process.status;
  }

  /** Resolves when the process has exited and its output is read. */
  async status(): Promise<Deno.CommandStatus> {
    const status = await this.#status;
    await Promise.all([this.stdout.done, this.stderr.done]);
    return status;
  }

  /** Resolves with the exit status, or throws if it takes longer than `ms`. */
  exited(ms: number): Promise<Deno.CommandStatus> {
    return within(this.status(), ms, `still running after ${ms} ms`);
  }

  /** Sends `signal` if the process still runs. */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    try {
      this.process.kill(signal);
    } catch {
      // already exited
    }
  }

  /** Kills (if needed) and waits for the process and its output. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.kill("SIGKILL");
    if (this.#pipedStdin) await this.process.stdin.close().catch(() => {});
    await this.status();
  }
}

/** A server child with the port it printed. */
export class Server extends Child {
  port = 0;
  host = "";
}

/**
 * Starts `script` with `--port 0` and waits for its `listening on` line.
 */
export async function startServer(
  script: string,
  args: string[] = [],
): Promise<Server> {
  const server = new Server(script, ["--port", "0", ...args]);
  try {
    const match = await server.stdout.waitFor(
      LISTENING,
    );
    server.host = match[1] ?? match[2];
    server.port = Number(match[3]);
  } catch (error) {
    await server[Symbol.asyncDispose]();
    throw new Error(
      `${script} did not start: ${
        (error as Error).message
      }\n${server.stderr.text}`,
    );
  }
  return server;
}

/** What a finished client run printed. */
export interface RunResult {
  /** Exit code. */
  code: number;
  /** Everything written to stdout. */
  stdout: Uint8Array;
  /** Everything written to stderr, as text. */
  stderr: string;
}

/** Runs `script` to completion with `input` piped to its stdin. */
export function runScript(
  script: string,
  args: string[],
  input: Uint8Array | string = "",
): Promise<RunResult> {
  return runCommand(
    Deno.execPath(),
    ["run", "--allow-net", scriptPath(script), ...args],
    input,
  );
}

/** Runs any program to completion with `input` piped to its stdin. */
export async function runCommand(
  command: string,
  args: string[],
  input: Uint8Array | string = "",
): Promise<RunResult> {
  const child = new Deno.Command(command, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(
    typeof input === "string" ? new TextEncoder().encode(input) : input,
  );
  await writer.close();
  const output = await child.output();
  return {
    code: output.code,
    stdout: output.stdout,
    stderr: new TextDecoder().decode(output.stderr),
  };
}

/** Connects to a test server on loopback. */
export function connect(
  port: number,
  hostname = "127.0.0.1",
): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname, port });
}

/** Reads from `conn` until `count` bytes arrived (or end of stream). */
export async function readBytes(
  conn: Deno.Conn,
  count: number,
  ms = 10_000,
): Promise<Uint8Array> {
  const result = new Uint8Array(count);
  let filled = 0;
  const timer = setTimeout(() => conn.close(), ms);
  try {
    while (filled < count) {
      const n = await conn.read(result.subarray(filled));
      if (n === null) break;
      filled += n;
    }
  } finally {
    clearTimeout(timer);
  }
  return result.subarray(0, filled);
}

/** Reads `conn` to its end; returns every byte. */
export async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buffer = new Uint8Array(READ_BUFFER_SIZE);
  for (
    let n = await conn.read(buffer);
    n !== null;
    n = await conn.read(buffer)
  ) {
    parts.push(buffer.slice(0, n));
  }
  return concat(parts);
}

const utf8 = new TextDecoder();

/**
 * A message-oriented view of a test connection: lines by default, or
 * length-prefixed frames.
 */
export class LineConn implements Disposable {
  readonly conn: Deno.Conn;
  readonly #encode: (text: string) => Uint8Array;
  readonly #decoder: Decoder;
  #queue: string[] = []; // messages decoded, not yet handed out from #head on
  #head = 0;
  #buffer = new Uint8Array(READ_BUFFER_SIZE);
  #ended = false;
  #pending: Promise<number | null> | null = null;

  constructor(conn: Deno.Conn, framing: FramingName = "line") {
    this.conn = conn;
    this.#encode = FRAMINGS[framing].encode;
    this.#decoder = FRAMINGS[framing].decoder(Infinity);
  }

  /** Sends `text` as one message (for lines: `text` and a newline). */
  send(text: string): Promise<void> {
    return writeAll(this.conn, this.#encode(text));
  }

  /** The next message, or `null` at end of stream; throws after `ms`. */
  async line(ms = 10_000): Promise<string | null> {
    const deadline = Date.now() + ms;
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    }
    while (this.#queue.length === 0) {
      if (this.#ended) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line within ${ms} ms`);
      // A read that outlives a timeout is kept for the next call: no bytes lost.
      if (this.#pending === null) {
        this.#pending = this.conn.read(this.#buffer);
        // If it is left pending and the connection closes, its rejection
        // is nobody's: the next call (if any) still sees it.
        this.#pending.catch(() => {});
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        this.#pending,
        new Promise<"timeout">((
          resolve,
        ) => (timer = setTimeout(() => resolve("timeout"), left))),
      ]).finally(() => clearTimeout(timer));
      if (n === "timeout") throw new Error(`no line within ${ms} ms`);
      this.#pending = null;
      if (n === null) {
        this.#ended = true;
        const last = this.#decoder.end();
        if (last) this.#queue.push(utf8.decode(last));
        continue;
      }
      for (const l of this.#decoder.push(this.#buffer.subarray(0, n))) {
        this.#queue.push(utf8.decode(l));
      }
    }
    // an index, not shift(): a read may bring thousands of lines
    return this.#queue[this.#head++];
  }

  /** Reads lines until one matches `pattern`; returns it. */
  async until(pattern: RegExp, ms = 10_000): Promise<string> {
    for (;;) {
      const line = await this.line(ms);
      if (line === null) {
        throw new Error(`stream ended before a line matched ${pattern}`);
      }
      if (pattern.test(line)) return line;
    }
  }

  /** Closes the connection (idempotent). */
  [Symbol.dispose](): void {
    try {
      this.conn.close();
    } catch {
      // closed already
    }
  }
}

/** Waits until `check()` is true, polling every 10 ms; throws after `ms`. */
export async function waitUntil(
  check: () => boolean,
  ms = 10_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

/**
 * Resident memory of a process in bytes (see `tools/server_process.ts`).
 * Where it cannot be read, says so and resolves with null: the caller
 * skips its check, with that line printed as the reason.
 */
export async function rssBytes(pid: number): Promise<number | null> {
  const rss = await processRss(pid);
  if (rss === null) {
    console.log(`  memory not measured: ps could not read process ${pid}`);
  }
  return rss;
}

/** Whether `python3` runs here (some tests use it as a foreign client). */
export const HAVE_PYTHON: boolean = await installed("python3", ["--version"]);

// Deno exposes no SO_LINGER, and closing a Deno.Conn with unread data was
// seen to send a FIN, not a reset: a Python client resets for real.
const RESET_CLIENT = `
import socket, struct, sys
for _ in range(int(sys.argv[5])):
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
    if sys.argv[4] == "echo":  # be sure to be accepted: a byte there and back
        s.sendall(b"x")
        s.recv(1)
    if sys.argv[4] == "greeting":
        sys.stdout.write(s.recv(4096).decode("utf-8", "replace"))
    s.sendall(bytes.fromhex(sys.argv[3]))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
`;

/**
 * A client that connects, waits as `first` says (read the server's
 * greeting, echo a byte, or nothing), sends `bytes` and resets the
 * connection (RST, SO_LINGER 0); `times` over. Resolves with the greetings.
 * Needs {@linkcode HAVE_PYTHON}.
 */
export async function resetClient(
  port: number,
  bytes: Uint8Array,
  options: { first?: "greeting" | "echo" | "nothing"; times?: number } = {},
): Promise<string> {
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0"));
  const output = await new Deno.Command("python3", {
    args: [
      "-c",
      RESET_CLIENT,
      "127.0.0.1",
      String(port),
      hex.join(""),
      options.first ?? "greeting",
      String(options.times ?? 1),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`reset client: ${new TextDecoder().decode(output.stderr)}`);
  }
  return new TextDecoder().decode(output.stdout);
}

/**
 * Joins a chat server (threaded or sandbox) and reads the welcome.
 * Resolves with the connection and the name the server gave it.
 */
export async function joinChat(
  server: Server,
  framing: FramingName = "line",
): Promise<[LineConn, string]> {
  const conn = new LineConn(await connect(server.port), framing);
  const welcome = (await conn.line())!;
  const name = welcome.match(/^\* welcome ((?:client|guest)-\d+)/)?.[1];
  if (!name) throw new Error(`unexpected welcome: ${welcome}`);
  return [conn, name];
}

/** Splits `bytes` at the given cut points (any order, duplicates allowed). */
export function cutAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((
    a,
    b,
  ) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    if (point > start) chunks.push(bytes.slice(start, point));
    start = Math.max(start, point);
  }
  return chunks;
}

/** A summary of counted join and leave notices (`lib/notice_budget.ts`). */
export const NOTICE_SUMMARY =
  /^\* (?:(\d+) joined)?(?: and )?(?:(\d+) left)? just now \(too many to announce one by one/;

/**
 * How many joins a chat line tells of: 1 for `* NAME has joined`, N for a
 * summary (`* N joined … just now`), 0 for anything else.
 */
export function joinsTold(line: string): number {
  if (/^\* \S+ has joined$/.test(line)) return 1;
  return Number(line.match(NOTICE_SUMMARY)?.[1] ?? 0);
}

/**
 * Writes `blob` to `conn` again and again until disposed of, counting the
 * bytes the server took; a write that fails ends it (`failed`). It does
 * not close `conn`.
 */
export class Flood implements AsyncDisposable {
  /** Bytes written so far. */
  written = 0;
  /** Whether a write failed (the server cut the connection). */
  failed = false;
  #on = true;
  readonly #done: Promise<void>;

  constructor(readonly conn: Deno.Conn, blob: Uint8Array) {
    this.#done = this.#run(blob);
  }

  async #run(blob: Uint8Array): Promise<void> {
    try {
      while (this.#on) {
        await writeAll(this.conn, blob);
        this.written += blob.length;
      }
    } catch {
      this.failed = true;
    }
  }

  /** `unit` repeated to fill (about) `size` bytes. */
  static blob(unit: Uint8Array, size = 256 * 1024): Uint8Array {
    const blob = new Uint8Array(size - size % unit.length);
    for (let at = 0; at < blob.length; at += unit.length) blob.set(unit, at);
    return blob;
  }

  /** Stops after the write in flight (close `conn` first to stop at once). */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#on = false;
    await this.#done;
  }
}

/**
 * Sends `count` lines from `from` and waits for each at `to` (relayed as
 * `NAME: ping I`); throws for one that takes `limitMs`. Resolves with the
 * round trips in ms.
 */
export async function roundTrips(
  from: LineConn,
  to: LineConn,
  options: { count: number; limitMs: number },
): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < options.count; i++) {
    const start = performance.now();
    await from.send(`ping ${i}`);
    await to.until(new RegExp(`: ping ${i}$`), options.limitMs).catch(() => {
      throw new Error(
        `ping ${i} took over ${options.limitMs} ms; before it: ${
          times.join(" ")
        } ms`,
      );
    });
    times.push(Math.round(performance.now() - start));
  }
  return times;
}
