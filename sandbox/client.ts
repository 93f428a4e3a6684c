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

import { type ChatCodec, chatCodec, naiveCodec } from "../lib/chat_client.ts";
import { parseCliOrExit } from "../lib/cli.ts";
import { CONNECT_FLAGS, connecting, connectSignal } from "../lib/connect.ts";
import { WIRE_FLAG, wireLogFor } from "../lib/wire.ts";
import { wireConnected } from "../lib/wire_conn.ts";
import { explainNetError } from "../lib/errors.ts";
import { DEFAULT_MAX_MESSAGE } from "../lib/decoder.ts";
import { READ_BUFFER_SIZE, writeAll } from "../lib/io.ts";
import { type Console, quitNotes, stdioConsole } from "../lib/terminal.ts";
import { connectTls, type StreamConn, TlsError } from "../lib/tls.ts";
import { TLS_CLIENT_FLAGS, warnInsecure } from "../lib/tls_options.ts";

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
    notes: quitNotes("send"),
  });
  // --wire: every socket call and its bytes on stderr.
  const wire = wireLogFor(options.wire, { framing: options.framing });
  const console = stdioConsole({ prompt: "> ", quit: "send" });
  const codec = options.naive
    ? naiveCodec(options.framing)
    : chatCodec(options.framing, options.maxFrame);
  if (options.naive) await console.status(NAIVE_WARNING);
  if (options.tls && options.insecure) warnInsecure();
  let conn: StreamConn | undefined;
  try {
    // socket() + connect(). After a second we say so; after
    // --connect-timeout we give up (a wrong LAN address drops packets).
    // With --tls, the server's certificate is checked before a byte is sent.
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
        tcp.setNoDelay(true); // each message at once, not held back by Nagle
        conn = tcp;
      }
      conn = wireConnected(conn, wire);
    }
    // recv() meanwhile: others' messages appear while we type.
    const receiving = receive(conn, console, codec);
    // send() each line typed, framed; /quit included (the server says goodbye).
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

/** recv() until the server closes its side; the codec finds the messages. */
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
  await console.show(codec.end()); // throws for a frame cut short
}

if (import.meta.main) await main();
