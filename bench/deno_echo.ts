/**
 * Our echo paths, served to many clients at once for `deno task bench`:
 *
 *   --framing raw      basic/server.ts's read/write loop
 *   --framing line     lines through lib/framing's decoder and readLoop
 *   --framing length   4-byte length-prefixed frames, the same way
 *
 * (basic/server.ts itself serves one client and exits: this is its loop,
 * for many clients at once.)
 *
 *   --workers N        N worker threads, each with its own listener on the
 *                      port (reuse-port, Linux), as the threaded chat
 *                      server spreads its clients: for the scaling rows
 *
 *   --tls --cert FILE --key FILE
 *                      the same loops over TLS (`Deno.listenTls`): each
 *                      connection completes its handshake before the echo
 *                      starts, as the chat servers do: for the TLS rows
 *
 * @module
 */

import { parseCliOrExit } from "../lib/cli.ts";
import { type FramingName, FRAMINGS } from "../lib/framing.ts";
import { exitWithError } from "../lib/errors.ts";
import { closeQuietly, READ_BUFFER_SIZE, writeAll } from "../lib/io.ts";
import { accepted, listenOrExit, sayListening } from "../lib/net.ts";
import { readLoop } from "../lib/read_loop.ts";
import { acceptHandshake, type TlsCertificate } from "../lib/tls.ts";
import {
  listenTlsOrExit,
  serverTlsOrExit,
  TLS_SERVER_FLAGS,
} from "../lib/tls_options.ts";

const FLAGS = {
  framing: {
    type: "string",
    description: "raw bytes, or messages in a framing",
    choices: ["raw", "line", "length"],
    default: "raw",
    placeholder: "raw|line|length",
  },
  workers: {
    type: "integer",
    description: "serve from N worker threads (reuse-port, Linux; 0: this one)",
    default: 0,
    min: 0,
    placeholder: "N",
  },
  ...TLS_SERVER_FLAGS,
} as const;

/** What a worker is told: where to listen and how to echo. */
export interface EchoWorkerStart {
  host: string;
  port: number;
  framing: FramingName | "raw";
  /** With TLS: the certificate and key to serve. */
  tls?: TlsCertificate;
}

/** Echoes every byte until end of stream, as basic/server.ts does. */
async function echo(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(READ_BUFFER_SIZE);
  for (
    let n = await conn.read(buffer);
    n !== null;
    n = await conn.read(buffer)
  ) {
    await writeAll(conn, buffer.subarray(0, n));
  }
}

/**
 * Echoes whole messages: the run of complete messages each read brought
 * (checked against the bound, framing bytes and all) goes back in one write,
 * as multiclients/server.ts does with lines.
 */
async function echoMessages(
  conn: Deno.Conn,
  framing: FramingName,
): Promise<void> {
  await readLoop(conn, {
    decoder: FRAMINGS[framing].decoder(1 << 20, { runs: true }),
    onMessages: ([run]) => writeAll(conn, run),
  });
}

/**
 * Serves every connection `listener` accepts with the echo path of
 * `framing`; a TLS connection completes its handshake first.
 */
export async function serveEchoes(
  listener: Deno.Listener,
  framing: FramingName | "raw",
): Promise<void> {
  for await (const conn of accepted(listener)) {
    void serveOne(conn, framing);
  }
}

async function serveOne(
  conn: Deno.Conn,
  framing: FramingName | "raw",
): Promise<void> {
  // a failed handshake has closed the connection already
  if (await acceptHandshake(conn) !== null) return;
  const serve = framing === "raw" ? echo(conn) : echoMessages(conn, framing);
  await serve.catch(() => {}).finally(() => closeQuietly(conn));
}

/** Starts a worker (bench/echo_worker.ts) on `start`; resolves once it listens. */
function startWorker(start: EchoWorkerStart): Promise<void> {
  const worker = new Worker(new URL("./echo_worker.ts", import.meta.url), {
    type: "module",
  });
  return new Promise((resolve, reject) => {
    worker.onmessage = () => resolve();
    worker.onerror = (event) => {
      event.preventDefault();
      reject(new Error(event.message));
    };
    worker.postMessage(start);
  });
}

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "bench/deno_echo.ts",
    summary: "echo server for the benchmark: our echo and framing paths.",
    role: "server",
    defaultPort: 0,
    flags: FLAGS,
  });
  const framing = options.framing as FramingName | "raw";
  const certificate = await serverTlsOrExit(options); // --tls
  const tls = certificate && { cert: certificate.cert, key: certificate.key };
  if (options.workers === 0) {
    if (!tls) return serveEchoes(listenOrExit(options), framing);
    const listener = listenTlsOrExit(options, certificate);
    sayListening(listener.addr, " (TLS)");
    return serveEchoes(listener, framing);
  }
  if (Deno.build.os !== "linux") {
    exitWithError("--workers needs Linux (each worker listens with reusePort)");
  }
  // Bind here first to learn the port (--port 0), let every worker bind it
  // too, then step aside, as multiclientsusingthreading/server.ts does.
  const listener = listenOrExit(options, { reusePort: true, quiet: true });
  const { port } = listener.addr;
  await Promise.all(
    Array.from(
      { length: options.workers },
      () => startWorker({ host: options.host, port, framing, tls }),
    ),
  ).catch((error) => exitWithError(`a worker failed: ${error.message}`));
  listener.close();
  sayListening(
    listener.addr,
    `${tls ? " (TLS)" : ""} with ${options.workers} workers`,
  );
}

if (import.meta.main) await main();
