/**
 * Echo server: serves one client from accept() to close(), then exits.
 *
 * Every byte the client sends comes back unchanged and in order (binary
 * safe, like RFC 862's echo service). The server prints each step of the
 * socket's life as it happens.
 *
 * Try it:
 *   deno run -A basic/server.ts          # terminal A
 *   deno run -A basic/client.ts          # terminal B, or: nc 127.0.0.1 5000
 *
 * @module
 */

import { parseCliOrExit } from "../lib/cli.ts";
import {
  describePeerError,
  exitWithError,
  explainNetError,
  isDisconnect,
} from "../lib/errors.ts";
import { writeAll } from "../lib/io.ts";
import { log, warn } from "../lib/log.ts";
import { addressOf } from "../lib/net.ts";
import { WIRE_FLAG, wireLogFor } from "../lib/wire.ts";
import { wireAccepted } from "../lib/wire_conn.ts";

const DEFAULT_PORT = 5000;

const options = parseCliOrExit(Deno.args, {
  script: "basic/server.ts",
  summary: "echo server; serves one client, echoing every byte, then exits.",
  role: "server",
  defaultPort: DEFAULT_PORT,
  flags: { wire: WIRE_FLAG },
});
// --wire: every socket call and its bytes on stderr.
const wire = wireLogFor(options.wire, { framing: "none" });

async function main(): Promise<void> {
  // socket() + bind() + listen(): one call. If the port is taken, say so.
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: options.host, port: options.port });
  } catch (error) {
    exitWithError(explainNetError(error, { action: "listen", ...options }));
  }
  log(`listening on ${addressOf(listener.addr)}`);

  // accept(): wait for one client; then stop listening, as we serve only one.
  const conn = wireAccepted(await listener.accept(), wire);
  listener.close();
  const peer = addressOf(conn.remoteAddr);
  log(`accepted ${peer}`);

  // recv() / send(): whatever arrived goes back, until the client closes
  // its side (read() returns null, as recv() returns 0 bytes in C).
  const buffer = new Uint8Array(64 * 1024);
  let echoed = 0;
  try {
    for (
      let n = await conn.read(buffer);
      n !== null;
      n = await conn.read(buffer)
    ) {
      await writeAll(conn, buffer.subarray(0, n)); // a write may take only part
      echoed += n;
    }
    log(`${peer} closed its side after ${echoed} bytes echoed`);
  } catch (error) {
    if (!isDisconnect(error)) throw error;
    // The client vanished mid-transfer (reset): its session ends, not us.
    warn(`${peer} ${describePeerError(error)} after ${echoed} bytes echoed`);
  }

  // close()
  conn.close();
  log(`closed ${peer}; bye`);
}

// Any other failure is one sentence, never a stack trace.
await main().catch((error) => exitWithError(String(error?.message ?? error)));
