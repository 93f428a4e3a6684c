/**
 * `deno task bench`: our servers beside Node, Python, C and ncat, in one run,
 * on this machine, over loopback.
 *
 *   deno task bench                  # full matrix, 3 s a cell, 3 repeats
 *   deno task bench --quick          # under a minute (CI's smoke test)
 *   deno task bench --json           # for machines
 *   deno task bench --workers 1,2,4,8   # relay and echo by worker count
 *
 * The load generator is bench/loadgen.c (one thread, epoll), compiled here
 * with `cc`; without `cc`, bench/loadgen.ts (slower: the tables say so).
 * Rows whose program is missing (node, python3, ncat) are skipped with the
 * reason printed. Each cell is repeated, the servers taking turns in every
 * round (so drift on a shared machine shifts them all alike); the median is
 * reported, and each row also as a ratio to the Node baseline measured in
 * this same run.
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
  metric: string;
  columns: string[];
  rows: Row[];
  /** The row whose cells the ratios are taken against. */
  baseline: string;
  /**
   * Also show the rate per second of server CPU (and its ratio): on a
   * machine where the load generator and the server share the cores, the
   * rate is partly the generator's limit, while this is the server's cost.
   */
  perCpu?: boolean;
  notes: string[];
}

/** Compiles a C file of bench/ into `dir`; the binary's path, or null. */
async function compile(dir: string, name: string): Promise<string | null> {
  const out = `${dir}/${name}`;
  const result = await new Deno.Command("cc", {
    args: ["-O2", "-o", out, `${ROOT}bench/${name}.c`],
    stderr: "piped",
  }).output().catch(() => null);
  if (!result?.success) return null;
  return out;
}

/**
 * The load generators as command lines: the C one, built with `cc` (null
 * where there is no `cc`), and the Deno one, which runs anywhere.
 */
export async function loadGenerators(
  dir: string,
): Promise<{ c: string[] | null; deno: string[] }> {
  const cc = await installed("cc", ["--version"]);
  const built = cc ? await compile(dir, "loadgen") : null;
  if (cc && !built) throw new Error("bench/loadgen.c did not compile");
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
  };
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

/** A server program to start for a row, or why it cannot be. */
type Starter = () => Promise<ServerProcess>;

function deno(script: string, args: string[] = []): Starter {
  return () => spawnServer(script, args);
}

/** An echo row: name, how to start the server (null: not here), framing, greeting, one connection only. */
type EchoRow<Start> = [
  name: string,
  start: Start,
  framing: string,
  greeting: boolean,
  single: boolean,
];

/** An echo cell: message size × connections, and its column label. */
interface EchoCell {
  label: string;
  size: number;
  n: number;
}

function echoCell(size: number, n: number): EchoCell {
  const bytes = size >= 1024 ? `${size / 1024} KiB` : `${size} B`;
  return { label: `${bytes} × ${n}`, size, n };
}

