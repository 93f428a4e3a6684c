/**
 * `deno task bench`: our servers beside C, Node, Python and ncat, in one run,
 * on this machine, over loopback. docs/benchmark.md has the method and the
 * latest tables.
 *
 *   deno task bench                  # full matrix, 3 s a cell, 3 repeats
 *   deno task bench --quick          # under a minute (CI's smoke test)
 *   deno task bench --json           # for machines
 *   deno task bench --workers 1,2,4,8   # relay and echo by worker count
 *   deno task bench --tls-only       # only the TLS tables
 *
 * The load generator is bench/loadgen.c (one thread, epoll), compiled here
 * with `cc`, as are the physical anchors: bench/c_echo.c for the echo rows
 * and bench/c_relay.c for the chat relay rows. Without `cc`, the generator
 * is bench/loadgen.ts (slower: the tables say so) and there are no C rows.
 * Rows whose program is missing (node, python3, ncat) are skipped with the
 * reason printed. Each cell is repeated, the servers taking turns in every
 * round (so drift on a shared machine shifts them all alike); the median is
 * reported, and each row also as ratios to the C and Node rows measured in
 * this same run.
 *
 * The TLS tables put our echo loop and chat servers over TLS beside the
 * same servers without it and beside Node's `tls`, all driven by the one C
 * generator (built with OpenSSL; without its headers the TLS tables are
 * skipped with the reason printed). The bench makes one test certificate
 * per run, in its temporary folder (bench/make_certificate.ts).
 *
 * @module
 */

import { parseCliOrExit } from "../lib/cli.ts";
import {
  chatServer,
  installed,
  type ServerProcess,
  spawnProcess,
  spawnServer,
} from "../tools/server_process.ts";

const FLAGS = {
  quick: { type: "boolean", description: "a run under a minute" },
  json: { type: "boolean", description: "print JSON instead of Markdown" },
  seconds: {
    type: "number",
    description: "seconds per cell (default: 3, or 0.5 with --quick)",
    placeholder: "SECONDS",
    min: 0.1,
  },
  repeat: {
    type: "integer",
    description:
      "runs per cell, median reported (default: 3, or 1 with --quick)",
    min: 1,
  },
  workers: {
    type: "string",
    description: "worker counts for the scaling rows (relay and echo)",
    default: "1,2",
    placeholder: "LIST",
  },
  tlsOnly: {
    type: "boolean",
    description: "only the TLS tables (each TLS row beside its plain one)",
  },
  wireCost: {
    type: "boolean",
    description: "only the cost of the --wire view when off: the sandbox " +
      "relay as shipped beside a copy with the view stripped out",
  },
} as const;

const ROOT = new URL("../", import.meta.url).pathname;

/** One measured cell. */
interface Cell {
  /** Round trips/s (echo) or delivered messages/s (chat). */
  rate: number;
  /** MB/s both ways (echo). */
  mbps?: number;
  p50us: number;
  p99us: number;
  /** Server CPU: percent of one core. */
  cpu: number | null;
  /** Server CPU seconds in the measured phase (clock ticks of 10 ms). */
  cpuSeconds: number | null;
  /** Why it has no figures. */
  failed?: string;
}

/** A row: one server across the columns. */
interface Row {
  server: string;
  cells: Record<string, Cell | null>;
}

/** A table of rows, one column per cell label. */
interface Table {
  title: string;
  /** What the rate counts, e.g. `thousand round trips/s`. */
  unit: string;
  columns: string[];
  rows: Row[];
  /**
   * The rows the ratios are taken against: the physical anchor (C) first,
   * then the everyday baseline (Node).
   */
  baselines: string[];
  /**
   * Also show the rate per second of server CPU (and its ratios): on a
   * machine where the load generator and the server share the cores, the
   * rate is partly the generator's limit, while this is the server's cost.
   */
  perCpu?: boolean;
  /**
   * TLS tables: each TLS row's name → the name of the same server's row
   * without TLS. The ratios are then shown for the TLS rows only: × plain
   * (over that row) and × the baseline.
   */
  plainOf?: Record<string, string>;
  notes: string[];
}

/** Options of {@linkcode compileC}. */
export interface CompileOptions {
  /** Macros to define (`-D`), e.g. `LOADGEN_TLS`. */
  defines?: string[];
  /** Libraries to link (`-l`), e.g. `ssl`. */
  libraries?: string[];
}

/**
 * Compiles bench/`name`.c with `cc -O2` into `dir`: the binary's path, or
 * null where there is no `cc`. Throws with the compiler's message if it
 * does not build.
 *
 * @example
 * ```ts ignore
 * import { compileC } from "./run.ts";
 * const relay = await compileC(await Deno.makeTempDir(), "c_relay");
 * ```
 */
