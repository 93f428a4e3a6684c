/**
 * Client of the iterative server: connects at once, then waits its turn.
 *
 * connect() succeeds as soon as the kernel queues us in the server's listen
 * backlog, long before the server accept()s us. So the client says it is
 * waiting until the server's greeting line arrives; then, like the basic
 * client, every line typed (or piped in) comes back.
 *
 * Try it:
 *   deno run -A multiclients/server.ts       # terminal A
 *   deno run -A multiclients/client.ts       # terminal B: served
 *   deno run -A multiclients/client.ts       # terminal C: waits until B quits
 *
 * @module
 */

import { parseCliOrExit } from "../lib/cli.ts";
import { exitWithError } from "../lib/errors.ts";
import { READ_BUFFER_SIZE } from "../lib/io.ts";
import { addressOf, connectOrExit } from "../lib/net.ts";
import {
  type Console,
  finishSession,
  runTerminal,
  stdioConsole,
} from "../lib/terminal.ts";
import { concat } from "../lib/std.ts";

const DEFAULT_PORT = 5001;
/** How long the greeting may take before we tell the user we are queued. */
const PATIENCE_MS = 200;

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "multiclients/client.ts",
    summary:
      "client of the iterative server; waits for its turn, then echoes lines.",
    role: "client",
    defaultPort: DEFAULT_PORT,
  });

  const conn = await connectOrExit(options);
  const console = stdioConsole({ prompt: "> " });
  const session = waitForTurn(conn, console).then(() =>
    runTerminal(conn, { console })
  );
  await finishSession(session, { conn, endpoint: options });
}

/** Reads until the greeting line arrives, telling the user while we wait. */
async function waitForTurn(
  conn: Deno.TcpConn,
  console: Console,
): Promise<void> {
  const since = Date.now();
  const notice = setTimeout(() => {
    status(
      `connected to ${addressOf(conn.remoteAddr)}; the server is busy with ` +
        `another client: waiting for our turn...`,
    );
  }, PATIENCE_MS);
  try {
    const received = await readFirstLine(conn);
    if (Date.now() - since >= PATIENCE_MS) {
      status(`our turn, after ${((Date.now() - since) / 1000).toFixed(1)} s`);
    }
    await console.show(received);
  } finally {
    clearTimeout(notice);
  }
}

/** Bytes up to and including the first "\n" (and whatever came with it). */
async function readFirstLine(conn: Deno.Conn): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buffer = new Uint8Array(READ_BUFFER_SIZE);
  let total = 0;
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) {
      exitWithError("the server closed the connection before greeting us.");
    }
    parts.push(buffer.slice(0, n));
    total += n;
    if (buffer.subarray(0, n).includes(0x0a) || total > READ_BUFFER_SIZE) {
      return concat(parts);
    }
  }
}

/** Status for the user, on stderr so that piped output stays the server's. */
function status(text: string): void {
  globalThis.console.error(`-- ${text}`);
}

if (import.meta.main) await main();
