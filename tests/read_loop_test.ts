import { assert, assertEquals } from "./_assert.ts";
import { serverCertificate } from "../lib/certificate.ts";
import { connectTls } from "../lib/tls.ts";
import { LengthDecoder } from "../lib/length_decoder.ts";
import { LineDecoder } from "../lib/line_decoder.ts";
import { PendingLimit } from "../lib/pending_limit.ts";
import { endReason, readLoop } from "../lib/read_loop.ts";
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

Deno.test("readLoop: whatever a read throws ends the loop as a reset, never a throw (a TLS record that does not decrypt)", async () => {
  const conn = {
    read: () =>
      Promise.reject(
        new Deno.errors.InvalidData("cannot decrypt peer's message"),
      ),
    close() {},
  } as unknown as Deno.Conn;
  const end = await readLoop(conn, {
    decoder: new LineDecoder(),
    onMessages: () => {},
  });
  assertEquals(end.kind, "reset");
  assertEquals(endReason(end), "TLS error: cannot decrypt peer's message");
});

Deno.test("readLoop: an end of stream after a failed write is a reset: the unfinished line is dropped", async () => {
  // A reset whose error a write took reads as an end of stream; `lost`
  // says a write failed, known already or only once that write's callbacks
  // ran, a few microtasks after the read's end.
  for (const knownAt of ["before", "after"]) {
    let lost = knownAt === "before";
    const reads: (string | null)[] = ["whole\ncut sho", null];
    const conn = {
      read(into: Uint8Array): Promise<number | null> {
        const next = reads.shift()!;
        if (next === null) {
          void Promise.resolve().then(() => {}).then(() => {}).then(() => {
            lost = true;
          });
          return Promise.resolve(null);
        }
        into.set(enc.encode(next));
        return Promise.resolve(next.length);
      },
    } as unknown as Deno.Conn;
    const got: string[] = [];
    const end = await readLoop(conn, {
      decoder: new LineDecoder(),
      onMessages: (m) => void got.push(...m.map((x) => dec.decode(x))),
      lost: () => lost,
    });
    assertEquals(end.kind, "reset", `lost known ${knownAt} the end`);
    assertEquals(got, ["whole"], `lost known ${knownAt} the end`);
  }
});

Deno.test("readLoop: with no write failed, the unfinished line at a clean end still counts", async () => {
  const [client, server] = await pair();
  const got: string[] = [];
  const loop = readLoop(server, {
    decoder: new LineDecoder(),
    onMessages: (m) => void got.push(...m.map((x) => dec.decode(x))),
    lost: () => false,
  });
  await writeAll(client, enc.encode("whole\nlast"));
  await client.closeWrite();
  assertEquals(await loop, { kind: "eof" });
  assertEquals(got, ["whole", "last"]);
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

/** A decoder that counts the times it offered its room (a large line's own memory). */
function counting(decoder: LineDecoder): LineDecoder & { offered: number } {
  const counted = Object.assign(decoder, { offered: 0 });
  const room = decoder.room.bind(decoder);
  counted.room = () => {
    const r = room();
    if (r) counted.offered++;
    return r;
  };
  return counted;
}

for (const transport of ["TCP", "TLS"] as const) {
  Deno.test(`readLoop: a line of 60,000 bytes over ${transport} is read in place past 32 KiB and arrives whole`, async () => {
    let client: Deno.Conn;
    let server: Deno.Conn;
    if (transport === "TCP") {
      [client, server] = await pair();
    } else {
      const directory = await Deno.makeTempDir();
      try {
        const certificate = await serverCertificate({ directory });
        const listener = Deno.listenTls({
          hostname: "127.0.0.1",
          port: 0,
          cert: certificate.cert,
          key: certificate.key,
        });
        [client, server] = await Promise.all([
          connectTls({ host: "127.0.0.1", port: listener.addr.port }, {
            insecure: true,
          }) as Promise<Deno.Conn>,
          listener.accept(),
        ]);
        listener.close();
      } finally {
        await Deno.remove(directory, { recursive: true });
      }
    }
    const line = "y".repeat(60_000);
    const decoder = counting(new LineDecoder());
    const got: string[] = [];
    const loop = readLoop(server, {
      decoder,
      onMessages: (m) => void got.push(...m.map((x) => dec.decode(x))),
    });
    // In pieces, so that the server's reads end mid-line.
    const bytes = enc.encode(`${line}\nafter\n`);
    for (let at = 0; at < bytes.length; at += 10_000) {
      await writeAll(client, bytes.subarray(at, at + 10_000));
    }
    await client.closeWrite();
    assertEquals(await loop, { kind: "eof" });
    assertEquals(got, [line, "after"]);
    assertEquals(decoder.buffered, 0);
    assert(
      decoder.offered > 0,
      "the line's own memory was never offered to a read",
    );
    client.close();
    server.close();
  });
}

/** A connection that serves `bytes` to reads as fast as asked, counting them. */
function served(bytes: Uint8Array): Deno.Conn & { reads: number } {
  let at = 0;
  const conn = {
    reads: 0,
    read(into: Uint8Array): Promise<number | null> {
      conn.reads++;
      if (at === bytes.length) return Promise.resolve(null);
      const n = Math.min(into.length, bytes.length - at);
      into.set(bytes.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
    close() {},
  };
  return conn as unknown as Deno.Conn & { reads: number };
}

Deno.test("readLoop: a stream of large lines keeps its read buffer grown (a few reads per line, not a ramp each)", async () => {
  const line = "w".repeat(60_000);
  const conn = served(enc.encode(`${line}\n`.repeat(10)));
  const got: string[] = [];
  const end = await readLoop(conn, {
    decoder: new LineDecoder(),
    onMessages: (m) => void got.push(...m.map((x) => dec.decode(x))),
  });
  assertEquals(end, { kind: "eof" });
  assertEquals(got, Array(10).fill(line));
  // 512 + 2K + 8K + 32K to start, then at most 32 KiB and the rest in place
  // per line: 3 reads a line; a buffer back to 512 bytes each time took 5.
  assert(conn.reads <= 4 + 3 * 10 + 1, `${conn.reads} reads`);
});
