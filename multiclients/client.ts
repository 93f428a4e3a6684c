/**
 * Client of the iterative server: connects at once, then waits its turn.
 *
 * connect() succeeds as soon as the kernel queues us in the server's listen
 * backlog, long before the server accept()s us. So the client says it is
 * waiting until the server's greeting line arrives; then, like the basic
 * client, every line typed (or piped in) comes back. A line typed while we
 * wait is sent at once: the kernel holds it for the server. `/quit` or
 * Ctrl+D ends the session once every reply is back (at once while we wait
 * with nothing sent: we leave the queue); Ctrl+C ends it at once.
 *
 * Try it:
 *   deno run -A multiclients/server.ts       # terminal A
 *   deno run -A multiclients/client.ts       # terminal B: served
 *   deno run -A multiclients/client.ts       # terminal C: waits until B quits
 *
 * @module
 */

import { parseCliOrExit } from "../lib/cli.ts";
import { CONNECT_FLAGS, connecting, connectSignal } from "../lib/connect.ts";
import { WIRE_FLAG, wireLogFor } from "../lib/wire.ts";
import { wireConnected } from "../lib/wire_conn.ts";
import { explainNetError, ServerClosedError } from "../lib/errors.ts";
import { READ_BUFFER_SIZE, writeAll } from "../lib/io.ts";
import { addressOf } from "../lib/net.ts";
import { settledWithin } from "../lib/std.ts";
import { type Console, quitNotes, stdioConsole } from "../lib/terminal.ts";

const DEFAULT_PORT = 5001;
/** How long the greeting may take before we tell the user we are queued. */
const PATIENCE_MS = 200;
/** What the server tells the clients still queued when it stops, instead of a greeting. */
const SHUTDOWN_NOTICE = "* server shutting down";
const textDecoder = new TextDecoder();

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "multiclients/client.ts",
    summary:
      "client of the iterative server; waits for its turn, then echoes lines.",
    role: "client",
    defaultPort: DEFAULT_PORT,
    flags: { ...CONNECT_FLAGS, wire: WIRE_FLAG },
    notes: quitNotes("end"),
  });
  const console = stdioConsole({ prompt: "> ", quit: "end" });
  // --wire: every socket call and its bytes, above the line being typed.
  const wire = wireLogFor(options.wire, {
    framing: "line",
    write: (line) => void console.aside(line),
  });
  let conn: Deno.TcpConn | undefined;
  try {
    // socket() + connect(): done once the kernel queues us in the
    // server's backlog. After a second we say so; after --connect-timeout
    // we give up.
    {
      using _status = connecting(options);
      conn = wireConnected(
        await Deno.connect({
          hostname: options.host,
          port: options.port,
          signal: connectSignal(options),
        }),
        wire,
      );
    }
    conn.setNoDelay(true); // each line at once, not held back by Nagle
    // The server accept()s us when its greeting arrives; then recv() as
    // the basic client. Meanwhile, send() each line typed.
    const turn = waitForTurn(conn, console);
    let ourTurn = false;
    const receiving = turn.then(() => {
      ourTurn = true;
      return receive(conn!, console);
    });
    // No greeting within PATIENCE_MS: the server is busy, we are queued.
    const queued = settledWithin(turn, PATIENCE_MS).then((greeted) => {
      if (!greeted) {
        void console.status(
          `connected to ${addressOf(conn!.remoteAddr)}; the server is busy ` +
            `with another client: waiting for our turn…`,
        );
      }
      return !greeted;
    });
    let sent = 0;
    for await (const line of console.lines({ until: receiving })) {
      await writeAll(conn, line);
      sent++;
    }
    if (await queued && !ourTurn) {
      if (sent === 0) {
        // No reply is due: leave the queue. The server finds us gone when
        // it accept()s us; our pending recv() ends with the close.
        receiving.catch(() => {});
        conn.close();
        await console.status("left the queue before our turn");
        return;
      }
      await console.status(
        `ending after our turn, when the ${
          sent === 1 ? "line" : `${sent} lines`
        } sent meanwhile ${sent === 1 ? "has" : "have"} come back ` +
          `(Ctrl+C leaves now)`,
      );
    }
    // shutdown(SHUT_WR): "I am done sending, keep the replies coming".
    await conn.closeWrite();
    await receiving;
    conn.close();
  } catch (error) {
    const action = conn ? "transfer" : "connect";
    await console.fail(explainNetError(error, { action, ...options }));
  }
}

/**
 * Reads until the greeting line arrives; once we were queued, says when
 * our turn came. A server that stops while we wait says so instead.
 */
async function waitForTurn(
  conn: Deno.TcpConn,
  console: Console,
): Promise<void> {
  const since = Date.now();
  const buffer = new Uint8Array(READ_BUFFER_SIZE);
  let firstLine = ""; // its start: enough to tell a shutdown notice
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) {
      throw new ServerClosedError(
        "the server closed the connection before greeting us.",
      );
    }
    const end = buffer.subarray(0, n).indexOf(0x0a); // the line's "\n"
    const line = buffer.subarray(0, end === -1 ? n : end + 1);
    firstLine = (firstLine + textDecoder.decode(line.subarray(0, 64)))
      .slice(0, 64);
    await console.show(line);
    if (end === -1) continue;
    if (firstLine.trimEnd() === SHUTDOWN_NOTICE) {
      throw new ServerClosedError(
        "the server is shutting down; it closed the connection before our turn.",
      );
    }
    const waited = Date.now() - since;
    if (waited >= PATIENCE_MS) {
      await console.status(`our turn, after ${(waited / 1000).toFixed(1)} s`);
    }
    // Replies to lines sent while we waited may follow in the same read.
    if (end + 1 < n) await console.show(buffer.subarray(end + 1, n));
    return;
  }
}

/** recv() until the server closes its side (a read of `null`). */
async function receive(conn: Deno.Conn, console: Console): Promise<void> {
  const buffer = new Uint8Array(READ_BUFFER_SIZE);
  for (
    let n = await conn.read(buffer);
    n !== null;
    n = await conn.read(buffer)
  ) {
    await console.show(buffer.subarray(0, n));
  }
}

if (import.meta.main) await main();
