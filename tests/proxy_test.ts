import fc from "fast-check";
import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "./_assert.ts";
import { writeAll } from "../lib/io.ts";
import type { FramingName } from "../lib/framing.ts";
import {
  connect,
  joinChat,
  LineConn,
  readAll,
  readBytes,
  type Server,
  startServer,
  within,
} from "./_helpers.ts";

const PROXY = "sandbox/proxy.ts";
const ECHO = "basic/server.ts";
const CHAT = "sandbox/server.ts";
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Starts the proxy in front of `target`, with `args`. */
function proxyTo(target: Server, args: string[] = []): Promise<Server> {
  return startServer(PROXY, ["--to", `127.0.0.1:${target.port}`, ...args]);
}

/** Sends `data` through the proxy, half-closes, and reads every byte back. */
async function roundTrip(proxy: Server, data: Uint8Array): Promise<Uint8Array> {
  const conn = await connect(proxy.port);
  try {
    const [, echoed] = await within(
      Promise.all([
        writeAll(conn, data).then(() => conn.closeWrite()),
        readAll(conn),
      ]),
      30_000,
      "the echo did not come back within 30 s",
    );
    return echoed;
  } finally {
    conn.close();
  }
}

/** Every byte value, then some text. */
const SAMPLE = new Uint8Array([
  ...Array.from({ length: 256 }, (_, i) => i),
  ...enc.encode("héllo, wörld ✓ 中文\r\n"),
]);

// ---------------------------------------------------------------------------
// The echo server through the proxy

Deno.test("proxy: the echo server through --chunk 1 returns exactly the bytes sent", async () => {
  await using echo = await startServer(ECHO);
  await using proxy = await proxyTo(echo, ["--chunk", "1"]);
  assertEquals(await roundTrip(proxy, SAMPLE), SAMPLE);
  const n = SAMPLE.length;
  await proxy.stdout.waitFor(
    new RegExp(
      `→ 127\\.0\\.0\\.1:\\d+: closed; ${n} bytes up, ${n} bytes down`,
    ),
  );
  assertStringIncludes(proxy.stdout.text, "chunked 1 byte; both ways");
});

Deno.test("proxy: --merge writes what arrived within the window in one write", async () => {
  await using echo = await startServer(ECHO);
  await using proxy = await proxyTo(echo, [
    "--merge",
    "1500",
    "--direction",
    "up",
    "--wire",
  ]);
  const conn = await connect(proxy.port);
  try {
    const me = `127\\.0\\.0\\.1:${conn.localAddr.port}`;
    await writeAll(conn, enc.encode("a\n"));
    await proxy.stderr.waitFor(new RegExp(`read 2 bytes from ${me}$`));
    await writeAll(conn, enc.encode("b\n")); // within the window: merged
    assertEquals(dec.decode(await readBytes(conn, 4)), "a\nb\n");
    const toEcho = new RegExp(
      `wrote (\\d+) bytes to 127\\.0\\.0\\.1:${echo.port}$`,
    );
    const writes = proxy.stderr.lines.flatMap((l) =>
      l.match(toEcho)?.[1] ?? []
    );
    assertEquals(writes, ["4"], "the two messages went as one write");
  } finally {
    conn.close();
  }
  await proxy.stdout.waitFor(/closed; 4 bytes up, 4 bytes down/);
});

Deno.test("proxy: --merge returns exactly the bytes sent", async () => {
  await using echo = await startServer(ECHO);
  await using proxy = await proxyTo(echo, ["--merge", "5", "--chunk", "7"]);
  assertEquals(await roundTrip(proxy, SAMPLE), SAMPLE);
});

Deno.test("proxy: property (fast-check): random chunk sizes and delays return exactly the bytes sent", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 64 }),
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 0, max: 3 }),
      fc.uint8Array({ minLength: 1, maxLength: 3000 }),
      async (chunk, delayMs, jitterMs, data) => {
        await using echo = await startServer(ECHO);
        await using proxy = await proxyTo(echo, [
          "--chunk",
          String(chunk),
          "--delay",
          String(delayMs),
          "--jitter",
          String(jitterMs),
        ]);
        assertEquals(await roundTrip(proxy, data), data);
      },
    ),
    { numRuns: 4 },
  );
});

Deno.test("proxy: --rate takes at least bytes / rate (and not forever)", async () => {
  await using echo = await startServer(ECHO);
  await using proxy = await proxyTo(echo, ["--rate", "20000"]);
  const data = new Uint8Array(10_000).fill(0x61);
  const started = performance.now();
  assertEquals(await roundTrip(proxy, data), data);
  const elapsed = performance.now() - started;
  // 10,000 bytes at 20,000 bytes/s each way: at least 0.5 s (the two ways
  // overlap); far more only on a starved machine.
  assert(elapsed >= 495, `took ${elapsed.toFixed(0)} ms, under 500 ms`);
  assert(elapsed < 15_000, `took ${elapsed.toFixed(0)} ms`);
  assertStringIncludes(proxy.stdout.text, "at most 20,000 bytes/s");
});

