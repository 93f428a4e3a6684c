/**
 * Test helper: a small LAN on one machine. Two Linux network namespaces,
 * "hosts", joined by a veth pair (a virtual cable):
 *
 *     ns1: 10.200.0.1/24  <── veth ──>  ns2: 10.200.0.2/24
 *
 * each with its own loopback up, plus {@linkcode DROPPING}, an address on
 * that LAN whose packets vanish (connect() hangs until a timeout ends it).
 * Programs run inside a namespace with `ip netns exec`; their traffic
 * stays in the namespaces the test made.
 *
 * Needs Linux, root and `ip` (iproute2); {@linkcode NETNS_UNAVAILABLE}
 * says why not, for a test's `ignore:` and its printed reason.
 *
 * @example
 * ```ts ignore
 * import { HOST1, Lan, NETNS_UNAVAILABLE } from "./_netns.ts";
 * Deno.test({ name: "…", ignore: NETNS_UNAVAILABLE !== null, async fn() {
 *   await using lan = await Lan.create();
 *   await using server = lan.deno(lan.ns1, ["run", "-A", "sandbox/server.ts", "--host", HOST1]);
 *   await server.stdout.waitFor(/listening on/);
 * } });
 * ```
 *
 * @module
 */

import { LineLog } from "./_helpers.ts";

/** ns1's address on the LAN. */
export const HOST1 = "10.200.0.1";
/** ns2's address on the LAN. */
export const HOST2 = "10.200.0.2";
/**
 * An address on the LAN that drops every packet: each namespace knows a
 * link-layer (MAC) address for it that no interface has, so frames to it
 * cross the cable and are discarded by the other side, with no answer and
 * no error. A connect() there hangs until its timeout.
 */
export const DROPPING = "10.200.0.9";
const DROPPING_MAC = "02:00:0a:c8:00:09";
const PREFIX = 24;

const ROOT = new URL("../", import.meta.url).pathname;

/** The result of a command run to its end. */
export interface Output {
  /** Exit code. */
  code: number;
  /** Standard output, as text. */
  stdout: string;
  /** Standard error, as text. */
  stderr: string;
}

