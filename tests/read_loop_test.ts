import { assertEquals } from "./_assert.ts";
import { LengthDecoder } from "../lib/length_decoder.ts";
import { LineDecoder } from "../lib/line_decoder.ts";
import { PendingLimit } from "../lib/pending_limit.ts";
import { readLoop } from "../lib/read_loop.ts";
import { writeAll } from "../lib/io.ts";

async function pair(): Promise<[Deno.TcpConn, Deno.TcpConn]> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const result = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    listener.accept(),
  ]);
  listener.close();
  return result;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("readLoop: hands on every message, the last unterminated line too, then eof", async () => {
  const [client, server] = await pair();
  const got: string[] = [];
  const loop = readLoop(server, {
    decoder: new LineDecoder(),
    onMessages: (m) => void got.push(...m.map((x) => dec.decode(x))),
  });
  await writeAll(client, enc.encode("a\nb\nc"));
  await client.closeWrite();
  assertEquals(await loop, { kind: "eof" });
  assertEquals(got, ["a", "b", "c"]);
  client.close();
  server.close();
});

Deno.test("readLoop: a framing error ends the loop as a value, not a throw", async () => {
  const [client, server] = await pair();
  const loop = readLoop(server, {
    decoder: new LengthDecoder({ maxLength: 4 }),
    onMessages: () => {},
  });
  await writeAll(client, Uint8Array.of(0, 0, 0, 5));
  const end = await loop;
  assertEquals(end.kind, "framing");
  client.close();
  server.close();
});

Deno.test("readLoop: the idle timeout calls onIdle, closes, and ends as idle", async () => {
  const [client, server] = await pair();
  let told = false;
  const end = await readLoop(server, {
    decoder: new LineDecoder(),
    onMessages: () => {},
    idleTimeoutMs: 50,
    onIdle: () => {
      told = true;
    },
  });
  assertEquals([end.kind, told], ["idle", true]);
  client.close();
});

Deno.test("readLoop: bytes keep the idle timer at bay", async () => {
  const [client, server] = await pair();
  const loop = readLoop(server, {
    decoder: new LineDecoder(),
    onMessages: () => {},
    idleTimeoutMs: 120,
  });
  for (let i = 0; i < 5; i++) {
    await writeAll(client, enc.encode("x\n"));
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await client.closeWrite();
  assertEquals((await loop).kind, "eof");
  client.close();
  server.close();
});

Deno.test("readLoop: closing the connection on our side ends it as closed", async () => {
  const [client, server] = await pair();
  const loop = readLoop(server, {
    decoder: new LineDecoder(),
    onMessages: () => {},
  });
  server.close();
  assertEquals((await loop).kind, "closed");
  client.close();
});

Deno.test("readLoop: bytes of a line that never ends do not keep a client from being idle", async () => {
  const [client, server] = await pair();
  const loop = readLoop(server, {
    decoder: new LineDecoder(),
    onMessages: () => {},
    idleTimeoutMs: 200,
  });
  // A byte every 20 ms, well inside the timeout, but never a whole line.
  const trickle = setInterval(() => {
    client.write(enc.encode("x")).catch(() => clearInterval(trickle));
  }, 20);
  assertEquals(await loop, { kind: "idle" });
  clearInterval(trickle);
  client.close();
});

Deno.test("readLoop: past the pending limit, the connection holding the most is evicted", async () => {
  const limit = new PendingLimit(1000);
  const [bigClient, bigServer] = await pair();
  const [smallClient, smallServer] = await pair();
  const evicted: number[] = [];
  const loop = (conn: Deno.TcpConn) =>
    readLoop(conn, {
      decoder: new LineDecoder(),
      onMessages: () => {},
      pending: limit,
      onEvicted: (held) => void evicted.push(held),
    });
  const big = loop(bigServer);
  const small = loop(smallServer);
  await writeAll(smallClient, enc.encode("x".repeat(300)));
  await writeAll(bigClient, enc.encode("y".repeat(800))); // 1,100 held in all
  assertEquals(await big, { kind: "evicted", held: 800 });
  assertEquals(evicted, [800]);
  assertEquals(limit.total, 300);
  await writeAll(smallClient, enc.encode("\n"));
  await smallClient.closeWrite();
  assertEquals(await small, { kind: "eof" });
  assertEquals(limit.total, 0);
  for (const conn of [bigClient, smallClient, smallServer]) conn.close();
});
