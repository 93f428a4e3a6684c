// Baseline for `deno task bench`: a Node `net` line-relay chat speaking our
// protocol: a welcome line, then every line relayed to the others as
// "guest-N: text". Written the way a Node programmer would: split on "\n",
// socket.write per receiver, no backpressure. With --tls --cert FILE --key
// FILE it is a `node:tls` server, the same otherwise (a client joins once
// its handshake is complete).
//   node bench/node_chat.mjs [--tls --cert FILE --key FILE] [PORT]
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
const clients = new Set();
let next = 1;
const join = (socket) => {
  socket.setNoDelay(true);
  const name = `guest-${next++}`;
  let pending = "";
  socket.write(`* welcome ${name} (node): ${clients.size} others here\n`);
  for (const other of clients) other.write(`* ${name} has joined\n`);
  clients.add(socket);
  socket.on("data", (chunk) => {
    const lines = (pending + chunk.toString("utf8")).split("\n");
    pending = lines.pop();
    if (lines.length === 0) return;
    const block = lines.map((line) => `${name}: ${line}\n`).join("");
    for (const other of clients) if (other !== socket) other.write(block);
  });
  const gone = () => clients.delete(socket);
  socket.on("close", gone);
  socket.on("error", gone);
};
const server = values.tls
  ? tls.createServer({
    cert: readFileSync(values.cert),
    key: readFileSync(values.key),
  }, join)
  : net.createServer(join);
server.on("tlsClientError", () => {});
server.listen(Number(positionals[0] ?? 0), "127.0.0.1", () => {
  console.log(
    `listening on 127.0.0.1:${server.address().port}${
      values.tls ? " (TLS)" : ""
    }`,
  );
});
