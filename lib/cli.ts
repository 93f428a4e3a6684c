/**
 * Command-line arguments shared by every script: `--host`, `--port`,
 * `--help`, plus the flags a script declares for itself.
 *
 * A bad value never reaches the program: {@linkcode parseCliOrExit} prints
 * what is wrong and the usage, and exits with code 2 (the convention for
 * usage errors). `--help` prints the usage and exits 0.
 *
 * @example
 * ```ts
 * import { parseCliOrExit } from "./cli.ts";
 *
 * const options = parseCliOrExit(Deno.args, {
 *   script: "basic/server.ts",
 *   summary: "Echo server.",
 *   role: "server",
 *   defaultPort: 5000,
 *   flags: { maxClients: { type: "integer", description: "stop after N" } },
 * });
 * options.host; // "127.0.0.1" unless --host was given
 * options.maxClients; // number | undefined
 * ```
 *
 * @module
 */

import { parseArgs } from "./std.ts";

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
  /** The placeholder in the usage text, e.g. `SECONDS`. */
  placeholder?: string;
}

/** A flag that is on when present: `--portable`. */
export interface BooleanFlag {
  /** The kind of value. */
  type: "boolean";
  /** One line for the usage text. */
  description: string;
}

/** One flag a script declares. */
export type FlagSpec = StringFlag | NumberFlag | BooleanFlag;

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
   * Servers listen on `--host`/`--port`; clients connect to them; tools
   * (no network) do not show those flags.
   */
  role: "server" | "client" | "tool";
  /** The port used when `--port` is absent. */
  defaultPort: number;
  /** The script's own flags. */
  flags?: F;
  /** Extra arguments for the example line of the usage text. */
  example?: string;
}

/** The parsed command line: host, port, and the script's own flags. */
export type CliOptions<F extends FlagSpecs> =
  & { readonly host: string; readonly port: number }
  & { readonly [K in keyof F]: FlagValue<F[K]> };

/** The default `--host`: loopback, so nothing is exposed unless asked. */
export const DEFAULT_HOST = "127.0.0.1";

/**
 * A command line that cannot be run; its message says what is wrong.
 *
 * @example
 * ```ts
 * import { UsageError } from "./cli.ts";
 * const error = new UsageError("--port must be an integer");
 * error.message; // "--port must be an integer"
 * ```
 */
export class UsageError extends Error {
  /** The error's name. */
  override name = "UsageError";
}

/** Thrown by {@linkcode parseCli} when `--help` was asked for. */
export class HelpRequested extends Error {
  /** The error's name. */
  override name = "HelpRequested";
}

const HOST_PORT: FlagSpecs = {
  host: { type: "string", description: "", placeholder: "HOST" },
  port: { type: "integer", description: "", placeholder: "PORT" },
};

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
  const flags: FlagSpecs = { ...HOST_PORT, ...spec.flags };
  const unknown: string[] = [];
  const names = Object.keys(flags);
  const valueFlags = new Set(
    names.filter((n) => flags[n].type !== "boolean").map((n) =>
      `--${kebab(n)}`
    ),
  );
  const parsed = parseArgs(joinValues(argv, valueFlags), {
    string: names.filter((n) => flags[n].type !== "boolean").map(kebab),
    boolean: [
      ...names.filter((n) => flags[n].type === "boolean").map(kebab),
      "help",
    ],
    unknown: (arg) => {
      unknown.push(arg);
      return false;
    },
  });
  if (parsed.help === true) throw new HelpRequested("help requested");
  if (unknown.length > 0) {
    const first = unknown[0];
    throw new UsageError(
      first.startsWith("-")
        ? `unknown option ${first.split("=")[0]}`
        : `unexpected argument "${first}" (options start with --)`,
    );
  }
  const result: Record<string, unknown> = {
    host: hostValue(parsed.host),
    port: spec.defaultPort,
  };
  for (const name of names) {
    const raw = parsed[kebab(name)];
    if (name === "host") continue;
    const value = convert(`--${kebab(name)}`, flags[name], raw);
    if (value !== undefined) result[name] = value;
    else if (name !== "port") result[name] = defaultOf(flags[name]);
  }
  return result as CliOptions<F>;
}

