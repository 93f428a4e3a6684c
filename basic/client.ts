/**
 * Echo client: sends what you type, prints what comes back.
 *
 * Type a line and the server echoes it; `quit` or Ctrl+D ends the session
 * once every reply has arrived. Piped input works too, byte for byte:
 *   echo hi | deno run -A basic/client.ts      # prints "hi"
 *
 * Try it:
 *   deno run -A basic/server.ts          # terminal A
 *   deno run -A basic/client.ts          # terminal B
 *
 * @module
 */

import { parseCliOrExit } from "../lib/cli.ts";
import { connectOrExit } from "../lib/net.ts";
import { finishSession, runTerminal, stdioConsole } from "../lib/terminal.ts";

const DEFAULT_PORT = 5000;

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "basic/client.ts",
    summary: "echo client; sends each line typed or piped in, prints the echo.",
    role: "client",
    defaultPort: DEFAULT_PORT,
  });

  // socket() + connect()
  const conn = await connectOrExit(options);

  // send() / recv() until quit or end of input, then close().
  const session = runTerminal(conn, {
    console: stdioConsole({ prompt: "> " }),
  });
  await finishSession(session, { conn, endpoint: options });
}

if (import.meta.main) await main();
