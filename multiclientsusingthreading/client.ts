/**
 * Chat client: what others say appears while you type.
 *
 * Two things happen at once on one connection: lines typed go to the
 * server, and lines from the server (others' messages, `* ` notices) are
 * printed above the line being typed, which is then redrawn, so neither
 * mangles the other. Text from the server is sanitized again before it
 * reaches the terminal. `/quit [message]` says goodbye to the others;
 * Ctrl+D leaves too, and Ctrl+C at once. Piped input works as well:
 *   printf 'hi\n' | deno run -A multiclientsusingthreading/client.ts
 *
 * Try it:
 *   deno run -A multiclientsusingthreading/server.ts     # terminal A
 *   deno run -A multiclientsusingthreading/client.ts     # terminals B and C: chat
 *
 * @module
 */

import { lineChatCodec } from "../lib/chat_client.ts";
import { runChatSession } from "../lib/chat_session.ts";
import { parseCliOrExit } from "../lib/cli.ts";
import { CONNECT_FLAGS } from "../lib/connect.ts";
import { WIRE_FLAG, wireLogFor } from "../lib/wire.ts";
import { quitNotes, stdioConsole } from "../lib/terminal.ts";
import { TLS_CLIENT_FLAGS, tlsClientProblem } from "../lib/tls_options.ts";

const DEFAULT_PORT = 5002;

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "multiclientsusingthreading/client.ts",
    summary: "chat client; shows others' messages while you type.",
    role: "client",
    defaultPort: DEFAULT_PORT,
    flags: { ...CONNECT_FLAGS, ...TLS_CLIENT_FLAGS, wire: WIRE_FLAG },
    notes: quitNotes("send"),
    check: tlsClientProblem,
  });
  const console = stdioConsole({ prompt: "> ", quit: "send" });
  // --wire: every socket call and its bytes, above the line being typed.
  const wire = wireLogFor(options.wire, {
    framing: "line",
    write: (line) => void console.aside(line),
  });
  const codec = lineChatCodec();
  // Connect, then type and read at once: basic/client.ts's socket calls,
  // line by line (lib/chat_session.ts).
  await runChatSession({ ...options, codec, console, wire });
}

if (import.meta.main) await main();
