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

import { type ChatCodec, lineChatCodec } from "../lib/chat_client.ts";
import { parseCliOrExit } from "../lib/cli.ts";
import { CONNECT_FLAGS, connecting, connectSignal } from "../lib/connect.ts";
import { WIRE_FLAG, wireLogFor } from "../lib/wire.ts";
import { wireConnected } from "../lib/wire_conn.ts";
import { explainNetError } from "../lib/errors.ts";
import { READ_BUFFER_SIZE, writeAll } from "../lib/io.ts";
import { type Console, quitNotes, stdioConsole } from "../lib/terminal.ts";
import { connectTls, type StreamConn, TlsError } from "../lib/tls.ts";
import { TLS_CLIENT_FLAGS, warnInsecure } from "../lib/tls_options.ts";

const DEFAULT_PORT = 5002;

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "multiclientsusingthreading/client.ts",
    summary: "chat client; shows others' messages while you type.",
    role: "client",
    defaultPort: DEFAULT_PORT,
    flags: { ...CONNECT_FLAGS, ...TLS_CLIENT_FLAGS, wire: WIRE_FLAG },
    notes: quitNotes("send"),
  });
  // --wire: every socket call and its bytes on stderr.
  const wire = wireLogFor(options.wire, { framing: "line" });
  const console = stdioConsole({ prompt: "> ", quit: "send" });
  const codec = lineChatCodec();
  if (options.tls && options.insecure) warnInsecure();
  let conn: StreamConn | undefined;
  try {
    // socket() + connect(); after --connect-timeout we give up. With --tls,
    // the server's certificate is checked before a byte is sent.
    {
      using _status = connecting(options);
      const signal = connectSignal(options);
      if (options.tls) {
        conn = await connectTls(options, { ...options, signal });
      } else {
        const tcp = await Deno.connect({
          hostname: options.host,
          port: options.port,
          signal,
        });
        tcp.setNoDelay(true); // each line at once, not held back by Nagle
        conn = tcp;
      }
      conn = wireConnected(conn, wire);
    }
    // recv() meanwhile: others' lines appear while we type.
    const receiving = receive(conn, console, codec);
    // send() each line typed, /quit included (the server says goodbye).
    for await (const line of console.lines({ until: receiving })) {
      await writeAll(conn, codec.encode(line));
    }
    // shutdown(SHUT_WR): we are done; the server closes once it is too.
    await conn.closeWrite();
    await receiving;
    conn.close();
  } catch (error) {
    const action = conn ? "transfer" : "connect";
    await console.fail(
      error instanceof TlsError
        ? error.message
        : explainNetError(error, { action, ...options }),
    );
  }
}

/** recv() until the server closes its side, showing each line. */
async function receive(
  conn: StreamConn,
  console: Console,
  codec: ChatCodec,
): Promise<void> {
  const buffer = new Uint8Array(READ_BUFFER_SIZE);
  for (
    let n = await conn.read(buffer);
    n !== null;
    n = await conn.read(buffer)
  ) {
    await console.show(codec.render(buffer.subarray(0, n)));
  }
  await console.show(codec.end());
}

if (import.meta.main) await main();
