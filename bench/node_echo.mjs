// Baseline for `deno task bench`: a Node `net` echo server (socket.on("data")),
// or with --tls --cert FILE --key FILE a `node:tls` one, the same otherwise
// (its callback runs once the handshake is complete).
//   node bench/node_echo.mjs [--tls --cert FILE --key FILE] [PORT]
import { readFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import { parseArgs } from "node:util";
const { values, positionals } = parseArgs({
  options: {
    tls: { type: "boolean" },
    cert: { type: "string" },
    key: { type: "string" },
  },
  allowPositionals: true,
});
const echo = (socket) => {
  socket.setNoDelay(true);
  socket.on("data", (chunk) => socket.write(chunk));
  socket.on("error", () => {});
};
const server = values.tls
  ? tls.createServer({
    cert: readFileSync(values.cert),
    key: readFileSync(values.key),
  }, echo)
  : net.createServer(echo);
server.on("tlsClientError", () => {});
server.listen(Number(positionals[0] ?? 0), "127.0.0.1", () => {
  console.log(
    `listening on 127.0.0.1:${server.address().port}${
      values.tls ? " (TLS)" : ""
    }`,
  );
});
