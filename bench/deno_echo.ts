/**
 * Our echo paths, served to many clients at once for `deno task bench`:
 *
 *   --framing raw      basic/server.ts's read/write loop, as is
 *   --framing line     lines through lib/framing's decoder and readLoop
 *   --framing length   4-byte length-prefixed frames, the same way
 *
 * (basic/server.ts itself serves one client and exits: this is its loop,
 * not a new one.)
 *
 * @module
 */

import { echo } from "../basic/server.ts";
import { parseCliOrExit } from "../lib/cli.ts";
import { type FramingName, FRAMINGS } from "../lib/framing.ts";
import { closeQuietly, writeAll } from "../lib/io.ts";
import { accepted, listenOrExit } from "../lib/net.ts";
import { readLoop } from "../lib/read_loop.ts";

const FLAGS = {
  framing: {
    type: "string",
    description: "raw bytes, or messages in a framing",
    choices: ["raw", "line", "length"],
    default: "raw",
    placeholder: "raw|line|length",
  },
} as const;

/**
 * Echoes whole messages: the run of complete messages each read brought
 * (checked against the bound, framing bytes and all) goes back in one write,
 * as multiclients/server.ts does with lines.
 */
async function echoMessages(
  conn: Deno.TcpConn,
  framing: FramingName,
): Promise<void> {
  await readLoop(conn, {
    decoder: FRAMINGS[framing].decoder(1 << 20, { runs: true }),
    onMessages: ([run]) => writeAll(conn, run),
  });
}

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "bench/deno_echo.ts",
    summary: "echo server for the benchmark: our echo and framing paths.",
    role: "server",
    defaultPort: 0,
    flags: FLAGS,
  });
  const listener = listenOrExit(options);
  for await (const conn of accepted(listener)) {
    const serve = options.framing === "raw"
      ? echo(conn)
      : echoMessages(conn, options.framing as FramingName);
    serve.catch(() => {}).finally(() => closeQuietly(conn));
  }
}

if (import.meta.main) await main();
