/**
 * A chat client's whole session, as both chat clients run it: connect (TCP,
 * or TLS verified before a byte is sent), then send what is typed while
 * showing what arrives, until `/quit`, the end of input, or the server
 * closing.
 *
 * The socket calls are those `basic/client.ts` shows one by one:
 * `Deno.connect`, a read loop beside the writes, `closeWrite()` when the
 * user is done, `close()` once the server closed too (or after 3 s: a
 * server that never closes is not waited for). The codec
 * (`chat_client.ts`) frames what is sent and finds the messages in what
 * arrives.
 *
 * @example
 * ```ts ignore
 * import { runChatSession } from "./chat_session.ts";
 * import { lineChatCodec } from "./chat_client.ts";
 * import { stdioConsole } from "./terminal.ts";
 * await runChatSession({
 *   host: "127.0.0.1", port: 5002, tls: false,
 *   codec: lineChatCodec(), console: stdioConsole({ prompt: "> ", quit: "send" }),
 * });
 * ```
 *
 * @module
 */

import type { ChatCodec } from "./chat_client.ts";
import { connecting, connectSignal, type ConnectTarget } from "./connect.ts";
import { explainNetError } from "./errors.ts";
import { READ_BUFFER_SIZE, writeAll } from "./io.ts";
import { settledWithin } from "./std.ts";
import type { Console } from "./terminal.ts";
import {
  connectTls,
  type ConnectTlsOptions,
  type StreamConn,
  TlsError,
} from "./tls.ts";
import { warnInsecure } from "./tls_options.ts";
import type { WireLog } from "./wire.ts";
import { wireConnected } from "./wire_conn.ts";

/** What {@linkcode runChatSession} needs: where, how, and the two ends. */
export interface ChatSessionOptions
  extends ConnectTarget, Omit<ConnectTlsOptions, "signal"> {
  /** `--tls`: speak TLS, verified as `ca`, `fingerprint` or `insecure` say. */
  tls: boolean;
  /** Frames what is typed; finds the messages in what arrives. */
  codec: ChatCodec;
  /** The user's side (a terminal or pipes). */
  console: Console;
  /** `--wire`: show every socket call and its bytes. */
  wire?: WireLog;
}

/**
 * Runs the session to its end; every failure is said to the user in one
 * sentence (`console.fail`), never thrown.
 *
 * @example
 * ```ts ignore
 * import { runChatSession } from "./chat_session.ts";
 * await runChatSession({ ...options, codec, console });
 * ```
 */
export async function runChatSession(
  options: ChatSessionOptions,
): Promise<void> {
  const { codec, console } = options;
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
      conn = wireConnected(conn, options.wire);
    }
    // recv() meanwhile: others' messages appear while we type.
    const receiving = receive(conn, console, codec, { tls: options.tls });
    // send() each line typed, framed; /quit included (the server says goodbye).
    for await (const line of console.lines({ until: receiving })) {
      await writeAll(conn, codec.encode(line));
    }
    // shutdown(SHUT_WR): we are done; the server closes once it is too.
    await conn.closeWrite();
    if (!await settledWithin(receiving, LEAVE_WAIT_MS)) {
      // a server that never closes its side is not waited for
      await console.status(
        `the server did not close the connection within ${
          LEAVE_WAIT_MS / 1000
        } s after we left; closing it`,
      );
      conn.close();
      await receiving.catch(() => {}); // closed here: its read ends
      return;
    }
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

/** How long a client that left waits for the server to close its side. */
const LEAVE_WAIT_MS = 3000;

/** How long a client waits for the server's welcome before it says what may be wrong. */
const SILENT_SERVER_MS = 3000;

/**
 * recv() until the server closes its side; the codec finds the messages.
 * A chat server welcomes at once; one that says nothing may be waiting
 * for a TLS handshake this plain client will never send.
 */
async function receive(
  conn: StreamConn,
  console: Console,
  codec: ChatCodec,
  options: { tls: boolean },
): Promise<void> {
  const buffer = new Uint8Array(READ_BUFFER_SIZE);
  const silent = options.tls ? undefined : setTimeout(
    () =>
      void console.status(
        `no word from the server after ${SILENT_SERVER_MS / 1000} s; ` +
          "if it was started with --tls, start this client with --tls too",
      ),
    SILENT_SERVER_MS,
  );
  try {
    for (
      let n = await conn.read(buffer);
      n !== null;
      n = await conn.read(buffer)
    ) {
      clearTimeout(silent);
      await console.show(codec.render(buffer.subarray(0, n)));
    }
  } finally {
    clearTimeout(silent);
  }
  await console.show(codec.end()); // throws for a frame cut short
}
