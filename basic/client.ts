/**
 * Echo client: sends what you type, prints what comes back.
 *
 * Each line typed (or piped in) is sent, and the echo shown as it arrives.
 * `/quit` or Ctrl+D ends the session once every reply is back; Ctrl+C
 * ends it at once. Piped input works too, byte for byte:
 *   echo hi | deno run -A basic/client.ts      # prints "hi"
 *
 * Try it:
 *   deno run -A basic/server.ts          # terminal A
 *   deno run -A basic/client.ts          # terminal B
 *
 * @module
 */

import { parseCliOrExit } from "../lib/cli.ts";
import { CONNECT_FLAGS, connecting, connectSignal } from "../lib/connect.ts";
import { WIRE_FLAG, wireLogFor } from "../lib/wire.ts";
import { wireConnected } from "../lib/wire_conn.ts";
import { explainNetError } from "../lib/errors.ts";
import { READ_BUFFER_SIZE, writeAll } from "../lib/io.ts";
import { type Console, quitNotes, stdioConsole } from "../lib/terminal.ts";

const DEFAULT_PORT = 5000;

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "basic/client.ts",
    summary: "echo client; sends each line typed or piped in, prints the echo.",
    role: "client",
    defaultPort: DEFAULT_PORT,
    flags: { ...CONNECT_FLAGS, wire: WIRE_FLAG },
    notes: quitNotes("end"),
  });
  const console = stdioConsole({ prompt: "> ", quit: "end" });
  // --wire: every socket call and its bytes, above the line being typed.
  const wire = wireLogFor(options.wire, {
    framing: "none",
    write: (line) => void console.aside(line),
  });
  let conn: Deno.TcpConn | undefined;
  try {
    // socket() + connect(): the handshake with the server. After a second
    // we say so; after --connect-timeout we give up.
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
    // Send each line at once: Nagle's algorithm would hold small writes back.
    conn.setNoDelay(true);
    // recv() meanwhile: each echo is shown as it arrives.
    const receiving = receive(conn, console);
    // send() each line until /quit or end of input (the server closing
    // first is an error); writeAll, as one write may send less than asked.
    for await (const line of console.lines({ until: receiving })) {
      await writeAll(conn, line);
    }
    // shutdown(SHUT_WR): "I am done sending, keep the replies coming".
    await conn.closeWrite();
    await receiving;
    // close(): the server closed its side too; release the socket.
    conn.close();
  } catch (error) {
    const action = conn ? "transfer" : "connect";
    await console.fail(explainNetError(error, { action, ...options }));
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