export async function compileC(
  dir: string,
  name: string,
  options: CompileOptions = {},
): Promise<string | null> {
  if (!await installed("cc", ["--version"])) return null;
  const out = `${dir}/${name}`;
  const result = await new Deno.Command("cc", {
    args: [
      "-O2",
      ...options.defines?.map((d) => `-D${d}`) ?? [],
      "-o",
      out,
      `${ROOT}bench/${name}.c`,
      ...options.libraries?.map((l) => `-l${l}`) ?? [],
    ],
    stderr: "piped",
  }).output();
  if (!result.success) {
    throw new Error(
      `bench/${name}.c did not compile: ${
        new TextDecoder().decode(result.stderr).trim()
      }`,
    );
  }
  return out;
}

/** The load generators, as command lines. */
export interface LoadGenerators {
  /** bench/loadgen.c built with `cc`, or null where there is no `cc`. */
  c: string[] | null;
  /** bench/loadgen.ts: runs anywhere Deno does. */
  deno: string[];
  /**
   * Why the C generator speaks no TLS (no `cc`, or no OpenSSL to build
   * with); undefined where it does (`c` then takes `--tls CAFILE`).
   */
  noTls?: string;
}

/**
 * The load generators: the C one, built with `cc` and OpenSSL where its
 * headers are (else without TLS, `noTls` saying why), and the Deno one.
 *
 * @example
 * ```ts ignore
 * import { loadGenerators } from "./run.ts";
 * const { c, deno, noTls } = await loadGenerators(await Deno.makeTempDir());
 * ```
 */
export async function loadGenerators(dir: string): Promise<LoadGenerators> {
  let built: string | null;
  let noTls: string | undefined;
  try {
    built = await compileC(dir, "loadgen", {
      defines: ["LOADGEN_TLS"],
      libraries: ["ssl", "crypto"],
    });
    if (built === null) noTls = "no `cc` here to build bench/loadgen.c";
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    if (!/openssl|-lssl|-lcrypto/i.test(text)) throw error;
    built = await compileC(dir, "loadgen");
    const line = text.split("\n").find((l) =>
      /openssl|-lssl|-lcrypto/i.test(l)
    );
    noTls = "bench/loadgen.c did not build with OpenSSL (apt install " +
      `libssl-dev): ${line?.match(/error: (.*)$/)?.[1] ?? line ?? text}`;
  }
  return {
    c: built ? [built] : null,
    deno: [
      Deno.execPath(),
      "run",
      "--allow-net=127.0.0.1",
      "--allow-run=cat",
      "--allow-env=SERVER_PID",
      `${ROOT}bench/loadgen.ts`,
    ],
    noTls,
  };
}

/** The bench's test certificate: PEM files a server serves and a client trusts. */
export interface CertificateFiles {
  /** The certificate (a self-signed leaf for 127.0.0.1 among others). */
  cert: string;
  /** Its private key. */
  key: string;
}

/**
 * Makes a test certificate in `dir` (lib/certificate.ts's, by
 * bench/make_certificate.ts in a child process, which may list this
 * machine's names and addresses); throws with its message if it cannot.
 *
 * @example
 * ```ts ignore
 * import { benchCertificate } from "./run.ts";
 * const { cert, key } = await benchCertificate(await Deno.makeTempDir());
 * ```
 */
export async function benchCertificate(dir: string): Promise<CertificateFiles> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--allow-read=${dir}`,
      `--allow-write=${dir}`,
      "--allow-sys=hostname,networkInterfaces",
      `${ROOT}bench/make_certificate.ts`,
      dir,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `bench/make_certificate.ts failed: ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** The generator's command line for a row: with `--tls CAFILE` for a TLS one. */
function generatorFor(loadgen: string[], row: { tls?: string }): string[] {
  return row.tls ? [...loadgen, "--tls", row.tls] : loadgen;
}

