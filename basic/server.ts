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
import { explainNetError, isDisconnect } from "../lib/errors.ts";
import { READ_BUFFER_SIZE, writeAll } from "../lib/io.ts";
import { log, warn } from "../lib/log.ts";
import { accepted, addressOf, listenOrExit } from "../lib/net.ts";

const DEFAULT_PORT = 5000;

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "basic/server.ts",
    summary: "echo server; serves one client, echoing every byte, then exits.",
    role: "server",
    defaultPort: DEFAULT_PORT,
  });

  // socket() + bind() + listen()
  const listener = listenOrExit(options);

  // accept(): wait for one client; then stop listening, as we serve only one.
  // (accepted() skips a client that resets before accept() returns.)
  const conn = (await accepted(listener).next()).value!;
  listener.close();
  const peer = addressOf(conn.remoteAddr);
  log(`accepted ${peer}`);

  // recv() / send() until the client closes its side.
  try {
    const echoed = await echo(conn);
    log(`${peer} closed its side after ${echoed} bytes echoed`);
  } catch (error) {
    if (!isDisconnect(error)) throw error;
    const { hostname: host, port } = conn.remoteAddr;
    warn(explainNetError(error, { action: "transfer", host, port }));
  }

  // close()
  conn.close();
  log(`closed ${peer}; bye`);
}

/**
 * Sends back every byte received until end of stream; returns the count.
 * (The benchmark serves many clients with this same loop.)
 */
export async function echo(conn: Deno.Conn): Promise<number> {
  const buffer = new Uint8Array(READ_BUFFER_SIZE);
  let total = 0;
  for (
    let n = await conn.read(buffer);
    n !== null;
    n = await conn.read(buffer)
  ) {
    await writeAll(conn, buffer.subarray(0, n));
    total += n;
  }
  return total;
}

if (import.meta.main) await main();
