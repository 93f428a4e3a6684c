/**
 * Packs what the project needs to run where no registry can be reached (a
 * lent benchmark machine, an air-gapped lab): the npm packages it imports,
 * and this Deno, xz-compressed. With the pack beside a copy of the tree,
 * `tools/offline_deno.sh` runs deno (any task, any script) with no network.
 *
 *   deno task pack                       # .device/: deno.xz (~31 MB) + deno_dir/ (~5 MB)
 *   deno task pack --out /tmp/pack --no-binary
 *   tools/offline_deno.sh task bench --workers 1,2,4,8    # there, offline
 *
 * @module
 */

import { parseCliOrExit } from "../lib/cli.ts";
import { exitWithError } from "../lib/errors.ts";

const FLAGS = {
  out: {
    type: "string",
    description: "where to write the pack (ignored by git)",
    default: ".device",
    placeholder: "DIR",
  },
  noBinary: {
    type: "boolean",
    description:
      "leave out the Deno binary (the machine has the same Deno already)",
  },
} as const;

const ROOT = new URL("../", import.meta.url).pathname;

/**
 * Runs `command` from the project root, its stdout into the file `output`
 * if given; throws with its error output if it fails.
 */
async function run(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; output?: string } = {},
): Promise<void> {
  const child = new Deno.Command(command, {
    args,
    cwd: ROOT,
    env: options.env,
    stdout: options.output ? "piped" : "null",
    stderr: "piped",
  }).spawn();
  const copying = options.output
    ? Deno.create(options.output).then((file) =>
      child.stdout.pipeTo(file.writable)
    )
    : undefined;
  const [status, stderr] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
    copying,
  ]);
  if (!status.success) {
    throw new Error(`${command} ${args.join(" ")} failed:\n${stderr.trim()}`);
  }
}

/**
 * Writes the pack into `out`: `deno_dir/` (a DENO_DIR holding every npm
 * package of deno.json's imports) and, unless `binary` is false, `deno.xz`
 * (this Deno). Throws if a step fails.
 */
export async function pack(out: string, binary = true): Promise<void> {
  await Deno.mkdir(out, { recursive: true });
  const denoDir = `${out}/deno_dir`;
  await run(Deno.execPath(), ["install"], { env: { DENO_DIR: denoDir } });
  if (!binary) return;
  await run("xz", ["-T0", "-c", Deno.execPath()], {
    output: `${out}/deno.xz`,
  }).catch((error) => {
    throw new Error(
      `could not compress the deno binary (is xz installed? apt install xz-utils): ${error.message}`,
    );
  });
}

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "tools/pack.ts",
    summary:
      "packs the npm packages and this Deno, so that tools/offline_deno.sh runs deno with no registry.",
    role: "tool",
    defaultPort: 0,
    flags: FLAGS,
    example: "--out .device",
  });
  const out = options.out.startsWith("/")
    ? options.out
    : `${ROOT}${options.out}`;
  await pack(out, !options.noBinary).catch((error) =>
    exitWithError(error.message)
  );
  const du = await new Deno.Command("du", { args: ["-sh", out] }).output();
  console.log(
    `packed ${new TextDecoder().decode(du.stdout).trim()}\n` +
      `there, from the project root: ${
        options.out === FLAGS.out.default ? "" : `PACK=${options.out} `
      }tools/offline_deno.sh task bench --workers 1,2,4,8`,
  );
}

if (import.meta.main) await main();
