/**
 * Sandbox chat client: the server's framing, a connect timeout, and chat
 * that appears while you type.
 *
 * Start it with the same `--framing` as the server; if they differ, it
 * says so instead of printing garbage. `--connect-timeout SECONDS` gives up
 * on a server that does not answer (a wrong LAN address, say) instead of
 * waiting for the system's timeout of a minute or two.
 *
 * Try it:
 *   deno run -A sandbox/server.ts --host 0.0.0.0            # on one machine
 *   deno run -A sandbox/client.ts --host 192.168.1.23       # on another
 *   /nick alice, /who, /quit bye                             # then chat
 *
 * @module
 */

import { parseCliOrExit } from "../lib/cli.ts";
import { chatCodec } from "../lib/chat_client.ts";
import { DEFAULT_MAX_MESSAGE } from "../lib/decoder.ts";
import { connectOrExit } from "../lib/net.ts";
import { finishSession, runTerminal, stdioConsole } from "../lib/terminal.ts";

const DEFAULT_PORT = 5003;

const FLAGS = {
  framing: {
    type: "string",
    description: "message framing; must match the server's",
    choices: ["line", "length"],
    default: "line",
  },
  maxFrame: {
    type: "integer",
    description: "largest message accepted from the server, in bytes",
    placeholder: "BYTES",
    min: 1,
    default: DEFAULT_MAX_MESSAGE,
  },
  connectTimeout: {
    type: "seconds",
    description: "give up connecting after SECONDS",
    default: 10,
  },
} as const;

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "sandbox/client.ts",
    summary: "chat playground client; pick the framing, chat while others do.",
    role: "client",
    defaultPort: DEFAULT_PORT,
    flags: FLAGS,
    example: "--host 192.168.1.23 --framing length",
  });

  const conn = await connectOrExit(options, {
    timeoutSeconds: options.connectTimeout,
  });
  const session = runTerminal(conn, {
    console: stdioConsole({ prompt: "> " }),
    quitWord: null, // /quit goes to the server, which tells the others
    ...chatCodec(options.framing, options.maxFrame),
  });
  await finishSession(session, { conn, endpoint: options });
}

if (import.meta.main) await main();
