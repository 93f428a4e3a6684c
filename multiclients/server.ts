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
import { DEFAULT_MAX_MESSAGE, FramingError } from "../lib/decoder.ts";
import { encodeLine } from "../lib/encoders.ts";
import {
  describePeerError,
  exitWithError,
  explainNetError,
  isDisconnect,
} from "../lib/errors.ts";
import { idleTimer } from "../lib/idle_timer.ts";
import { closeQuietly, tryWriteAll, writeAll } from "../lib/io.ts";
import { LineDecoder } from "../lib/line_decoder.ts";
import { log, warn } from "../lib/log.ts";
import { accepted, addressOf } from "../lib/net.ts";
import { onShutdown } from "../lib/shutdown.ts";
import { deadline } from "../lib/std.ts";
import { WIRE_FLAG, wireLogFor } from "../lib/wire.ts";
import { wireAccepted } from "../lib/wire_conn.ts";

const DEFAULT_PORT = 5001;

const options = parseCliOrExit(Deno.args, {
  script: "multiclients/server.ts",
  summary:
    "iterative line server; serves clients one at a time, echoing lines.",
  role: "server",
  defaultPort: DEFAULT_PORT,
  flags: {
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
    wire: WIRE_FLAG,
  },
  example: "--max-clients 4",
});
// --wire: every socket call and its bytes on stderr, lines marked.
const wire = wireLogFor(options.wire, { framing: "line" });

async function main(): Promise<void> {
  // Ctrl+C first: the client being served gets a goodbye, whenever it comes.
  let listener: Deno.TcpListener | undefined = undefined;
  let current: Deno.TcpConn | undefined;
  let stopping: Promise<void> | undefined;
  onShutdown((signal) => {
    log(`${signal}: shutting down`);
    // Mid-session, the loop below stops after it; else accept() stops now.
    stopping = (async () => {
      if (!current) return listener?.close();
      await goodbye(current, "* server shutting down");
      await tellWaiting(listener!, "* server shutting down");
    })();
  });

  // socket() + bind() + listen(): one call.
  try {
    listener = Deno.listen({ hostname: options.host, port: options.port });
  } catch (error) {
    exitWithError(explainNetError(error, { action: "listen", ...options }));
  }
  log(`listening on ${addressOf(listener.addr)}`);

  // accept() one client at a time; serve it to completion; repeat.
  // (accepted() is the listener's accept loop, minus the clients that reset
  // before we got to them: see lib/net.ts.)
  let served = 0;
  for await (const accept of accepted(listener)) {
    const conn = wireAccepted(accept, wire);
    current = conn;
    await serve(conn, ++served);
    current = undefined;
    const done = served === options.maxClients;
    if (stopping) break;
    log(
      `${served} client${served === 1 ? "" : "s"} served${
        done ? "" : "; accepting the next"
      }`,
    );
    if (done) break;
  }
  await stopping; // the clients still waiting are told before we close
  closeQuietly(listener);
  log("bye");
}

/** One client's whole session: greeting, then every line echoed. */
async function serve(conn: Deno.TcpConn, number: number): Promise<void> {
  const peer = addressOf(conn.remoteAddr);
  log(`serving ${peer} (client #${number}); anyone else waits in the backlog`);
  const seconds = options.idleTimeout;
  using idle = idleTimer(conn, {
    ms: seconds * 1000,
    onIdle: async () => {
      warn(`${peer} idle for ${seconds} s; disconnecting`);
      await tryWriteAll(
        conn,
        encodeLine(`* idle for ${seconds} s; disconnecting`),
        500,
      );
    },
  });
  try {
    await writeAll(
      conn,
      encodeLine(
        `* hello ${peer}, you are client #${number}; send lines and they come back`,
      ),
    );
    // recv(): split what arrives into lines; an unfinished line waits for
    // the next read (one read is not one line). runs: all the complete lines
    // of a read come as one view, exactly as they came.
    const lines = new LineDecoder({ maxLength: options.maxLine, runs: true });
    const buffer = new Uint8Array(64 * 1024);
    let heard = false;
    for (
      let n = await conn.read(buffer);
      n !== null;
      n = await conn.read(buffer)
    ) {
      heard = true;
      const [run] = lines.push(buffer.subarray(0, n));
      if (run === undefined) continue;
      idle.touch();
      await writeAll(conn, run); // send(): the lines go back in one write
    }
    const last = lines.end(); // a last line without "\n" still counts
    if (last !== null) await writeAll(conn, last);
    // A client that gave up while it waited in the backlog is accept()ed
    // all the same: its end of stream was already there, nothing before it.
    log(heard ? `${peer} left` : `${peer} left without sending anything`);
  } catch (error) {
    if (error instanceof FramingError) {
      warn(`${peer}: ${error.message}; disconnecting`);
      await goodbye(conn, `* ${error.message}; disconnecting`);
    } else if (isDisconnect(error)) {
      warn(`${peer} ${describePeerError(error)}`);
    } else if (!idle.fired && !closedHere(error)) {
      throw error;
    }
  }
  // close()
  closeQuietly(conn);
}

/**
 * accept()s the clients still waiting in the backlog and tells them `text`
 * (closing the listener would reset them): until none comes within 50 ms,
 * and for 1 s at most (a crowd that keeps connecting is not served forever).
 */
async function tellWaiting(
  listener: Deno.TcpListener,
  text: string,
): Promise<void> {
  const until = Date.now() + 1000;
  while (Date.now() < until) {
    let conn: Deno.TcpConn;
    try {
      conn = await deadline(listener.accept(), 50);
    } catch {
      return; // none waiting (or the listener closed)
    }
    await goodbye(conn, text);
  }
}

/** Whether `error` is a read on a connection we closed (a shutdown). */
function closedHere(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted;
}

/** A last line to the client, then close(): best effort, never blocks long. */
async function goodbye(conn: Deno.Conn, text: string): Promise<void> {
  await tryWriteAll(conn, encodeLine(text), 500);
  closeQuietly(conn);
}

await main().catch((error) => exitWithError(String(error?.message ?? error)));