/** Runs the load generator (its command line, then `args`) against `server`; one cell. */
async function measure(
  loadgen: string[],
  server: ServerProcess,
  args: string[],
  seconds: number,
): Promise<Cell> {
  const out = await new Deno.Command(loadgen[0], {
    args: [...loadgen.slice(1), ...args],
    // the generator reads the server's CPU time around its measured phase
    env: { SERVER_PID: String(server.pid) },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  const [a, b, p50, p99, cpuSeconds] = text.split(/\s+/).map(Number);
  if (!out.success || !Number.isFinite(a)) {
    const why = new TextDecoder().decode(out.stderr).trim() ||
      `exit ${out.code}`;
    return {
      rate: 0,
      p50us: 0,
      p99us: 0,
      cpu: null,
      cpuSeconds: null,
      failed: why,
    };
  }
  const used = cpuSeconds >= 0 ? cpuSeconds : null;
  const cpu = used !== null ? Math.round(used / seconds * 100) : null;
  return args[0] === "echo"
    ? {
      rate: a / seconds,
      mbps: b / seconds / 1e6,
      p50us: p50,
      p99us: p99,
      cpu,
      cpuSeconds: used,
    }
    : { rate: b / seconds, p50us: p50, p99us: p99, cpu, cpuSeconds: used };
}

/**
 * Each run `repeat` times, interleaved: every round measures each in turn,
 * so a machine whose speed drifts during the bench (other tenants, heat)
 * shifts them all alike and the ratios stay fair. Returns each one's cell
 * with the median rate, or its first failure.
 */
async function interleaved(
  repeat: number,
  runs: (() => Promise<Cell>)[],
): Promise<Cell[]> {
  const samples: Cell[][] = runs.map(() => []);
  const failures: (Cell | undefined)[] = runs.map(() => undefined);
  for (let round = 0; round < repeat; round++) {
    for (const [i, run] of runs.entries()) {
      if (failures[i]) continue;
      const cell = await run();
      if (cell.failed) failures[i] = cell;
      else samples[i].push(cell);
    }
  }
  return samples.map((cells, i) => {
    if (failures[i]) return failures[i];
    cells.sort((x, y) => x.rate - y.rate);
    return cells[Math.floor(cells.length / 2)];
  });
}

/** Starts a row's server program; resolves once it listens. */
export type Starter = () => Promise<ServerProcess>;

function deno(script: string, args: string[] = []): Starter {
  return () => spawnServer(script, args);
}

/** The baseline programs found here; null or false where one is missing. */
export interface Programs {
  /** bench/c_echo.c, built: the echo's physical anchor. */
  cEcho: string | null;
  /** bench/c_relay.c, built: the relay's physical anchor. */
  cRelay: string | null;
  /** `node` runs here. */
  node: boolean;
  /** `python3` runs here. */
  python: boolean;
  /** `ncat` runs here. */
  ncat: boolean;
}

/** An echo row: a server and how the generator talks to it. */
interface EchoRow {
  name: string;
  start: Starter;
  framing: "raw" | "line" | "length";
  /** It sends a greeting line first (the iterative server). */
  greeting: boolean;
  /** It serves one connection at a time: one-connection cells only. */
  single: boolean;
  /** It speaks TLS: the certificate file the generator trusts. */
  tls?: string;
}

/** A chat relay row: a server and the framing it speaks. */
export interface RelayRow {
  /** The row's name in the tables. */
  name: string;
  /** Starts the server on a free port. */
  start: Starter;
  /** What the generator's chat mode speaks to it. */
  framing: "line" | "length";
  /** It speaks TLS: the certificate file the generator trusts. */
  tls?: string;
}

/** The echo anchor's and the relay anchor's row names. */
const C_ECHO = "C epoll";
const C_RELAY = "C epoll relay";
const NODE_ECHO = "Node net";
const NODE_RELAY = "Node net relay";
const NODE_TLS_ECHO = "Node tls";
const NODE_TLS_RELAY = "Node tls relay";

/** `--tls --cert FILE --key FILE`, as our servers and the Node ones take them. */
function tlsArgs(files: CertificateFiles): string[] {
  return ["--tls", "--cert", files.cert, "--key", files.key];
}

/**
 * The TLS echo rows, each after the same server without TLS: our basic/
 * loop (bench/deno_echo.ts) and, where `node` is, Node's `net` and `tls`.
 */
function tlsEchoRows(programs: Programs, files: CertificateFiles): EchoRow[] {
  const raw = { framing: "raw", greeting: false, single: false } as const;
  const node = (args: string[]): Starter => () =>
    spawnProcess("node", [`${ROOT}bench/node_echo.mjs`, ...args]);
  return [
    { name: "Deno basic/ loop", start: deno("bench/deno_echo.ts"), ...raw },
    {
      name: "Deno basic/ loop TLS",
      start: deno("bench/deno_echo.ts", tlsArgs(files)),
      tls: files.cert,
      ...raw,
    },
    ...(programs.node
      ? [
        { name: NODE_ECHO, start: node([]), ...raw },
        {
          name: NODE_TLS_ECHO,
          start: node(tlsArgs(files)),
          tls: files.cert,
          ...raw,
        },
      ]
      : []),
  ];
}

/**
 * The TLS relay rows, each after the same server without TLS: the sandbox
 * server (line framing), the threaded server (2 workers, reuse-port) and,
 * where `node` is, the Node relay over `net` and over `tls`.
 *
 * @example
 * ```ts ignore
 * import { tlsRelayRows } from "./run.ts";
 * const rows = tlsRelayRows(programs, { cert: "/tmp/c.pem", key: "/tmp/k.pem" });
 * rows.map((row) => row.name); // ["Deno sandbox/ line", "Deno sandbox/ line TLS", …]
 * ```
 */
export function tlsRelayRows(
  programs: Programs,
  files: CertificateFiles,
): RelayRow[] {
  const [threaded, threadedArgs] = chatServer("threaded", 2);
  const node = (args: string[]): Starter => () =>
    spawnProcess("node", [`${ROOT}bench/node_chat.mjs`, ...args]);
  return [
    {
      name: "Deno sandbox/ line",
      start: deno("sandbox/server.ts"),
      framing: "line",
    },
    {
      name: "Deno sandbox/ line TLS",
      start: deno("sandbox/server.ts", tlsArgs(files)),
      framing: "line",
      tls: files.cert,
    },
    {
      name: "Deno threaded (reuse-port)",
      start: deno(threaded, threadedArgs),
      framing: "line",
    },
    {
      name: "Deno threaded (reuse-port) TLS",
      start: deno(threaded, [...threadedArgs, ...tlsArgs(files)]),
      framing: "line",
      tls: files.cert,
    },
    ...(programs.node
      ? [
        { name: NODE_RELAY, start: node([]), framing: "line" } as const,
        {
          name: NODE_TLS_RELAY,
          start: node(tlsArgs(files)),
          framing: "line",
          tls: files.cert,
        } as const,
      ]
      : []),
  ];
}

/** Each TLS row's name → the name of the row before it (its plain twin). */
function plainTwins(rows: { name: string; tls?: string }[]): Record<
  string,
  string
> {
  return Object.fromEntries(
    rows.flatMap((row, i) => row.tls ? [[row.name, rows[i - 1].name]] : []),
  );
}

/** The echo rows whose program is here. */
function echoRows(programs: Programs): EchoRow[] {
  const raw = { framing: "raw", greeting: false, single: false } as const;
  const rows: (EchoRow | null)[] = [
    programs.cEcho
      ? {
        name: C_ECHO,
        start: () => spawnProcess(programs.cEcho!, ["0"]),
        ...raw,
      }
      : null,
    { name: "Deno basic/ loop", start: deno("bench/deno_echo.ts"), ...raw },
    {
      ...raw,
      name: "Deno line (lib/)",
      start: deno("bench/deno_echo.ts", ["--framing", "line"]),
      framing: "line",
    },
    {
      ...raw,
      name: "Deno length (lib/)",
      start: deno("bench/deno_echo.ts", ["--framing", "length"]),
      framing: "length",
    },
    {
      name: "Deno multiclients/",
      start: deno("multiclients/server.ts", [
        "--idle-timeout",
        "0",
        "--max-line",
        "1048576",
      ]),
      framing: "line",
      greeting: true,
      single: true,
    },
    programs.node
      ? {
        name: NODE_ECHO,
        start: () => spawnProcess("node", [`${ROOT}bench/node_echo.mjs`]),
        ...raw,
      }
      : null,
    programs.python
      ? {
        name: "Python asyncio",
        start: () => spawnProcess("python3", [`${ROOT}bench/python_echo.py`]),
        ...raw,
      }
      : null,
  ];
  return rows.filter((row) => row !== null);
}

/**
 * The chat relay rows whose program is here: the C epoll relay (the
 * physical anchor), our threaded server (2 workers, reuse-port and
 * portable), the sandbox server in both framings, the Node relay and
 * `ncat --chat`.
 *
 * @example
 * ```ts ignore
 * import { relayRows } from "./run.ts";
 * const rows = relayRows({ cEcho: null, cRelay: "/tmp/c_relay", node: true, python: true, ncat: false });
 * rows.map((row) => row.name); // ["C epoll relay", "Deno threaded (reuse-port)", …]
 * ```
 */
export function relayRows(programs: Programs): RelayRow[] {
  const rows: (RelayRow | null)[] = [
    programs.cRelay
      ? {
        name: C_RELAY,
        start: () => spawnProcess(programs.cRelay!, ["0"]),
        framing: "line",
      }
      : null,
    {
      name: "Deno threaded (reuse-port)",
      start: deno(...chatServer("threaded", 2)),
      framing: "line",
    },
    {
      name: "Deno threaded (portable)",
      start: deno(...chatServer("portable", 2)),
      framing: "line",
    },
    {
      name: "Deno sandbox/ line",
      start: deno("sandbox/server.ts"),
      framing: "line",
    },
    {
      name: "Deno sandbox/ length",
      start: deno("sandbox/server.ts", ["--framing", "length"]),
      framing: "length",
    },
    programs.node
      ? {
        name: NODE_RELAY,
        start: () => spawnProcess("node", [`${ROOT}bench/node_chat.mjs`]),
        framing: "line",
      }
      : null,
    programs.ncat
      ? {
        name: "ncat --chat",
        start: () => {
          const port = freePort();
          return spawnProcess("ncat", [
            "--chat",
            "-l",
            "127.0.0.1",
            String(port),
          ], {
            port,
          });
        },
        framing: "line",
      }
      : null,
  ];
  return rows.filter((row) => row !== null);
}

/**
 * Starts every row's server at once; each is stopped when `running` is
 * disposed (those that started, if one did not).
 */
async function startAll(
  running: AsyncDisposableStack,
  rows: { start: Starter }[],
): Promise<ServerProcess[]> {
  const started = await Promise.allSettled(rows.map(({ start }) => start()));
  const servers: ServerProcess[] = [];
  for (const result of started) {
    if (result.status === "fulfilled") servers.push(running.use(result.value));
  }
  const failed = started.find((result) => result.status === "rejected");
  if (failed) throw failed.reason;
  return servers;
}

/** An echo cell: message size × connections, and its column label. */
interface EchoCell {
  label: string;
  size: number;
  n: number;
}

function echoCell(size: number, n: number): EchoCell {
  const bytes = size >= 1024 ? `${size / 1024}KiB` : `${size}B`;
  return { label: `${bytes}×${n}`, size, n };
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** `uname -srm`, or the OS and architecture Deno reports. */
async function uname(): Promise<string> {
  const out = await new Deno.Command("uname", {
    args: ["-srm"],
    stdout: "piped",
  })
    .output().catch(() => null);
  const text = out?.success ? new TextDecoder().decode(out.stdout).trim() : "";
  return text || `${Deno.build.os} ${Deno.build.arch}`;
}

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "bench/run.ts",
    summary:
      "benchmark: our servers beside C, Node, Python and ncat, over loopback.",
    role: "tool",
    defaultPort: 0,
    flags: FLAGS,
    example: "--quick",
  });
  const quick = options.quick;
  const seconds = options.seconds ?? (quick ? 0.5 : 3);
  const repeat = options.repeat ?? (quick ? 1 : 3);
  const say = (line: string) => {
    if (!options.json) console.error(line);
  };

  const notes: string[] = [];
  const dir = await Deno.makeTempDir({ prefix: "socket-bench-" });
  try {
    const generators = await loadGenerators(dir);
    const loadgen = generators.c ?? generators.deno;
    if (!generators.c) {
      notes.push(
        "no `cc` here (apt install gcc): the load generator was bench/loadgen.ts, slower than the C one, so fast servers are measured at its limit; there are no C rows and no × C ratios",
      );
    }
    const programs: Programs = {
      cEcho: generators.c ? await compileC(dir, "c_echo") : null,
      cRelay: generators.c ? await compileC(dir, "c_relay") : null,
      node: await installed("node", ["--version"]),
      python: await installed("python3", ["--version"]),
      ncat: await installed("ncat", ["--version"]),
    };
    if (!programs.node) {
      notes.push("skipped the Node rows: `node` is not installed");
    }
    if (!programs.python && !options.tlsOnly) {
      notes.push("skipped the Python row: `python3` is not installed");
    }
    if (!programs.ncat && !options.tlsOnly) {
      notes.push(
        "skipped `ncat --chat`: `ncat` is not installed (Debian package ncat)",
      );
    }

    // ---- echo: round trips per second
    const sizes = quick ? [64, 16384] : [64, 1024, 16384];
    const conns = quick ? [1, 100] : [1, 10, 100];
    const grid = sizes.flatMap((size) => conns.map((n) => echoCell(size, n)));
    const echo: Table = {
      title: "Echo, ping-pong",
      unit: "thousand round trips/s",
      columns: grid.map((cell) => cell.label),
      rows: [],
      baselines: [C_ECHO, NODE_ECHO],
      notes: [
        "Columns: message size × connections. multiclients/ serves one client at a time by design: one-connection cells only.",
      ],
    };
    /**
     * Fills `table`: a row per server, a cell per size and connection count.
     * Every server runs from the start, idle but for its turn.
     */
    const echoes = async (table: Table, rows: EchoRow[], grid: EchoCell[]) => {
      await using running = new AsyncDisposableStack();
      const serving = [];
      for (const row of rows) {
        say(`echo: starting ${row.name}`);
        const server = running.use(await row.start());
        const tableRow: Row = { server: row.name, cells: {} };
        table.rows.push(tableRow);
        serving.push({ ...row, row: tableRow, server });
      }
      for (const { label, size, n } of grid) {
        say(`echo: ${label}`);
        const now = serving.filter((e) => !(e.single && n > 1));
        const cells = await interleaved(
          repeat,
          now.map(({ server, framing, greeting, tls }) => () =>
            measure(generatorFor(loadgen, { tls }), server, [
              "echo",
              "127.0.0.1",
              String(server.port),
              String(n),
              String(size),
              String(seconds),
              framing,
              greeting ? "greeting" : "none",
            ], seconds)
          ),
        );
        for (const e of serving) {
          const at = now.indexOf(e);
          e.row.cells[label] = at === -1 ? null : cells[at];
        }
      }
    }; // stopped before the next table starts its servers
    if (!options.tlsOnly && !options.wireCost) {
      await echoes(echo, echoRows(programs), grid);
    }

    // ---- chat relay: one sender, N receivers, delivered messages per second
    const receivers = quick ? [10, 100] : [10, 100, 1000];
    const chat: Table = {
      title: "Chat relay, one sender to N receivers",
      unit: "thousand delivered messages/s",
      columns: receivers.map((n) => `${n} recv`),
      rows: [],
      baselines: [C_RELAY, NODE_RELAY],
      perCpu: true,
      notes: [
        "The threaded server runs 2 workers. The length row speaks 4-byte length prefixes; the others lines.",
      ],
    };
    /** Fills `table`: a row per server, a cell per receiver count. */
    const relay = async (table: Table, rows: RelayRow[], counts: number[]) => {
      const tableRows = rows.map(({ name }): Row => ({
        server: name,
        cells: {},
      }));
      table.rows.push(...tableRows);
      for (const [c, n] of counts.entries()) {
        const label = table.columns[c];
        say(`chat: ${n} receivers`);
        // fresh servers per cell: the join notices of the last cell are gone
        await using running = new AsyncDisposableStack();
        const servers = await startAll(running, rows);
        const cells = await interleaved(
          repeat,
          rows.map((row, i) => () =>
            measure(generatorFor(loadgen, row), servers[i], [
              "chat",
              "127.0.0.1",
              String(servers[i].port),
              String(n),
              String(seconds),
              row.framing,
            ], seconds)
          ),
        );
        cells.forEach((cell, i) => (tableRows[i].cells[label] = cell));
      }
    };
    if (options.wireCost) {
      // The same servers, as shipped and with the --wire view stripped out
      // (a copy made for this run); both run without --wire.
      const note = "The stripped rows are the script with its --wire lines " +
        "taken out (a copy made for this run); all run without --wire.";
      const iterative = ["--idle-timeout", "0", "--max-line", "1048576"];
      const single = { framing: "line", greeting: true, single: true } as const;
      const singles = grid.filter((cell) => cell.n === 1);
      const wireEcho: Table = {
        ...echo,
        columns: singles.map((cell) => cell.label),
        title:
          "The --wire view when off: the iterative echo, as shipped and stripped",
        rows: [],
        baselines: [`multiclients/ ${STRIPPED}`],
        notes: [note],
      };
      await echoes(wireEcho, [
        {
          name: "multiclients/ as shipped",
          start: deno("multiclients/server.ts", iterative),
          ...single,
        },
        {
          name: `multiclients/ ${STRIPPED}`,
          start: deno(
            await withoutWire("multiclients/server.ts", dir),
            iterative,
          ),
          ...single,
        },
      ], singles);
      const wireRelay: Table = {
        title:
          "The --wire view when off: the sandbox relay, as shipped and stripped",
        unit: "thousand delivered messages/s",
        columns: [100, 1000].map((n) => `${n} recv`),
        rows: [],
        baselines: [`sandbox/ ${STRIPPED}`],
        perCpu: true,
        notes: [note],
      };
      await relay(wireRelay, [
        {
          name: "sandbox/ as shipped",
          start: deno("sandbox/server.ts"),
          framing: "line",
        },
        {
          name: `sandbox/ ${STRIPPED}`,
          start: deno(await withoutWire("sandbox/server.ts", dir)),
          framing: "line",
        },
      ], [100, 1000]);
      const meta = {
        date: new Date().toISOString(),
        machine: `${await uname()}, ${navigator.hardwareConcurrency} cores`,
        deno: Deno.version.deno,
        command: `deno task bench ${Deno.args.join(" ")}`.trim(),
        seconds,
        repeat,
        generator: generators.c ? "bench/loadgen.c" : "bench/loadgen.ts",
        notes,
      };
      const tables = [wireEcho, wireRelay];
      console.log(
        options.json
          ? JSON.stringify({ ...meta, tables }, null, 2)
          : markdown(meta, tables),
      );
      return;
    }
    if (!options.tlsOnly) await relay(chat, relayRows(programs), receivers);

    // ---- multi-core: the threaded relay and our echo by worker count
    const cores = navigator.hardwareConcurrency;
    const workerCounts = options.workers.split(",").map(Number).filter((n) =>
      n > 0
    );
    const scaling: Table = {
      title: `Threaded relay by workers (${cores} cores here)`,
      unit: "thousand delivered messages/s",
      columns: ["100 recv"],
      rows: [],
      baselines: ["workers 1"],
      notes: [],
    };
    if (!options.tlsOnly) {
      await relay(
        scaling,
        workerCounts.map((w) => ({
          name: `workers ${w}`,
          start: deno(...chatServer("threaded", w)),
          framing: "line",
        })),
        [100],
      );
    }

    const scalingGrid = (quick ? [64] : [64, 16384]).map((size) =>
      echoCell(size, 100)
    );
    const echoScaling: Table = {
      title: `Echo by workers (${cores} cores here)`,
      unit: "thousand round trips/s",
      columns: scalingGrid.map((cell) => cell.label),
      rows: [],
      baselines: ["workers 1"],
      notes: [
        "bench/deno_echo.ts --workers N: each worker listens on the port with reusePort, as the threaded server does.",
      ],
    };
    if (Deno.build.os === "linux" && !options.tlsOnly) {
      await echoes(
        echoScaling,
        workerCounts.map((w) => ({
          name: `workers ${w}`,
          start: deno("bench/deno_echo.ts", ["--workers", String(w)]),
          framing: "raw",
          greeting: false,
          single: false,
        })),
        scalingGrid,
      );
    } else {
      echoScaling.notes.push(
        "skipped: workers share a port with reusePort, which Deno offers on Linux only",
      );
    }

    // ---- TLS: our echo and relays over TLS, beside plain and Node tls
    const tlsEcho: Table = {
      title: "Echo over TLS, ping-pong",
      unit: "thousand round trips/s",
      columns: [],
      rows: [],
      baselines: [NODE_TLS_ECHO],
      perCpu: true,
      notes: [
        "Each TLS row follows the same server without TLS. The generator (bench/loadgen.c with OpenSSL, the same binary for every row) completes each connection's handshake before the measured phase: handshakes are not counted.",
      ],
    };
    const tlsChat: Table = {
      title: "Chat relay over TLS, one sender to N receivers",
      unit: "thousand delivered messages/s",
      columns: [],
      rows: [],
      baselines: [NODE_TLS_RELAY],
      perCpu: true,
      notes: [
        "Each TLS row follows the same server without TLS. Every client completes its handshake before the join phase: handshakes are not counted. The threaded server runs 2 workers.",
      ],
    };
    const tlsTables = [tlsEcho, tlsChat];
    const skipTls = (why: string) => {
      notes.push(`skipped the TLS tables: ${why}`);
      say(`tls: skipped: ${why}`);
      return null;
    };
    let tlsFiles: CertificateFiles | null = null;
    if (generators.noTls !== undefined) skipTls(generators.noTls);
    else {
      say("tls: making a test certificate");
      tlsFiles = await benchCertificate(dir).catch((error: Error) =>
        skipTls(error.message)
      );
    }
    if (tlsFiles) {
      const tlsEchoes = tlsEchoRows(programs, tlsFiles);
      tlsEcho.plainOf = plainTwins(tlsEchoes);
      // --quick: one TLS cell, and no TLS relay
      const tlsGrid = quick
        ? [echoCell(64, 10)]
        : [echoCell(64, 10), echoCell(1024, 100), echoCell(16384, 10)];
      tlsEcho.columns = tlsGrid.map((cell) => cell.label);
      await echoes(tlsEcho, tlsEchoes, tlsGrid);
      if (quick) {
        const why = "--quick: one TLS cell (echo 64B×10); no TLS relay cells";
        say(`tls: ${why}`);
        tlsChat.notes = [`Skipped: ${why}.`];
      } else {
        const tlsRelays = tlsRelayRows(programs, tlsFiles);
        tlsChat.plainOf = plainTwins(tlsRelays);
        const counts = [100, 1000];
        tlsChat.columns = counts.map((n) => `${n} recv`);
        await relay(tlsChat, tlsRelays, counts);
      }
    }

    const tables = options.tlsOnly
      ? tlsTables
      : [echo, chat, scaling, echoScaling, ...tlsTables];
    const meta: Meta = {
      date: new Date().toISOString(),
      machine: `${await uname()}, ${cores} cores`,
      deno: Deno.version.deno,
      command: `deno task bench ${Deno.args.join(" ")}`.trim(),
      seconds,
      repeat,
      generator: generators.c ? "bench/loadgen.c" : "bench/loadgen.ts",
      notes,
    };
    if (options.json) {
      console.log(JSON.stringify({ ...meta, tables }, null, 2));
    } else {
      console.log(markdown(meta, tables));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
    for (const file of WITHOUT_WIRE_FILES) await Deno.remove(file);
  }
}

/** How the rows of a script with its wire view taken out are named. */
const STRIPPED = "wire view stripped";

/**
 * A copy of `script` (sandbox/ or multiclients/ server) without the --wire
 * view (imports, flag, the wrapping of each connection), beside the
 * original so that its imports resolve. Throws if the script no longer has
 * the lines this expects, rather than measure something else.
 */
async function withoutWire(script: string, dir: string): Promise<string> {
  let text = await Deno.readTextFile(`${ROOT}${script}`);
  const edits: [RegExp, string][] = [
    [/^import .*"\.\.\/lib\/wire(_conn)?\.ts";\n/gm, ""],
    [/^ +wire: WIRE_FLAG,\n/m, ""],
    [/wireLogFor\(options\.wire, [^)]*\)/, "undefined"],
    [/wireAccepted\((\w+), wire\)/, "$1"],
  ];
  for (const [pattern, replacement] of edits) {
    if (!pattern.test(text)) {
      throw new Error(`${script} changed: ${pattern} not found`);
    }
    text = text.replace(pattern, replacement);
  }
  text = text.replace(/wire\?: WireLog/, "wire?: unknown");
  const folder = script.slice(0, script.lastIndexOf("/") + 1);
  const path = `${ROOT}${folder}_without_wire_${dir.split("/").at(-1)}.ts`;
  await Deno.writeTextFile(path, text);
  WITHOUT_WIRE_FILES.push(path);
  return path.slice(ROOT.length);
}

