/**
 * Command-line arguments: a script declares its flags (a spec), and gets
 * back typed values, or a usage error that says what is wrong.
 *
 * Every script takes `--host`, `--port` and `--help` (`-h`); servers may
 * take `--port 0` (any free port), clients may not. Durations are in
 * seconds, `0` meaning never, up to {@linkcode MAX_SECONDS}.
 * {@linkcode parseCliOrExit} prints a usage error and exits 2 (the
 * convention for usage errors); `--help` prints the usage and exits 0.
 *
 * @example
 * ```ts
 * import { parseCliOrExit } from "./cli.ts";
 *
 * const options = parseCliOrExit([], {
 *   script: "basic/server.ts",
 *   summary: "echo server.",
 *   role: "server",
 *   defaultPort: 5000,
 *   flags: { idleTimeout: { type: "seconds", description: "idle limit", default: 0 } },
 * });
 * options.host; // "127.0.0.1" unless --host was given
 * options.idleTimeout; // 0 (never)
 * ```
 *
 * @module
 */

/** A flag that takes a string, optionally one of a fixed set. */
export interface StringFlag {
  /** The kind of value. */
  type: "string";
  /** One line for the usage text. */
  description: string;
  /** The value when the flag is absent. */
  default?: string;
  /** The only values allowed. */
  choices?: readonly string[];
  /** The placeholder in the usage text, e.g. `NAME`. */
  placeholder?: string;
  /**
   * The value when the flag stands alone (`--wire` for `--wire text`); the
   * next argument is its value only if it is one of `choices`.
   */
  bare?: string;
}

/** A flag that takes a number: `integer` or any finite `number`. */
export interface NumberFlag {
  /** The kind of value. */
  type: "integer" | "number";
  /** One line for the usage text. */
  description: string;
  /** The value when the flag is absent. */
  default?: number;
  /** The smallest value allowed (default 0). */
  min?: number;
  /** The largest value allowed (default: no limit). */
  max?: number;
  /** The placeholder in the usage text, e.g. `BYTES`. */
  placeholder?: string;
}

/** A duration in seconds: `0` means never; at most {@linkcode MAX_SECONDS}. */
export interface SecondsFlag {
  /** The kind of value. */
  type: "seconds";
  /** One line for the usage text. */
  description: string;
  /** The value when the flag is absent (0: never). */
  default: number;
}

/** A flag that is on when present: `--portable`. */
export interface BooleanFlag {
  /** The kind of value. */
  type: "boolean";
  /** One line for the usage text. */
  description: string;
}

/** One flag a script declares. */
export type FlagSpec = StringFlag | NumberFlag | SecondsFlag | BooleanFlag;

/** Flags by camelCase name; `maxClients` is written `--max-clients`. */
export type FlagSpecs = Record<string, FlagSpec>;

/** The value type of a flag spec, before defaults are considered. */
export type ValueOf<S> = S extends BooleanFlag ? boolean
  : S extends { choices: readonly (infer C)[] } ? C
  : S extends StringFlag ? string
  : number;

/** The value a flag spec yields: absent flags without a default are `undefined`. */
export type FlagValue<S> = S extends BooleanFlag ? boolean
  : S extends { default: unknown } ? ValueOf<S>
  : ValueOf<S> | undefined;

/** What a script says about itself, for parsing and for `--help`. */
export interface CliSpec<F extends FlagSpecs> {
  /** The script's path from the project root, e.g. `basic/server.ts`. */
  script: string;
  /** One sentence: what the program does. */
  summary: string;
  /**
   * Servers listen on `--host`/`--port` (`--port 0`: any free port);
   * clients connect to them; tools (no network) do not show those flags.
   */
  role: "server" | "client" | "tool";
  /** The port used when `--port` is absent. */
  defaultPort: number;
  /** The script's own flags. */
  flags?: F;
  /** Extra arguments for the example line of the usage text. */
  example?: string;
  /** Lines printed after the options in `--help` (notes, caveats). */
  notes?: readonly string[];
  /** What is wrong with flags that are each fine alone (`null`: nothing). */
  check?: (options: CliOptions<F>) => string | null;
}

