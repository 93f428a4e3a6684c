import { assertEquals } from "./_assert.ts";
import { LengthDecoder } from "../lib/length_decoder.ts";
import { LineDecoder } from "../lib/line_decoder.ts";
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