/**
 * Writes `--port -1` and `--host ""` as `--port=-1` and `--host=`, so that a
 * value that looks like a flag or is empty reaches validation as a value.
 */
function joinValues(
  argv: readonly string[],
  valueFlags: Set<string>,
): string[] {
  const joined: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const next = argv[i + 1];
    if (
      valueFlags.has(argv[i]) && next !== undefined &&
      !/^--?[A-Za-z]/.test(next)
    ) {
      joined.push(`${argv[i]}=${next}`);
      i++;
    } else {
      joined.push(argv[i]);
    }
  }
  return joined;
}

function defaultOf(flag: FlagSpec): unknown {
  return flag.type === "boolean" ? false : flag.default;
}

function hostValue(raw: unknown): string {
  if (raw === undefined) return DEFAULT_HOST;
  const host = lastValue(raw).trim().replace(/^\[(.*)\]$/, "$1");
  if (host === "") {
    throw new UsageError("--host needs a value, e.g. --host 127.0.0.1");
  }
  return host;
}

/** A repeated flag keeps its last value, as most tools do. */
function lastValue(raw: unknown): string {
  return String(Array.isArray(raw) ? raw.at(-1) : raw);
}

function convert(flag: string, spec: FlagSpec, raw: unknown): unknown {
  if (spec.type === "boolean") return raw === true ? true : undefined;
  if (raw === undefined) return undefined;
  const text = lastValue(raw).trim();
  if (text === "") throw new UsageError(`${flag} needs a value`);
  if (spec.type === "string") {
    if (spec.choices && !spec.choices.includes(text)) {
      throw new UsageError(
        `${flag} must be one of ${spec.choices.join(", ")}, got "${text}"`,
      );
    }
    return text;
  }
  return number(flag, spec, text);
}

function number(flag: string, spec: NumberFlag, text: string): number {
  const isPort = flag === "--port";
  const min = spec.min ?? 0;
  const max = isPort ? 65535 : spec.max ?? Number.MAX_SAFE_INTEGER;
  const pattern = spec.type === "integer" ? /^\d+$/ : /^\d+(\.\d+)?$/;
  const value = Number(text);
  if (!pattern.test(text) || value < min || value > max) {
    const kind = spec.type === "integer" ? "an integer" : "a number";
    const range = spec.max === undefined && !isPort
      ? `of at least ${min}`
      : `from ${min} to ${max}`;
    throw new UsageError(`${flag} must be ${kind} ${range}, got "${text}"`);
  }
  return value;
}

/**
 * The usage text for `--help` and for usage errors.
 *
 * @example
 * ```ts
 * import { usage } from "./cli.ts";
 * console.log(usage({
 *   script: "basic/server.ts", summary: "Echo.", role: "server", defaultPort: 5000,
 * }));
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
  rows.push(["--help", "show this help and exit"]);
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  const lines = rows.map(([left, right]) => `  ${left.padEnd(width)}${right}`);
  return [
    `${spec.script}: ${spec.summary}`,
    "",
    `Usage: deno run -A ${spec.script} [options]`,
    "",
    "Options:",
    ...lines,
    "",
    "Example:",
    `  deno run -A ${spec.script} ${
      spec.example ?? `--port ${spec.defaultPort}`
    }`,
  ].join("\n");
}

function usageRow(name: string, flag: FlagSpec): [string, string] {
  const left = `--${kebab(name)}`;
  if (flag.type === "boolean") return [left, flag.description];
  const placeholder = flag.placeholder ??
    (flag.type === "string" ? (flag.choices?.join("|") ?? "VALUE") : "N");
  const fallback = flag.default === undefined
    ? ""
    : ` (default: ${flag.default})`;
  return [`${left} ${placeholder}`, `${flag.description}${fallback}`];
}

/**
 * Parses the command line, or ends the program: `--help` prints the usage
 * and exits 0; a bad command line prints the problem and the usage to
 * stderr and exits 2.
 *
 * @example
 * ```ts
 * import { parseCliOrExit } from "./cli.ts";
 * const { host, port } = parseCliOrExit(Deno.args, {
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
      console.error(`error: ${error.message}\n\n${usage(spec)}`);
      Deno.exit(2);
    }
    throw error;
  }
}
