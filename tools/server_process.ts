/**
 * A project server run as a child process by the tools (soak, capacity,
 * bench): started on a free port, its port read from the `listening on`
 * line, its memory read with `ps`, stopped with SIGTERM.
 *
 * @example
 * ```ts ignore
 * import { spawnServer } from "./server_process.ts";
 * await using server = await spawnServer("sandbox/server.ts", []);
 * console.log(server.port, await server.rss());
 * ```
 *
 * @module
 */

import { textLineStream } from "../lib/std.ts";

/**
 * Whether `command` is installed here: it starts (`args` should be a
 * harmless call such as `--version`; its exit status does not count, as
 * some tools exit non-zero for `-h`).
 *
 * @example
 * ```ts ignore
 * import { installed } from "./server_process.ts";
 * await installed("cc", ["--version"]); // true where a C compiler is
 * ```
 */
export async function installed(
  command: string,
  args: string[],
): Promise<boolean> {
  try {
    await new Deno.Command(command, { args, stdout: "null", stderr: "null" })
      .output();
    return true;
  } catch {
    return false;
  }
}

/** The chat servers the soak and capacity tools (and the bench) can start. */
export type ChatServerKind = "threaded" | "portable" | "sandbox";

/** `--server` and `--workers`, as the soak and capacity tools take them. */
export const CHAT_SERVER_FLAGS = {
  server: {
    type: "string",
    description: "the server under test",
    choices: ["threaded", "portable", "sandbox"],
    default: "threaded",
    placeholder: "threaded|portable|sandbox",
  },
  workers: {
    type: "integer",
    description: "worker threads of the threaded server",
    default: 2,
    min: 1,
  },
} as const;

/**
 * The script and arguments that start a chat server of `kind` (the
 * threaded one with `workers` workers and no periodic stats).
 *
 * @example
 * ```ts
 * import { chatServer } from "./server_process.ts";
 * chatServer("sandbox", 2); // ["sandbox/server.ts", []]
 * ```
 */
export function chatServer(
  kind: string,
  workers: number,
): [script: string, args: string[]] {
  if (kind === "sandbox") return ["sandbox/server.ts", []];
  return [
    "multiclientsusingthreading/server.ts",
    [
      "--workers",
      String(workers),
      "--stats-interval",
      "0",
      ...(kind === "portable" ? ["--portable"] : []),
    ],
  ];
}

/**
 * Bytes as MiB with one decimal, or null for null.
 *
 * @example
 * ```ts
 * import { mib } from "./server_process.ts";
 * mib(3 * 2 ** 20); // 3
 * ```
 */
export function mib(bytes: number | null): number | null {
  return bytes === null ? null : Math.round(bytes / 2 ** 20 * 10) / 10;
}

/** The line every server prints once it listens (see `lib/net.ts`). */
export const LISTENING = /listening on (?:\[([^\]]+)\]|([^\s:]+)):(\d+)\b/;

/**
 * Resident memory of a process in bytes, read with `ps` (Deno asks for
 * --allow-all to read another process's /proc files); null where `ps`
 * cannot tell.
 *
 * @example
 * ```ts ignore
 * import { rssBytes } from "./server_process.ts";
 * await rssBytes(Deno.pid); // e.g. 41943040
 * ```
 */
export async function rssBytes(pid: number): Promise<number | null> {
  try {
    const output = await new Deno.Command("ps", {
      args: ["-o", "rss=", "-p", String(pid)],
      stdout: "piped",
      stderr: "null",
    }).output();
    const kib = Number(new TextDecoder().decode(output.stdout).trim());
    return output.success && kib > 0 ? kib * 1024 : null;
  } catch {
    return null; // no ps here
  }
}

