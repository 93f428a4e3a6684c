/**
 * Iterative line server: many clients, served one at a time.
 *
 * The server loops on accept() and serves each client to completion before
 * accepting the next; clients that connect meanwhile wait in the kernel's
 * listen backlog (their connect() already succeeded). When its turn comes,
 * a client gets one greeting line, then every line it sends comes back.
 *
 * Try it:
 *   deno run -A multiclients/server.ts       # terminal A
 *   deno run -A multiclients/client.ts       # terminals B, C, D: only one is served
 *   nc 127.0.0.1 5001                        # or any line-based tool
 *
 * @module
 */

import { parseCliOrExit } from "../lib/cli.ts";
import { describePeerError } from "../lib/errors.ts";
import { DEFAULT_MAX_MESSAGE } from "../lib/decoder.ts";
import { encodeLine } from "../lib/encoders.ts";
import { LineDecoder } from "../lib/line_decoder.ts";
import { closeQuietly, tryWriteAll, writeAll } from "../lib/io.ts";
import { log, warn } from "../lib/log.ts";
import { accepted, addressOf, listenOrExit, sayListening } from "../lib/net.ts";
import { readLoop } from "../lib/read_loop.ts";
import { onShutdown } from "../lib/shutdown.ts";

const DEFAULT_PORT = 5001;

const FLAGS = {
  maxClients: {
    type: "integer",
    description: "exit 0 after serving N clients (default: serve forever)",
    min: 1,
  },
  idleTimeout: {
    type: "seconds",
    description: "end a session after SECONDS without a complete line",
    default: 300,
  },
  maxLine: {
    type: "integer",
    description: "longest line accepted, in bytes",
    placeholder: "BYTES",
    min: 1,
    default: DEFAULT_MAX_MESSAGE,
  },
} as const;

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "multiclients/server.ts",
    summary:
      "iterative line server; serves clients one at a time, echoing lines.",
    role: "server",
    defaultPort: DEFAULT_PORT,
    flags: FLAGS,
    example: "--max-clients 4",
  });

  // socket() + bind() + listen(); we say so once Ctrl+C is handled too
  const listener = listenOrExit(options, { quiet: true });
  let current: Deno.TcpConn | undefined;
  onShutdown(async (signal) => {
    log(`${signal}: shutting down`);
    listener.close();
    if (current) await goodbye(current, "* server shutting down");
  });
  sayListening(listener.addr);

  // accept() one client at a time; serve it to completion; repeat.
  let served = 0;
  for await (const conn of accepted(listener)) {
    current = conn;
    served++;
    await serve(conn, served, options);
    current = undefined;
    const done = served === options.maxClients;
    log(
      `${served} client${served === 1 ? "" : "s"} served${
        done ? "" : "; accepting the next"
      }`,
    );
    if (done) break;
  }
  closeQuietly(listener);
  log("bye");
}

/** One client's whole session: greeting, then every line echoed. */
async function serve(
  conn: Deno.TcpConn,
  number: number,
  options: { idleTimeout: number; maxLine: number },
): Promise<void> {
  const peer = addressOf(conn.remoteAddr);
  log(`serving ${peer} (client #${number}); anyone else waits in the backlog`);
  try {
    await writeAll(
      conn,
      encodeLine(
        `* hello ${peer}, you are client #${number}; send lines and they come back`,
      ),
    );
  } catch (error) {
    warn(`${peer} ${describePeerError(error)}`);
    closeQuietly(conn);
    return;
  }

  const end = await readLoop(conn, {
    // runs: the lines one read completed come as one view, as they came.
    decoder: new LineDecoder({ maxLength: options.maxLine, runs: true }),
    // recv() → send(): they go back in one write (a run is one view).
    onMessages: ([run]) => writeAll(conn, run),
    idleTimeoutMs: options.idleTimeout * 1000,
    onIdle: async () => {
      warn(`${peer} idle for ${options.idleTimeout} s; closing`);
      await tryWriteAll(
        conn,
        encodeLine(`* idle for ${options.idleTimeout} s; bye`),
        500,
      );
    },
  });

  switch (end.kind) {
    case "eof":
      log(`${peer} left`);
      break;
    case "reset":
      warn(`${peer} ${describePeerError(end.error)}`);
      break;
    case "framing":
      warn(`${peer}: ${end.error.message}; closing`);
      await goodbye(conn, `* ${end.error.message}; closing the connection`);
      break;
    case "idle":
    case "closed":
      break;
  }
  closeQuietly(conn);
}

/** A last line to the client, then close(): best effort, never blocks long. */
async function goodbye(conn: Deno.Conn, text: string): Promise<void> {
  await tryWriteAll(conn, encodeLine(text), 500);
  closeQuietly(conn);
}

if (import.meta.main) await main();