/** Copies made by {@linkcode withoutWire}, removed at the end of the run. */
const WITHOUT_WIRE_FILES: string[] = [];

/** What the run was: when, where, how. */
interface Meta {
  date: string;
  machine: string;
  deno: string;
  command: string;
  seconds: number;
  repeat: number;
  generator: string;
  notes: string[];
}

/** A cell's figure for one of the tables, or null where there is none. */
type Measure = (cell: Cell) => number | null;

const rateOf: Measure = (cell) => cell.rate;

/** Rate per second of server CPU; null under 10 clock ticks (mostly rounding). */
const perCpuOf: Measure = (cell) =>
  cell.cpuSeconds !== null && cell.cpuSeconds >= 0.1 && cell.cpu
    ? cell.rate / (cell.cpu / 100)
    : null;

/** The figure of a measured cell, or a dash. */
function figure(
  cell: Cell | null | undefined,
  measure: Measure,
  text: (value: number) => string,
): string {
  if (cell === null || cell === undefined) return "n/a";
  if (cell.failed) return "failed";
  const value = measure(cell);
  return value === null ? "–" : text(value);
}

/** One Markdown table: a row per server, a column per cell. */
function grid(
  table: Table,
  heading: string,
  text: (row: Row, column: string) => string,
): string[] {
  return [
    heading,
    "",
    `| server | ${table.columns.join(" | ")} |`,
    `| --- |${table.columns.map(() => " ---: |").join("")}`,
    ...table.rows.map((row) =>
      `| ${row.server} | ${
        table.columns.map((c) => text(row, c)).join(" | ")
      } |`
    ),
    "",
  ];
}