/** The rows whose program is here (their starter is not null). */
function present<Rest extends unknown[]>(
  rows: [string, Starter | null, ...Rest][],
): [string, Starter, ...Rest][] {
  return rows.flatMap(([name, start, ...rest]): [string, Starter, ...Rest][] =>
    start ? [[name, start, ...rest]] : []
  );
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "bench/run.ts",
    summary:
      "benchmark: our servers beside Node, Python, C and ncat, over loopback.",
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
        "no `cc` here (apt install gcc): the load generator was bench/loadgen.ts, slower than the C one, so fast servers are measured at its limit, and there is no C epoll row",
      );
    }
    const cEcho = generators.c ? await compile(dir, "c_echo") : null;
    const node = await installed("node", ["--version"]);
    const python = await installed("python3", ["--version"]);
    const ncat = await installed("ncat", ["--version"]);
    if (!node) notes.push("skipped the Node rows: `node` is not installed");
    if (!python) {
      notes.push("skipped the Python row: `python3` is not installed");
    }
    if (!ncat) {
      notes.push(
        "skipped `ncat --chat`: `ncat` is not installed (Debian package ncat)",
      );
    }

    // ---- echo: round trips per second
    const sizes = quick ? [64, 16384] : [64, 1024, 16384];
    const conns = quick ? [1, 100] : [1, 10, 100];
    const grid = sizes.flatMap((size) => conns.map((n) => echoCell(size, n)));
    const echoRows: EchoRow<Starter | null>[] = [
      [
        "C epoll",
        cEcho ? () => spawnProcess(cEcho, ["0"]) : null,
        "raw",
        false,
        false,
      ],
      [
        "Deno: our echo loop (basic/)",
        deno("bench/deno_echo.ts"),
        "raw",
        false,
        false,
      ],
      [
        "Deno: line framing (lib/)",
        deno("bench/deno_echo.ts", ["--framing", "line"]),
        "line",
        false,
        false,
      ],
      [
        "Deno: length framing (lib/)",
        deno("bench/deno_echo.ts", ["--framing", "length"]),
        "length",
        false,
        false,
      ],
      [
        "Deno: multiclients/ (iterative)",
        deno("multiclients/server.ts", [
          "--idle-timeout",
          "0",
          "--max-line",
          "1048576",
        ]),
        "line",
        true,
        true,
      ],
      [
        "Node net",
        node
          ? () => spawnProcess("node", [`${ROOT}bench/node_echo.mjs`])
          : null,
        "raw",
        false,
        false,
      ],
      [
        "Python asyncio",
        python
          ? () => spawnProcess("python3", [`${ROOT}bench/python_echo.py`])
          : null,
        "raw",
        false,
        false,
      ],
    ];
    const echo: Table = {
      title: "Echo: round trips per second (thousands), ping-pong",
      metric: "k round trips/s",
      columns: grid.map((cell) => cell.label),
      rows: [],
      baseline: "Node net",
      notes: [
        "multiclients/ serves one client at a time by design: one-connection cells only.",
      ],
    };
    /**
     * Fills `table`: a row per server, a cell per size and connection count.
     * Every server runs from the start, idle but for its turn.
     */
    const echoes = async (
      table: Table,
      rows: EchoRow<Starter>[],
      grid: EchoCell[],
    ) => {
      await using running = new AsyncDisposableStack();
      const serving = [];
      for (const [name, start, framing, greeting, single] of rows) {
        say(`echo: starting ${name}`);
        const server = running.use(await start());
        const row: Row = { server: name, cells: {} };
        table.rows.push(row);
        serving.push({ row, server, framing, greeting, single });
      }
      for (const { label, size, n } of grid) {
        say(`echo: ${label}`);
        const now = serving.filter((e) => !(e.single && n > 1));
        const cells = await interleaved(
          repeat,
          now.map(({ server, framing, greeting }) => () =>
            measure(loadgen, server, [
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
    await echoes(echo, present(echoRows), grid);

    // ---- chat relay: one sender, N receivers, delivered messages per second
    const receivers = quick ? [10, 100] : [10, 100, 1000];
    const chatColumns = receivers.map((n) => `${n} receivers`);
    const chatRows: [string, Starter | null, string][] = [
      [
        "Deno: threaded, 2 workers (reuse-port)",
        deno(...chatServer("threaded", 2)),
        "line",
      ],
      [
        "Deno: threaded, 2 workers (portable)",
        deno(...chatServer("portable", 2)),
        "line",
      ],
      ["Deno: sandbox/ (line)", deno("sandbox/server.ts"), "line"],
      [
        "Deno: sandbox/ (length)",
        deno("sandbox/server.ts", ["--framing", "length"]),
        "length",
      ],
      [
        "Node net line relay",
        node
          ? () => spawnProcess("node", [`${ROOT}bench/node_chat.mjs`])
          : null,
        "line",
      ],
      [
        "ncat --chat",
        ncat
          ? () => {
            const port = freePort();
            return spawnProcess("ncat", [
              "--chat",
              "-l",
              "127.0.0.1",
              String(port),
            ], { port });
          }
          : null,
        "line",
      ],
    ];
    const chat: Table = {
      title:
        "Chat relay: delivered messages per second (thousands), one sender",
      metric: "k messages/s",
      columns: chatColumns,
      rows: [],
      baseline: "Node net line relay",
      perCpu: true,
      notes: [],
    };
    /** Fills `table`: a row per server, a cell per receiver count. */
    const relay = async (
      table: Table,
      rows: [name: string, start: Starter, framing: string][],
      counts: number[],
    ) => {
      const tableRows = rows.map(([name]): Row => ({
        server: name,
        cells: {},
      }));
      table.rows.push(...tableRows);
      for (const n of counts) {
        const label = `${n} receivers`;
        say(`chat: ${label}`);
        // fresh servers per cell: the join notices of the last cell are gone
        await using running = new AsyncDisposableStack();
        const servers: ServerProcess[] = [];
        for (const [, start] of rows) servers.push(running.use(await start()));
        const cells = await interleaved(
          repeat,
          rows.map(([, , framing], i) => () =>
            measure(loadgen, servers[i], [
              "chat",
              "127.0.0.1",
              String(servers[i].port),
              String(n),
              String(seconds),
              framing,
            ], seconds)
          ),
        );
        cells.forEach((cell, i) => (tableRows[i].cells[label] = cell));
      }
    };
    await relay(
      chat,
      present(chatRows),
      receivers,
    );

    // ---- multi-core: the threaded relay with 1, 2, 4, 8 workers
    const workerCounts = options.workers.split(",").map(Number).filter((n) =>
      n > 0
    );
    const scaling: Table = {
      title:
        `Threaded relay by workers: delivered messages per second (thousands), ${navigator.hardwareConcurrency} cores here`,
      metric: "k messages/s",
      columns: ["100 receivers"],
      rows: [],
      baseline: `workers 1`,
      notes: [],
    };
    await relay(
      scaling,
      workerCounts.map((w) => [
        `workers ${w}`,
        deno(...chatServer("threaded", w)),
        "line",
      ]),
      [100],
    );

    const scalingGrid = (quick ? [64] : [64, 16384]).map((size) =>
      echoCell(size, 100)
    );
    const echoScaling: Table = {
      title:
        `Echo by workers (bench/deno_echo.ts --workers N: reuse-port, as the threaded server): round trips per second (thousands), ${navigator.hardwareConcurrency} cores here`,
      metric: "k round trips/s",
      columns: scalingGrid.map((cell) => cell.label),
      rows: [],
      baseline: "workers 1",
      notes: [],
    };
    if (Deno.build.os === "linux") {
      await echoes(
        echoScaling,
        workerCounts.map((w) => [
          `workers ${w}`,
          deno("bench/deno_echo.ts", ["--workers", String(w)]),
          "raw",
          false,
          false,
        ]),
        scalingGrid,
      );
    } else {
      echoScaling.notes.push(
        "skipped: workers share a port with reusePort, which Deno offers on Linux only",
      );
    }

    const tables = [echo, chat, scaling, echoScaling];
    const meta = {
      date: new Date().toISOString(),
      machine:
        `${Deno.build.os} ${Deno.build.arch}, ${navigator.hardwareConcurrency} cores`,
      deno: Deno.version.deno,
      command: `deno task bench ${Deno.args.join(" ")}`.trim(),
      seconds,
      repeat,
      notes,
    };
    if (options.json) {
      console.log(JSON.stringify({ ...meta, tables }, null, 2));
    } else {
      console.log(markdown(meta, tables));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function fmt(value: number, digits = 0): string {
  return value.toFixed(digits);
}

/** The tables as Markdown, each cell `rate (ratio to baseline) p50/p99`. */
function markdown(
  meta: {
    date: string;
    machine: string;
    deno: string;
    command: string;
    notes: string[];
  },
  tables: Table[],
): string {
  const out = [
    `Measured ${
      meta.date.slice(0, 10)
    } on ${meta.machine}, Deno ${meta.deno}: \`${meta.command}\``,
    "",
    ...meta.notes.map((note) => `- ${note}`),
    ...(meta.notes.length > 0 ? [""] : []),
  ];
  for (const table of tables) {
    const base = table.rows.find((r) => r.server === table.baseline);
    out.push(
      `**${table.title}** — each cell: rate (× ${table.baseline}), p50/p99 latency, server CPU${
        table.perCpu ? "; rate per server CPU-second (×)" : ""
      }`,
      "",
    );
    out.push(`| server | ${table.columns.join(" | ")} |`);
    out.push(`| --- |${table.columns.map(() => " --- |").join("")}`);
    for (const row of table.rows) {
      const cells = table.columns.map((column) => {
        const cell = row.cells[column];
        if (cell === null || cell === undefined) return "n/a";
        if (cell.failed) {
          return `failed: ${cell.failed.replace(/\|/g, "/").slice(0, 60)}`;
        }
        const b = base?.cells[column];
        const ratio = b && !b.failed && b.rate > 0
          ? ` (${fmt(cell.rate / b.rate, 2)}×)`
          : "";
        const mb = cell.mbps !== undefined ? `, ${fmt(cell.mbps)} MB/s` : "";
        const cpu = cell.cpu !== null ? `, ${cell.cpu}% CPU` : "";
        const perCpu = table.perCpu ? perCpuText(cell, b) : "";
        return `${fmt(cell.rate / 1000, 1)}${ratio}${mb}; ${
          fmt(cell.p50us / 1000, 2)
        }/${fmt(cell.p99us / 1000, 2)} ms${cpu}${perCpu}`;
      });
      out.push(`| ${row.server} | ${cells.join(" | ")} |`);
    }
    for (const note of table.notes) out.push("", note);
    out.push("");
  }
  return out.join("\n");
}

/** Rate per second of server CPU (thousands), with its ratio to `base`'s. */
function perCpuText(cell: Cell, base: Cell | null | undefined): string {
  const per = (c: Cell | null | undefined) =>
    // under 10 clock ticks the figure would be mostly rounding: left out
    c && !c.failed && c.cpu && (c.cpuSeconds ?? 0) >= 0.1
      ? c.rate / (c.cpu / 100)
      : null;
  const own = per(cell);
  if (own === null) return "";
  const theirs = per(base);
  const ratio = theirs ? ` (${fmt(own / theirs, 2)}×)` : "";
  return `; ${fmt(own / 1000)}/CPU-s${ratio}`;
}

if (import.meta.main) await main();
