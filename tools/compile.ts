/**
 * Builds one single-file binary per script with `deno compile`, into
 * `dist/`, each with the narrowest permissions baked in.
 *
 *   deno task compile                         # for this machine
 *   deno task compile --target all            # for every target Deno supports
 *   deno task compile --target aarch64-apple-darwin --only sandbox-client
 *
 * `deno compile` needs Deno's runtime, `denort`, which it downloads from
 * dl.deno.land the first time (per version and target). Offline, point
 * DENORT_BIN at a `denort` binary (from a Deno release's
 * `denort-<target>.zip`).
 *
 * @module
 */

import { parseCliOrExit } from "../lib/cli.ts";
import { exitWithError } from "../lib/errors.ts";

/** The targets `deno compile --target` accepts. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/** One binary to build. */
export interface Binary {
  /** Its file name in `dist/` (plus `-<target>` for other targets). */
  name: string;
  /** The script, from the project root. */
  script: string;
  /** Permissions baked in: only what the program needs. */
  permissions: string[];
  /** Modules loaded at run time that the compiler cannot see (workers). */
  include?: string[];
}

/** Every script, with what it needs. */
export const BINARIES: readonly Binary[] = [
  {
    name: "basic-server",
    script: "basic/server.ts",
    permissions: ["--allow-net"],
  },
  {
    name: "basic-client",
    script: "basic/client.ts",
    permissions: ["--allow-net"],
  },
  {
    name: "multiclients-server",
    script: "multiclients/server.ts",
    permissions: ["--allow-net"],
  },
  {
    name: "multiclients-client",
    script: "multiclients/client.ts",
    permissions: ["--allow-net"],
  },
  {
    name: "threading-server",
    script: "multiclientsusingthreading/server.ts",
    // The worker module is embedded in the binary; loading it is a read.
    // (--web: the WebSocket library reads two variables as it loads)
    permissions: [
      "--allow-net",
      "--allow-read",
      "--allow-env=WS_NO_BUFFER_UTIL,WS_NO_UTF_8_VALIDATE",
    ],
    // Worker 1 imports the web side only with --web.
    include: [
      "multiclientsusingthreading/worker.ts",
      "lib/web_chat.ts",
      "lib/websocket.ts",
    ],
  },
  {
    name: "threading-client",
    script: "multiclientsusingthreading/client.ts",
    permissions: ["--allow-net"],
  },
  {
    name: "sandbox-server",
    script: "sandbox/server.ts",
    permissions: [
      "--allow-net",
      "--allow-sys=networkInterfaces",
      "--allow-env=WS_NO_BUFFER_UTIL,WS_NO_UTF_8_VALIDATE",
    ],
  },
  {
    name: "sandbox-client",
    script: "sandbox/client.ts",
    permissions: ["--allow-net"],
  },
];

/**
 * The `deno compile` arguments for one binary and target (`undefined`:
 * this machine).
 *
 * @example
 * ```ts
 * import { BINARIES, compileArgs } from "./compile.ts";
 * compileArgs(BINARIES[0], { outDir: "dist" });
 * // ["compile", "--unstable-net", "--allow-net", "--output", "dist/basic-server", "basic/server.ts"]
 * ```
 */
export function compileArgs(
  binary: Binary,
  options: { outDir: string; target?: string },
): string[] {
  const suffix = options.target ? `-${options.target}` : "";
  return [
    "compile",
    "--unstable-net",
    ...binary.permissions,
    ...(binary.include ?? []).flatMap((module) => ["--include", module]),
    ...(options.target ? ["--target", options.target] : []),
    "--output",
    `${options.outDir}/${binary.name}${suffix}`,
    binary.script,
  ];
}

const FLAGS = {
  target: {
    type: "string",
    description: `a target (${
      TARGETS.join(", ")
    }) or "all" (default: this machine)`,
    placeholder: "TARGET",
  },
  only: {
    type: "string",
    description: "build only the binary of this name, e.g. basic-server",
    placeholder: "NAME",
  },
  outDir: {
    type: "string",
    description: "where the binaries go",
    placeholder: "DIR",
    default: "dist",
  },
} as const;

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "tools/compile.ts",
    summary:
      "builds one binary per script with deno compile (--host and --port are unused).",
    role: "client",
    defaultPort: 0,
    flags: FLAGS,
    example: "--target all",
  });
  const targets = options.target === "all" ? [...TARGETS] : [options.target];
  if (
    options.target && options.target !== "all" &&
    !(TARGETS as readonly string[]).includes(options.target)
  ) {
    exitWithError(
      `unknown --target ${options.target}; use one of ${
        TARGETS.join(", ")
      } or all`,
      2,
    );
  }
  const binaries = BINARIES.filter((b) =>
    !options.only || b.name === options.only
  );
  if (binaries.length === 0) {
    exitWithError(`no binary is called ${options.only}`, 2);
  }
  const root = new URL("../", import.meta.url).pathname;

  for (const target of targets) {
    for (const binary of binaries) {
      const args = compileArgs(binary, { outDir: options.outDir, target });
      const output = await new Deno.Command(Deno.execPath(), {
        args,
        cwd: root,
        stdout: "piped",
        stderr: "piped",
      })
        .output();
      if (!output.success) {
        const why = new TextDecoder().decode(output.stderr).trim();
        const offline = /download|dl\.deno\.land|denort|error sending request/i
          .test(why);
        exitWithError(
          offline
            ? `deno compile could not get Deno's runtime (denort) for ${
              target ?? "this machine"
            }: ` +
              `it downloads it from dl.deno.land, which this machine cannot reach. Set DENORT_BIN to a ` +
              `denort binary (from a Deno ${Deno.version.deno} release's denort-<target>.zip) and run again.`
            : `deno compile failed for ${binary.script}:\n${why}`,
        );
      }
      const path = args[args.indexOf("--output") + 1];
      const file =
        (target ?? Deno.build.os) === "windows" || target?.includes("windows")
          ? `${path}.exe`
          : path;
      const size = (await Deno.stat(`${root}${file}`)).size;
      console.log(
        `built ${file}  ${(size / (1 << 20)).toFixed(1)} MiB  (${
          binary.permissions.join(" ")
        })`,
      );
    }
  }
}

if (import.meta.main) await main();