/** A running server. */
export interface ServerProcess extends AsyncDisposable {
  /** The port it listens on. */
  readonly port: number;
  /** Its process id. */
  readonly pid: number;
  /** The last lines it printed (stdout and stderr), at most 200. */
  readonly lines: string[];
  /** How many lines it printed that match {@linkcode SpawnOptions.count}, all told. */
  readonly counted: number;
  /** Its resident memory in bytes, or null where it cannot be read. */
  rss(): Promise<number | null>;
  /** SIGTERM, then its exit code (SIGKILL after `ms`). */
  stop(ms?: number): Promise<number>;
}

/** Options of {@linkcode spawnServer}. */
export interface SpawnOptions {
  /** Permission flags for `deno run` (default: net and read). */
  permissions?: string[];
  /** Milliseconds to wait for `listening on` (default 10,000). */
  timeoutMs?: number;
  /** More environment variables for the process. */
  env?: Record<string, string>;
  /** Lines to count however many it prints (see `ServerProcess.counted`). */
  count?: RegExp;
}

/**
 * Starts `script` (a path from the project root) with `--port 0` and
 * `args`; resolves once it listens.
 *
 * @example
 * ```ts ignore
 * import { spawnServer } from "./server_process.ts";
 * const server = await spawnServer("multiclientsusingthreading/server.ts", ["--workers", "4"]);
 * await server.stop();
 * ```
 */
export function spawnServer(
  script: string,
  args: string[],
  options: SpawnOptions = {},
): Promise<ServerProcess> {
  return spawnProcess(Deno.execPath(), [
    "run",
    ...(options.permissions ?? ["--allow-net", "--allow-read"]),
    new URL(`../${script}`, import.meta.url).pathname,
    "--port",
    "0",
    ...args,
  ], options);
}

/**
 * Starts any server program (`command` and `args`): resolves once it prints
 * a `listening on HOST:PORT` line or, given `port`, once that port accepts
 * a connection (for programs that print nothing, like `ncat`).
 *
 * @example
 * ```ts ignore
 * import { spawnProcess } from "./server_process.ts";
 * const node = await spawnProcess("node", ["bench/node_echo.mjs"]);
 * await node.stop();
 * ```
 */
export async function spawnProcess(
  command: string,
  args: string[],
  options: SpawnOptions & { port?: number } = {},
): Promise<ServerProcess> {
  const child = new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
  }).spawn();
  const lines: string[] = [];
  let counted = 0;
  let port = 0;
  let listening: (() => void) | undefined;
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const text = stream.pipeThrough(new TextDecoderStream()).pipeThrough(
      textLineStream(),
    );
    for await (const line of text) {
      if (lines.push(line) > 200) lines.shift();
      if (options.count?.test(line)) counted++;
      const match = port === 0 ? line.match(LISTENING) : null;
      if (match) {
        port = Number(match[3]);
        listening?.();
      }
    }
  };
  const output = Promise.all([collect(child.stdout), collect(child.stderr)]);
  const status = child.status;
  if (options.port !== undefined) void poll(options.port);
  async function poll(at: number): Promise<void> {
    for (let i = 0; i < 200 && port === 0; i++) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: at })).close();
        port = at;
        listening?.();
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const started = await Promise.race([
    new Promise<boolean>((resolve) => (listening = () => resolve(true))),
    status.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), options.timeoutMs ?? 10_000);
    }),
  ]);
  clearTimeout(timer);

  const stop = async (ms = 5_000): Promise<number> => {
    const kill = (signal: Deno.Signal) => {
      try {
        child.kill(signal);
      } catch {
        // exited already
      }
    };
    kill("SIGTERM");
    const forced = setTimeout(() => kill("SIGKILL"), ms);
    const { code } = await status;
    clearTimeout(forced);
    await output;
    return code;
  };
  if (!started) {
    await stop(0);
    throw new Error(
      `${command} ${args.join(" ")} did not start:\n${lines.join("\n")}`,
    );
  }
  return {
    port,
    pid: child.pid,
    lines,
    get counted() {
      return counted;
    },
    rss: () => rssBytes(child.pid),
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop();
    },
  };
}