/** Runs `ip ARGS` (or any command) to its end. */
async function command(name: string, args: string[]): Promise<Output> {
  const output = await new Deno.Command(name, {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return {
    code: output.code,
    stdout: text.decode(output.stdout),
    stderr: text.decode(output.stderr),
  };
}

/** Runs `ip ARGS`; throws with its stderr if it fails. */
async function ip(args: string[]): Promise<string> {
  const output = await command("ip", args);
  if (output.code !== 0) {
    throw new Error(`ip ${args.join(" ")} failed: ${output.stderr.trim()}`);
  }
  return output.stdout;
}

/** A name no other test uses at the same time: `sp` + 6 hex digits. */
function randomName(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(3));
  return `sp${
    Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")
  }`;
}

/** Why namespaces cannot be made here, found by making and removing one. */
async function probe(): Promise<string | null> {
  if (Deno.build.os !== "linux") {
    return "network namespaces exist on Linux only";
  }
  if (Deno.uid() !== 0) return "making network namespaces needs root";
  try {
    await command("ip", ["-V"]);
  } catch {
    return "`ip` (iproute2) is not installed";
  }
  const name = `${randomName()}probe`;
  try {
    await ip(["netns", "add", name]);
  } catch (error) {
    return `cannot make a network namespace: ${(error as Error).message}`;
  }
  await ip(["netns", "del", name]);
  return null;
}

/**
 * Why the namespace tests cannot run here (not Linux, not root, no `ip`,
 * or the system refuses), or `null` when they can.
 */
export const NETNS_UNAVAILABLE: string | null = await probe();

/** The names of the network namespaces that exist now (`ip netns list`). */
export async function namespaces(): Promise<string[]> {
  return (await ip(["netns", "list"])).split("\n").map((line) =>
    line.split(" ")[0]
  ).filter(Boolean);
}

/** Two namespaces on a veth pair; removed, with what runs in them, on dispose. */
export class Lan implements AsyncDisposable {
  /** The first host: {@linkcode HOST1}. */
  readonly ns1: string;
  /** The second host: {@linkcode HOST2}. */
  readonly ns2: string;
  readonly #children = new Set<NsChild>();

  private constructor(name: string) {
    this.ns1 = `${name}a`;
    this.ns2 = `${name}b`;
  }

  /**
   * Makes the LAN: both namespaces, the cable, the addresses, loopback up,
   * and the {@linkcode DROPPING} address. Half-made, it is removed again.
   */
  static async create(): Promise<Lan> {
    const name = randomName();
    const lan = new Lan(name);
    try {
      await ip(["netns", "add", lan.ns1]);
      await ip(["netns", "add", lan.ns2]);
      // Both ends are made right inside their namespaces: nothing touches
      // the machine's own network.
      await ip([
        "link",
        "add",
        `v${name}a`,
        "netns",
        lan.ns1,
        "type",
        "veth",
        "peer",
        "name",
        `v${name}b`,
        "netns",
        lan.ns2,
      ]);
      for (
        const [ns, device, address] of [
          [lan.ns1, `v${name}a`, HOST1],
          [lan.ns2, `v${name}b`, HOST2],
        ]
      ) {
        await ip(["-n", ns, "link", "set", "lo", "up"]);
        await ip([
          "-n",
          ns,
          "addr",
          "add",
          `${address}/${PREFIX}`,
          "dev",
          device,
        ]);
        await ip(["-n", ns, "link", "set", device, "up"]);
        await ip([
          "-n",
          ns,
          "neigh",
          "add",
          DROPPING,
          "lladdr",
          DROPPING_MAC,
          "dev",
          device,
          "nud",
          "permanent",
        ]);
      }
    } catch (error) {
      await lan[Symbol.asyncDispose]();
      throw error;
    }
    return lan;
  }

  /** Runs `command ARGS` inside `ns` to its end, with `input` on stdin. */
  async run(
    ns: string,
    args: string[],
    input = "",
  ): Promise<Output> {
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", ns, ...args],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(input));
    await writer.close();
    const output = await child.output();
    const text = new TextDecoder();
    return {
      code: output.code,
      stdout: text.decode(output.stdout),
      stderr: text.decode(output.stderr),
    };
  }

  /**
   * Starts `deno ARGS` inside `ns` (in the project root, `NO_COLOR` set),
   * e.g. `["run", "--allow-net", "sandbox/client.ts", "--host", HOST1]`.
   * It is killed when the LAN is disposed, if not before.
   */
  deno(
    ns: string,
    args: string[],
    options: { stdin?: boolean; env?: Record<string, string> } = {},
  ): NsChild {
    const child = new NsChild(ns, [Deno.execPath(), ...args], options);
    this.#children.add(child);
    return child;
  }

  /** Sets a sysctl in `ns` only, e.g. `net.ipv4.tcp_migrate_req` to `1`. */
  async sysctl(ns: string, key: string, value: string | number): Promise<void> {
    const output = await this.run(ns, ["sysctl", "-w", `${key}=${value}`]);
    if (output.code !== 0) {
      throw new Error(
        `sysctl ${key}=${value} in ${ns}: ${output.stderr.trim()}`,
      );
    }
  }

  /** Reads a sysctl in `ns`. */
  async readSysctl(ns: string, key: string): Promise<string> {
    const output = await this.run(ns, ["sysctl", "-n", key]);
    if (output.code !== 0) {
      throw new Error(`sysctl ${key} in ${ns}: ${output.stderr.trim()}`);
    }
    return output.stdout.trim();
  }

  /** Kills what runs in the namespaces, then removes them (and the cable). */
  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all([...this.#children].map((c) => c[Symbol.asyncDispose]()));
    const existing = await namespaces();
    for (const ns of [this.ns1, this.ns2]) {
      if (existing.includes(ns)) await ip(["netns", "del", ns]);
    }
  }
}

/** A program running inside a namespace. */
export class NsChild implements AsyncDisposable {
  /** The process (`ip netns exec` runs the program in its own place). */
  readonly process: Deno.ChildProcess;
  /** Its standard output, line by line. */
  readonly stdout: LineLog;
  /** Its standard error, line by line. */
  readonly stderr: LineLog;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array> | null;

  constructor(
    ns: string,
    argv: string[],
    options: { stdin?: boolean; env?: Record<string, string> },
  ) {
    this.process = new Deno.Command("ip", {
      args: ["netns", "exec", ns, ...argv],
      cwd: ROOT,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", ...options.env },
    }).spawn();
    this.#stdin = options.stdin ? this.process.stdin.getWriter() : null;
    this.stdout = new LineLog(this.process.stdout);
    this.stderr = new LineLog(this.process.stderr);
  }

  /** Writes `text` to its stdin. */
  async write(text: string): Promise<void> {
    await this.#stdin!.write(new TextEncoder().encode(text));
  }

  /** Closes its stdin (end of input). */
  async closeStdin(): Promise<void> {
    await this.#stdin?.close().catch(() => {});
  }

  /** Its exit status, once it and its output are done; throws after `ms`. */
  async exited(ms = 15_000): Promise<Deno.CommandStatus> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        (async () => {
          const status = await this.process.status;
          await Promise.all([this.stdout.done, this.stderr.done]);
          return status;
        })(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`still running after ${ms} ms`)),
            ms,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills it if it still runs, and waits for it. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.process.kill("SIGKILL");
    } catch {
      // exited already
    }
    await this.closeStdin();
    await this.process.status;
    await Promise.all([this.stdout.done, this.stderr.done]);
  }
}