/** The parsed command line: host, port, and the script's own flags. */
export type CliOptions<F extends FlagSpecs> =
  & { readonly host: string; readonly port: number }
  & { readonly [K in keyof F]: FlagValue<F[K]> };

/** The default `--host`: loopback, so nothing is exposed unless asked. */
export const DEFAULT_HOST = "127.0.0.1";

/**
 * The longest duration a flag takes: 1,000,000 s (about 11 days), well
 * inside what a timer can hold (about 24.8 days).
 */
export const MAX_SECONDS = 1_000_000;

/**
 * A command line that cannot be run; its message says what is wrong.
 *
 * @example
 * ```ts
 * import { UsageError } from "./cli.ts";
 * new UsageError("--port must be an integer").message; // "--port must be an integer"
 * ```
 */
export class UsageError extends Error {
  /** The error's name. */
  override name = "UsageError";
}

/**
 * Thrown by {@linkcode parseCli} when `--help` or `-h` was asked for.
 *
 * @example
 * ```ts
 * import { HelpRequested } from "./cli.ts";
 * new HelpRequested().name; // "HelpRequested"
 * ```
 */
export class HelpRequested extends Error {
  /** The error's name. */
  override name = "HelpRequested";
}

/** `maxClients` → `max-clients`. */
function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/**
 * Parses `argv` against `spec`. Throws {@linkcode UsageError} for a bad
 * command line and {@linkcode HelpRequested} for `--help`.
 *
 * @example
 * ```ts
 * import { parseCli } from "./cli.ts";
 * const o = parseCli(["--port", "0"], {
 *   script: "basic/server.ts", summary: "Echo.", role: "server", defaultPort: 5000,
 * });
 * o.port; // 0
 * ```
 */
export function parseCli<F extends FlagSpecs = Record<never, FlagSpec>>(
  argv: readonly string[],
  spec: CliSpec<F>,
): CliOptions<F> {
  const flags = allFlags(spec);
  const raw = tokenize(argv, flags, spec.role === "client");
  const result: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(flags)) {
    result[name] = check(`--${kebab(name)}`, flag, raw.get(name));
  }
  result.host ??= DEFAULT_HOST;
  result.port ??= spec.defaultPort;
  const options = result as CliOptions<F>;
  const problem = spec.check?.(options) ?? null;
  if (problem !== null) throw new UsageError(problem);
  return options;
}

/** The script's flags with `--host` and `--port` in front (not for tools). */
function allFlags<F extends FlagSpecs>(spec: CliSpec<F>): FlagSpecs {
  if (spec.role === "tool") return { ...spec.flags };
  return {
    host: { type: "string", description: "", placeholder: "HOST" },
    port: {
      type: "integer",
      description: "",
      min: spec.role === "server" ? 0 : 1,
      max: 65535,
    },
    ...spec.flags,
  };
}

/**
 * The parse step: `--name value`, `--name=value` and `--flag`, by name. A
 * value flag takes the next argument whatever it looks like, so `--port -1`
 * reaches the check as `-1`. A repeated flag keeps its last value. A client
 * also takes a host and a port as plain arguments, as `nc` does.
 */
