/**
 * Sandbox chat client: the server's framing, and chat that appears while
 * you type.
 *
 * Start it with the same `--framing` as the server; if they differ, it
 * says so instead of printing garbage. `/quit [message]` says goodbye to
 * the others; Ctrl+D leaves too, and Ctrl+C at once. `--naive` reads the
 * wrong way on purpose, one read taken for one message, to watch it break
 * (best through `sandbox/proxy.ts --chunk 1 --delay 20`, or `--merge 50`).
 *
 * Try it:
 *   deno run -A sandbox/server.ts --host 0.0.0.0            # on one machine
 *   deno run -A sandbox/client.ts --host 192.168.1.23       # on another
 *   /nick alice, /who, /quit bye                             # then chat
 *
 * @module
 */

import { chatCodec, naiveCodec } from "../lib/chat_client.ts";
import { runChatSession } from "../lib/chat_session.ts";
import { parseCliOrExit } from "../lib/cli.ts";
import { CONNECT_FLAGS } from "../lib/connect.ts";
import { WIRE_FLAG, wireLogFor } from "../lib/wire.ts";
import { DEFAULT_MAX_MESSAGE } from "../lib/decoder.ts";
import { quitNotes, stdioConsole } from "../lib/terminal.ts";
import { TLS_CLIENT_FLAGS, tlsClientProblem } from "../lib/tls_options.ts";

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
  naive: {
    type: "boolean",
    description: "the wrong way, to watch it break: take one read for one " +
      "message (one read is not one message)",
  },
  ...CONNECT_FLAGS,
  ...TLS_CLIENT_FLAGS,
  wire: WIRE_FLAG,
} as const;

/** Said at the start of a `--naive` session. */
const NAIVE_WARNING = "--naive: each read is taken for one message, the " +
  "wrong way: one read is not one message. Watch what breaks.";

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "sandbox/client.ts",
    summary: "chat playground client; pick the framing, chat while others do.",
    role: "client",
    defaultPort: DEFAULT_PORT,
    flags: FLAGS,
    example: "--host 192.168.1.23 --framing length",
    check: tlsClientProblem,
    notes: quitNotes("send"),
  });
  const console = stdioConsole({ prompt: "> ", quit: "send" });
  // --wire: every socket call and its bytes, above the line being typed.
  const wire = wireLogFor(options.wire, {
    framing: options.framing,
    write: (line) => void console.aside(line),
  });
  const codec = options.naive
    ? naiveCodec(options.framing)
    : chatCodec(options.framing, options.maxFrame);
  if (options.naive) await console.status(NAIVE_WARNING);
  // Connect, then type and read at once: basic/client.ts's socket calls,
  // framed by the codec (lib/chat_session.ts).
  await runChatSession({ ...options, codec, console, wire });
}

if (import.meta.main) await main();