/**
 * `row`'s figure over the baseline row's, in `column`: `baseline` names
 * that row, or names it for each row (a TLS row's plain twin).
 */
function ratio(
  table: Table,
  baseline: string | ((row: Row) => string | undefined),
  measure: Measure,
): (row: Row, column: string) => string {
  const baseOf = typeof baseline === "string" ? () => baseline : baseline;
  return (row, column) => {
    const base = table.rows.find((r) => r.server === baseOf(row));
    const b = base?.cells[column];
    const theirs = b && !b.failed ? measure(b) : null;
    return figure(
      row.cells[column],
      measure,
      (own) => theirs ? `${fmt(own / theirs, 2)}×` : "–",
    );
  };
}

/**
 * The ratios side by side, `× first / × second`: a TLS table's over each
 * row's plain twin first, then the baselines'.
 */
function ratios(
  table: Table,
  measure: Measure,
): (row: Row, column: string) => string {
  const plainOf = table.plainOf;
  const each = [
    ...plainOf ? [ratio(table, (row) => plainOf[row.server], measure)] : [],
    ...table.baselines.map((b) => ratio(table, b, measure)),
  ];
  return (row, column) => each.map((r) => r(row, column)).join(" / ");
}

/**
 * The tables as Markdown, narrow enough for a screen: one table per
 * measure (rate; rate per server CPU-second; ratios to the baselines; p99
 * latency; server CPU), servers as rows, cells as columns.
 */
