import {
  assert,
  assertEquals,
  assertMatch,
  assertNotMatch,
  assertStringIncludes,
} from "./_assert.ts";
import { writeAll } from "../lib/io.ts";
import {
  connect,
  HAVE_PYTHON,
  readAll,
  readBytes,
  resetClient,
  runScript,
  startServer,
} from "./_helpers.ts";

const SERVER = "basic/server.ts";
const CLIENT = "basic/client.ts";

/** 1 MiB in which every byte value appears 4096 times. */
function everyByteValue(size = 1 << 20): Uint8Array {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (i * 7 + (i >> 8)) & 0xff;
  return data;
}

Deno.test("basic server echoes 1 MiB of every byte value exactly, then exits 0", async () => {
  await using server = await startServer(SERVER);
  const conn = await connect(server.port);
  const data = everyByteValue();
  const [, echoed] = await Promise.all([
    writeAll(conn, data).then(() => conn.closeWrite()),
    readAll(conn),
  ]);
  conn.close();
  assertEquals(echoed.length, data.length);
  assert(
    echoed.every((b, i) => b === data[i]),
    "echo differs from what was sent",
  );
  const status = await server.exited(5000);
  assertEquals(status.code, 0);
  assertMatch(server.stdout.text, /accepted 127\.0\.0\.1:\d+/);
  assertMatch(server.stdout.text, /after 1048576 bytes echoed/);
  assertMatch(server.stdout.text, /closed 127\.0\.0\.1:\d+/);
});

Deno.test("basic server echoes a sender that writes one byte at a time", async () => {
  await using server = await startServer(SERVER);
  const conn = await connect(server.port);
  conn.setNoDelay(true);
  const message = new TextEncoder().encode("one byte at a time\x00\xff\n");
  for (const byte of message) await writeAll(conn, Uint8Array.of(byte));
  const echoed = await readBytes(conn, message.length);
  conn.close();
  assertEquals(echoed, message);
  assertEquals((await server.exited(5000)).code, 0);
});

Deno.test("basic server sends everything back to a client that half-closes (nc -N)", async () => {
  await using server = await startServer(SERVER);
  const conn = await connect(server.port);
  await writeAll(conn, new TextEncoder().encode("bye\n"));
  await conn.closeWrite();
  assertEquals(new TextDecoder().decode(await readAll(conn)), "bye\n");
  conn.close();
  assertEquals((await server.exited(5000)).code, 0);
});

Deno.test({
  name:
    "basic server skips clients that reset before accept(), survives one that resets mid-session, exits 0",
  ignore: !HAVE_PYTHON,
  async fn() {
    await using server = await startServer(SERVER);
    // Served (a byte went there and back), then it resets mid-transfer.
    // (Clients that reset before accept() are skipped: see net_test.ts.)
    await resetClient(server.port, new Uint8Array(1000), { first: "echo" });
    const status = await server.exited(5000);
    assertEquals(status.code, 0);
    assertMatch(server.stderr.text + server.stdout.text, /reset/);
    assertNotMatch(server.stderr.text, /at .*\.ts:\d+/);
  },
});

Deno.test("basic client: piped input comes back and the client exits 0", async () => {
  await using server = await startServer(SERVER);
  const result = await runScript(
    CLIENT,
    ["--port", String(server.port)],
    "hi\n",
  );
  assertEquals(result.code, 0, result.stderr);
  assertEquals(new TextDecoder().decode(result.stdout), "hi\n");
});

Deno.test("basic client: piped binary and a last line without newline come back byte-exact", async () => {
  await using server = await startServer(SERVER);
  const input = new Uint8Array([...everyByteValue(100_000), 0x61, 0x62]);
  const result = await runScript(
    CLIENT,
    ["--port", String(server.port)],
    input,
  );
  assertEquals(result.code, 0, result.stderr);
  assertEquals(result.stdout, input);
});

Deno.test("basic client: the host and port given plainly, as to nc", async () => {
  await using server = await startServer(SERVER);
  const result = await runScript(
    CLIENT,
    ["127.0.0.1", String(server.port)],
    "hi\n",
  );
  assertEquals(result.code, 0, result.stderr);
  assertEquals(new TextDecoder().decode(result.stdout), "hi\n");
});

Deno.test("basic client: '/quit' ends the session and is not sent", async () => {
  await using server = await startServer(SERVER);
  const result = await runScript(
    CLIENT,
    ["--port", String(server.port)],
    "a\n/quit\nb\n",
  );
  assertEquals(result.code, 0, result.stderr);
  assertEquals(new TextDecoder().decode(result.stdout), "a\n");
});

Deno.test("basic client: connection refused is explained, no stack trace, exit 1", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close(); // now nothing listens there
  const result = await runScript(CLIENT, ["--port", String(port)]);
  assertEquals(result.code, 1);
  assertStringIncludes(result.stderr, "connection refused");
  assertStringIncludes(result.stderr, "start the server first");
  assertNotMatch(result.stderr, /\bat .*:\d+:\d+/);
});

Deno.test("basic server: port in use is explained, no stack trace, exit 1", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const result = await runScript(SERVER, [
    "--port",
    String(listener.addr.port),
  ]);
  listener.close();
  assertEquals(result.code, 1);
  assertStringIncludes(result.stderr, "address already in use");
  assertStringIncludes(result.stderr, "--port");
  assertNotMatch(result.stderr, /\bat .*:\d+:\d+/);
});

for (const script of [SERVER, CLIENT]) {
  Deno.test(`${script} --help prints the usage and exits 0`, async () => {
    const result = await runScript(script, ["--help"]);
    assertEquals(result.code, 0);
    const text = new TextDecoder().decode(result.stdout);
    assertStringIncludes(text, "--host HOST");
    assertStringIncludes(text, "(default: 5000)");
    assertStringIncludes(text, "Example:");
  });

  for (
    const args of [
      ["--port", "70000"],
      ["--port", "abc"],
      ["--frobnicate"],
      // a client takes a host and a port plainly: the third is stray
      script === CLIENT ? ["localhost", "5000", "stray"] : ["stray"],
    ]
  ) {
    Deno.test(`${script} ${args.join(" ")}: says what is wrong, the usage line and where the options are (not all of them), exits 2`, async () => {
      const result = await runScript(script, args);
      assertEquals(result.code, 2);
      assertMatch(result.stderr, /^error: /);
      assertStringIncludes(result.stderr, `Usage: deno run -A ${script}`);
      assertStringIncludes(
        result.stderr,
        "Run it with --help for every option.",
      );
      assertEquals(result.stderr.includes("Options:"), false, result.stderr);
    });
  }
}

Deno.test("basic server and client --wire: each socket call and its bytes on stderr", async () => {
  await using server = await startServer(SERVER, ["--wire"]);
  const result = await runScript(
    CLIENT,
    ["--port", String(server.port), "--wire"],
    "hi\x07\n",
  );
  assertEquals(result.code, 0, result.stderr);
  assertEquals(new TextDecoder().decode(result.stdout), "hi\x07\n"); // piped: exact
  assertMatch(result.stderr, /connected to 127\.0\.0\.1:\d+/);
  assertMatch(
    result.stderr,
    /wrote 4 bytes to 127\.0\.0\.1:\d+\n\s+│ hi\\x07\\n/,
  );
  assertMatch(result.stderr, /closed our side/i);
  await server.exited(5000);
  assertMatch(server.stderr.text, /read 4 bytes from 127\.0\.0\.1:\d+/);
  assertMatch(server.stderr.text, /│ hi\\x07\\n/);
});