function tokenize(
  argv: readonly string[],
  flags: FlagSpecs,
  client: boolean,
): Map<string, string | true> {
  const byKebab = new Map(
    Object.keys(flags).map((name) => [kebab(name), name]),
  );
  const values = new Map<string, string | true>();
  const plain: string[] = []; // "host", then "port", as given plainly
  const twice = (name: string) =>
    new UsageError(
      `the ${name} is given twice, as an argument and as --${name}: give one`,
    );
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--help" || arg === "-h") throw new HelpRequested("help");
    if (!arg.startsWith("-")) {
      const name = client ? PLAIN[plain.length] : undefined;
      if (name === undefined) {
        throw new UsageError(
          `unexpected argument "${arg}" (${
            client ? "a host and a port at most; " : ""
          }options start with --)`,
        );
      }
      if (values.has(name)) throw twice(name);
      plain.push(name);
      values.set(name, arg);
      continue;
    }
    const [key, inline] = splitOnce(arg.replace(/^--?/, ""), "=");
    const name = byKebab.get(key);
    if (name !== undefined && plain.includes(name)) throw twice(name);
    if (name === undefined || !arg.startsWith("--")) {
      const near = [...byKebab.keys(), "help"].find((known) =>
        distance(key, known) <= 2
      );
      throw new UsageError(
        `unknown option ${arg.split("=")[0]}${
          near ? `; did you mean --${near}?` : ""
        }`,
      );
    }
    if (flags[name].type === "boolean") {
      if (inline !== undefined) {
        throw new UsageError(`--${key} takes no value, got "${inline}"`);
      }
      values.set(name, true);
      continue;
    }
    const flag = flags[name];
    const bare = flag.type === "string" ? flag.bare : undefined;
    let value = inline;
    if (value === undefined && bare !== undefined) {
      // The next argument is its value unless it is another option.
      const next = argv[i + 1];
      value = next !== undefined && !next.startsWith("-") ? argv[++i] : bare;
    }
    value ??= argv[++i];
    if (value === undefined) throw new UsageError(`--${key} needs a value`);
    values.set(name, value);
  }
  return values;
}

/** What a client's plain arguments are, in order: `client.ts HOST PORT`. */
const PLAIN = ["host", "port"] as const;

/** Edits (insert, delete, replace) between two short strings. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        row[j] + 1,
        next[j - 1] + 1,
        row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    row = next;
  }
  return row[b.length];
}

function splitOnce(text: string, separator: string): [string, string?] {
  const at = text.indexOf(separator);
  return at === -1 ? [text] : [text.slice(0, at), text.slice(at + 1)];
}

/** The check step: one flag's raw value to its typed value. */
function check(flag: string, spec: FlagSpec, raw?: string | true): unknown {
  if (spec.type === "boolean") return raw === true;
  if (raw === undefined) return spec.default;
  const text = String(raw).trim();
  if (text === "") {
    throw new UsageError(
      `${flag} needs a value${
        flag === "--host" ? ", e.g. --host 127.0.0.1" : ""
      }`,
    );
  }
  switch (spec.type) {
    case "string":
      if (spec.choices && !spec.choices.includes(text)) {
        throw new UsageError(
          `${flag} must be one of ${spec.choices.join(", ")}, got "${text}"`,
        );
      }
      return flag === "--host" ? text.replace(/^\[(.*)\]$/, "$1") : text;
    case "seconds":
      return number(flag, text, {
        kind: "a number of seconds",
        pattern: DECIMAL,
        min: 0,
        max: MAX_SECONDS,
      });
    default:
      return number(flag, text, {
        kind: spec.type === "integer" ? "an integer" : "a number",
        pattern: spec.type === "integer" ? /^\d+$/ : DECIMAL,
        min: spec.min ?? 0,
        max: spec.max,
      });
  }
}

const DECIMAL = /^\d+(\.\d+)?$/;

function number(
  flag: string,
  text: string,
  rule: { kind: string; pattern: RegExp; min: number; max?: number },
): number {
  const value = Number(text);
  const { kind, pattern, min, max } = rule;
  if (
    pattern.test(text) && value >= min && (max === undefined || value <= max)
  ) {
    return value;
  }
  const range = max === undefined
    ? `of at least ${min}`
    : `from ${min} to ${max}`;
  throw new UsageError(`${flag} must be ${kind} ${range}, got "${text}"`);
}

/** The line that says how a script is run. */
function usageLine(spec: { script: string; role: string }): string {
  const plain = spec.role === "client" ? " [HOST [PORT]]" : "";
  return `Usage: deno run -A ${spec.script} [options]${plain}`;
}

