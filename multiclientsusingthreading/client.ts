/**
 * Chat client: what others say appears while you type.
 *
 * Two things happen at once: lines typed go to the server, and lines from
 * the server (other clients' messages, `* ` notices) are printed above the
 * line being typed, which is then redrawn, so neither mangles the other.
 * Text from the server is sanitized again before it reaches the terminal.
 * Piped input works too: `printf 'hi\n' | deno run -A ...client.ts`.
 *
 * Try it:
 *   deno run -A multiclientsusingthreading/server.ts     # terminal A
 *   deno run -A multiclientsusingthreading/client.ts     # terminals B and C: chat
 *
 * @module
 */

import { parseCliOrExit } from "../lib/cli.ts";
import { connectOrExit } from "../lib/net.ts";
import { lineChatCodec } from "../lib/chat_client.ts";
import { finishSession, runTerminal, stdioConsole } from "../lib/terminal.ts";

const DEFAULT_PORT = 5002;

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "multiclientsusingthreading/client.ts",
    summary: "chat client; shows others' messages while you type.",
    role: "client",
    defaultPort: DEFAULT_PORT,
  });

  const conn = await connectOrExit(options);
  const session = runTerminal(conn, {
    console: stdioConsole({ prompt: "> " }),
    quitWord: null, // the server's /quit says goodbye to the others
    ...lineChatCodec(),
  });
  await finishSession(session, { conn, endpoint: options });
}

if (import.meta.main) await main();