Deno.test("proxy: a target that refuses is explained, and the client's connection closed", async () => {
  const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = free.addr.port;
  free.close(); // nothing listens there now
  await using proxy = await startServer(PROXY, ["--to", `127.0.0.1:${port}`]);
  const conn = await connect(proxy.port);
  try {
    assertEquals(await readBytes(conn, 1), new Uint8Array(0));
  } finally {
    conn.close();
  }
  const [line] = await proxy.stdout.waitFor(
    /cannot connect to 127\.0\.0\.1:\d+: connection refused.*Closing 127\.0\.0\.1:\d+\./,
  );
  assertStringIncludes(line, `127.0.0.1:${port}`);
});

Deno.test("proxy: SIGTERM closes every connection and exits 0", async () => {
  await using echo = await startServer(ECHO);
  await using proxy = await proxyTo(echo);
  const conn = await connect(proxy.port);
  try {
    await proxy.stdout.waitFor(/→ 127\.0\.0\.1:\d+: forwarded as is/);
    proxy.kill("SIGTERM");
    assertEquals((await proxy.exited(10_000)).code, 0);
    assertEquals(await readBytes(conn, 1), new Uint8Array(0));
  } finally {
    conn.close();
  }
  assertStringIncludes(proxy.stdout.text, "SIGTERM: closing every connection");
});

Deno.test("proxy: bad --to and --listen values are usage errors (exit 2)", async () => {
  for (
    const args of [["--to", "5003"], ["--to", "host:99999"], [
      "--listen",
      "a:b",
    ]]
  ) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", PROXY, ...args],
      cwd: new URL("..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    assertEquals(output.code, 2, args.join(" "));
    assertMatch(dec.decode(output.stderr), /^error: --(to|listen) must be/);
  }
});

// ---------------------------------------------------------------------------
// The chat server through the proxy

/** Joins `server` through `proxy`: a chat client whose bytes pass the proxy. */
async function joinThrough(
  proxy: Server,
  framing: FramingName = "line",
): Promise<[LineConn, string]> {
  const conn = new LineConn(await connect(proxy.port), framing);
  const welcome = (await conn.line(20_000))!;
  const name = welcome.match(/^\* welcome (guest-\d+)/)?.[1];
  assert(name, `unexpected welcome: ${welcome}`);
  return [conn, name];
}

const MESSAGES = [
  "hello",
  "héllo wörld ✓ 中文 🎉",
  "tab\there",
  "x".repeat(300),
  '  spaces around, a backslash \\ and a quote "  ',
];

for (const framing of ["line", "length"] as const) {
  Deno.test(`proxy: chat (${framing} framing) through --chunk 1 delivers the same messages as a direct connection`, async () => {
    await using server = await startServer(CHAT, ["--framing", framing]);
    await using proxy = await proxyTo(server, ["--chunk", "1"]);
    const [observer, observerName] = await joinChat(server, framing);
    const [direct, directName] = await joinChat(server, framing);
    const [proxied, proxiedName] = await joinThrough(proxy, framing);
    try {
      await observer.until(new RegExp(`^\\* ${proxiedName} has joined`));
      const texts = (name: string) => async (): Promise<string[]> => {
        const got: string[] = [];
        while (got.length < MESSAGES.length) {
          const line = await observer.until(new RegExp(`^${name}: `), 20_000);
          got.push(line.slice(name.length + 2));
        }
        return got;
      };
      for (const text of MESSAGES) await proxied.send(text);
      const viaProxy = await texts(proxiedName)();
      for (const text of MESSAGES) await direct.send(text);
      const viaDirect = await texts(directName)();
      assertEquals(viaProxy, viaDirect);
      assertEquals(viaProxy, MESSAGES);
      // and the other way: what the observer says reaches both the same
      for (const text of MESSAGES) await observer.send(text);
      const heard = async (conn: LineConn): Promise<string[]> => {
        const got: string[] = [];
        while (got.length < MESSAGES.length) {
          got.push(
            await conn.until(new RegExp(`^${observerName}: `), 20_000),
          );
        }
        return got;
      };
      assertEquals(await heard(proxied), await heard(direct));
    } finally {
      for (const conn of [observer, direct, proxied]) conn[Symbol.dispose]();
    }
  });
}

/** Reads `conn` until it ends; resolves with the error that ended it, or null. */
async function endOf(conn: Deno.Conn): Promise<unknown> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    while ((await conn.read(buffer)) !== null) { /* until the end */ }
    return null;
  } catch (error) {
    return error;
  }
}