/**
 * The usage text for `--help` (a usage error prints its usage line alone).
 *
 * @example
 * ```ts
 * import { usage } from "./cli.ts";
 * usage({ script: "basic/server.ts", summary: "Echo.", role: "server", defaultPort: 5000 })
 *   .startsWith("basic/server.ts: Echo."); // true
 * ```
 */
export function usage<F extends FlagSpecs>(spec: CliSpec<F>): string {
  const server = spec.role === "server";
  const rows: [string, string][] = spec.role === "tool" ? [] : [
    [
      "--host HOST",
      `${
        server ? "address to listen on" : "server to connect to"
      } (default: ${DEFAULT_HOST})`,
    ],
    [
      "--port PORT",
      `${
        server ? "port to listen on, 0 for any free one" : "server port"
      } (default: ${spec.defaultPort})`,
    ],
  ];
  for (const [name, flag] of Object.entries(spec.flags ?? {})) {
    rows.push(usageRow(name, flag));
  }
  rows.push(["-h, --help", "show this help and exit"]);
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  const lines = rows.map(([left, right]) =>
    `  ${left.padEnd(width)}${
      wrap(right, USAGE_COLUMNS - width - 2, width + 2)
    }`
  );
  return [
    `${spec.script}: ${spec.summary}`,
    "",
    usageLine(spec),
    "",
    "Options:",
    ...lines,
    ...(spec.notes?.length ? ["", ...spec.notes] : []),
    "",
    "Example:",
    `  deno run -A ${spec.script} ${
      spec.example ?? `--port ${spec.defaultPort}`
    }`,
  ].join("\n");
}

const USAGE_COLUMNS = 80;

/** Wraps `text` at spaces to lines of at most `room` columns, indenting the rest. */
function wrap(text: string, room: number, indent: number): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > Math.max(room, 20)) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines.join(`\n${" ".repeat(indent)}`);
}

function usageRow(name: string, flag: FlagSpec): [string, string] {
  const left = `--${kebab(name)}`;
  switch (flag.type) {
    case "boolean":
      return [left, flag.description];
    case "seconds":
      return [
        `${left} SECONDS`,
        `${flag.description} (default: ${
          flag.default === 0 ? "0, never" : flag.default
        }; at most ${MAX_SECONDS})`,
      ];
    default: {
      const choices = flag.type === "string"
        ? flag.choices?.join("|")
        : undefined;
      const placeholder = flag.placeholder ??
        (flag.type === "string"
          ? (flag.bare !== undefined ? `[${choices}]` : choices ?? "VALUE")
          : "N");
      const notes = [
        flag.default === undefined ? "" : `default: ${flag.default}`,
        // a floor worth knowing (ports and counts start at 0 or 1 anyway)
        flag.type === "integer" && (flag.min ?? 0) > 1
          ? `at least ${flag.min}`
          : "",
      ].filter((note) => note !== "");
      const fallback = notes.length === 0 ? "" : ` (${notes.join("; ")})`;
      return [`${left} ${placeholder}`, `${flag.description}${fallback}`];
    }
  }
}

/**
 * Parses the command line, or ends the program: `--help` prints the usage
 * and exits 0; a bad command line prints the problem, the usage line and
 * where to find the options to stderr, and exits 2.
 *
 * @example
 * ```ts
 * import { parseCliOrExit } from "./cli.ts";
 * const { host, port } = parseCliOrExit([], {
 *   script: "basic/client.ts", summary: "Echo client.", role: "client", defaultPort: 5000,
 * });
 * ```
 */
export function parseCliOrExit<F extends FlagSpecs = Record<never, FlagSpec>>(
  argv: readonly string[],
  spec: CliSpec<F>,
): CliOptions<F> {
  try {
    return parseCli(argv, spec);
  } catch (error) {
    if (error instanceof HelpRequested) {
      console.log(usage(spec));
      Deno.exit(0);
    }
    if (error instanceof UsageError) {
      // the mistake and how to call it, not a screenful that scrolls it away
      console.error(
        `error: ${error.message}\n\n${
          usageLine(spec)
        }\nRun it with --help for every option.`,
      );
      Deno.exit(2);
    }
    throw error;
  }
}
