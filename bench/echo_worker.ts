/**
 * One worker of `bench/deno_echo.ts --workers N`: listens on the shared port
 * (reuse-port: the kernel spreads the connections over the workers) and
 * echoes, with the same loop as the single-threaded server (over TLS when
 * given a certificate).
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { type EchoWorkerStart, serveEchoes } from "./deno_echo.ts";
import { listenTls } from "../lib/tls.ts";

self.onmessage = (event: MessageEvent<EchoWorkerStart>) => {
  const { host, port, framing, tls } = event.data;
  const listener = tls
    ? listenTls({ host, port }, tls, { reusePort: true })
    : Deno.listen({ hostname: host, port, reusePort: true });
  self.postMessage("ready");
  void serveEchoes(listener, framing);
};