Deno.test("proxy: --reset-after mid-message resets the client (ConnectionReset); the server logs it; the others go on chatting", async () => {
  await using server = await startServer(CHAT);
  await using proxy = await proxyTo(server, [
    "--reset-after",
    "10",
    "--direction",
    "up",
  ]);
  const [a, aName] = await joinChat(server);
  const [c] = await joinChat(server);
  const [b, bName] = await joinThrough(proxy);
  try {
    await a.until(new RegExp(`^\\* ${bName} has joined`));
    await b.send("this message is longer than ten bytes");
    const error = await within(endOf(b.conn), 20_000, "b was never reset");
    assert(
      error instanceof Deno.errors.ConnectionReset,
      `the client saw ${error === null ? "an end of stream (FIN)" : error}`,
    );
    await server.stdout.waitFor(
      new RegExp(`${bName} left \\(connection reset`),
    );
    await proxy.stdout.waitFor(
      /resetting both connections \(RST, not FIN\) after 10 bytes up/,
    );
    assertMatch(
      await a.until(new RegExp(`^\\* ${bName} has left`)),
      /connection reset/,
    );
    await a.send("still here");
    assertEquals(await c.until(/still here/), `${aName}: still here`);
    assert(
      !server.stdout.text.includes("this message"),
      "the cut message was relayed",
    );
  } finally {
    for (const conn of [a, b, c]) conn[Symbol.dispose]();
  }
});

Deno.test("proxy: --stall-after down: the server cuts the stalled client off as too slow; the others go on", async () => {
  await using server = await startServer(CHAT, ["--outbox-limit", "262144"]);
  await using proxy = await proxyTo(server, [
    "--stall-after",
    "1000",
    "--direction",
    "down",
  ]);
  const [a, aName] = await joinChat(server);
  const [c] = await joinChat(server);
  const [b, bName] = await joinThrough(proxy);
  try {
    await c.until(new RegExp(`^\\* ${bName} has joined`));
    // Chat until the server gives up on b: past the kernel buffers between
    // server and proxy (a few MiB) and the 256 KiB outbox. At most 256 MiB.
    const block = enc.encode(`${"x".repeat(1000)}\n`.repeat(64));
    let cutOff = "";
    let sent = 0;
    const flood = (async () => {
      while (!cutOff && sent < 256 << 20) {
        await writeAll(a.conn, block);
        sent += block.length;
      }
    })();
    while (!cutOff) {
      const line = await c.line(20_000).catch((error) => {
        throw new Error(
          `${error.message} (${sent} bytes sent)\n${server.stdout.text}\n${proxy.stdout.text}`,
        );
      });
      if (line?.startsWith(`* ${bName} has left`)) cutOff = line;
    }
    await flood;
    assertMatch(cutOff, /has left \(too slow: \d+ bytes unread\)/);
    await proxy.stdout.waitFor(
      /stalled down after 1,000 bytes: reading no more from 127\.0\.0\.1:\d+/,
    );
    await a.send("after the stall");
    assertEquals(
      await c.until(/after the stall/, 20_000),
      `${aName}: after the stall`,
    );
  } finally {
    for (const conn of [a, b, c]) conn[Symbol.dispose]();
  }
});

Deno.test("proxy: --wire shows the reads, the chunked writes and where the message ends", async () => {
  await using server = await startServer(CHAT);
  await using proxy = await proxyTo(server, [
    "--wire",
    "--framing",
    "line",
    "--chunk",
    "5",
    "--direction",
    "up",
  ]);
  const [b] = await joinThrough(proxy);
  try {
    const me = `127.0.0.1:${(b.conn.localAddr as Deno.NetAddr).port}`;
    const target = `127.0.0.1:${server.port}`;
    await b.send("hello there");
    await proxy.stderr.waitFor(/└ message 1 ends \(12 bytes, over 3 writes\)/);
    const rows = proxy.stderr.lines.map((l) =>
      l.replace(/^\d\d:\d\d:\d\d\.\d{3} /, "").trim()
    );
    const at = (row: string): number => {
      const i = rows.indexOf(row);
      assert(i >= 0, `no row "${row}" in:\n${rows.join("\n")}`);
      return i;
    };
    // the welcome: one read from the server, one write to the client
    at(`accepted a connection from ${me} on 127.0.0.1:${proxy.port}`);
    assertMatch(
      rows[at(`read 80 bytes from ${target}`) + 3],
      /└ message 1 ends \(80 bytes\)/,
    );
    // the line, read whole from the client, then written 5 bytes at a time
    const read = at(`read 12 bytes from ${me}`);
    assertEquals(rows.slice(read + 1, read + 3), [
      "│ hello there\\n",
      "└ message 1 ends (12 bytes)",
    ]);
    const first = rows.indexOf(`wrote 5 bytes to ${target}`, read);
    assertEquals(rows.slice(first, first + 9), [
      `wrote 5 bytes to ${target}`,
      "│ hello",
      "… message 1 continues in the next write (5 bytes so far)",
      `wrote 5 bytes to ${target}`,
      "│  ther",
      "… message 1 continues in the next write (10 bytes so far)",
      `wrote 2 bytes to ${target}`,
      "│ e\\n",
      "└ message 1 ends (12 bytes, over 3 writes)",
    ]);
  } finally {
    b[Symbol.dispose]();
  }
});