function markdown(meta: Meta, tables: Table[]): string {
  const out = [
    `Measured ${
      meta.date.slice(0, 10)
    } on ${meta.machine}, Deno ${meta.deno}, generator ${meta.generator}: \`${meta.command}\``,
    "",
    ...meta.notes.map((note) => `- ${note}`),
    ...(meta.notes.length > 0 ? [""] : []),
  ];
  const thousands = (v: number) => fmt(v / 1000, 1);
  for (const table of tables) {
    const present = table.baselines.filter((b) =>
      table.rows.some((r) => r.server === b)
    );
    const shown = { ...table, baselines: present };
    out.push(`### ${table.title}`, "");
    if (table.rows.length === 0 || table.columns.length === 0) {
      out.push(...table.notes.flatMap((note) => [note, ""]));
      continue; // skipped: its notes or the run's say why
    }
    out.push(
      ...grid(
        shown,
        `${table.unit}:`,
        (row, c) => figure(row.cells[c], rateOf, thousands),
      ),
    );
    if (table.perCpu) {
      out.push(
        ...grid(
          shown,
          `${table.unit.replace(/\/s$/, "")} per second of server CPU:`,
          (row, c) => figure(row.cells[c], perCpuOf, thousands),
        ),
      );
    }
    const byBaseline = present.length > 1 && table.columns.length > 3
      ? present.map((b) => ({ ...shown, baselines: [b] }))
      : [shown];
    // a TLS table shows the ratios of its TLS rows only
    const plainOf = table.plainOf;
    const ratioRows = plainOf
      ? table.rows.filter((r) => plainOf[r.server])
      : table.rows;
    for (const t of byBaseline) {
      if (t.baselines.length === 0 && !plainOf) continue;
      const names = [
        ...plainOf ? ["× plain"] : [],
        ...t.baselines.map((b) => `× ${b}`),
      ].join(" / ");
      const shownRows = { ...t, rows: ratioRows };
      out.push(...grid(shownRows, `rate, ${names}:`, ratios(t, rateOf)));
      if (table.perCpu) {
        out.push(
          ...grid(
            shownRows,
            `per server CPU-second, ${names}:`,
            ratios(t, perCpuOf),
          ),
        );
      }
    }
    out.push(
      ...grid(
        shown,
        "p99 latency (ms):",
        (row, c) =>
          figure(row.cells[c], (cell) => cell.p99us, (v) => fmt(v / 1000, 2)),
      ),
      ...grid(
        shown,
        "server CPU (% of one core):",
        (row, c) => figure(row.cells[c], (cell) => cell.cpu, (v) => fmt(v)),
      ),
    );
    const failures = table.rows.flatMap((row) =>
      table.columns.flatMap((column) => {
        const why = row.cells[column]?.failed;
        return why ? [`- failed: ${row.server}, ${column}: ${why}`] : [];
      })
    );
    if (failures.length > 0) out.push(...failures, "");
    for (const note of table.notes) out.push(note, "");
  }
  return out.join("\n");
}

function fmt(value: number, digits = 0): string {
  return value.toFixed(digits);
}

if (import.meta.main) await main();
