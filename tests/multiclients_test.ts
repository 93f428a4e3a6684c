import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "./_assert.ts";
import { writeAll } from "../lib/io.ts";
import { delay } from "../lib/std.ts";
import {
  Child,
  connect,
  HAVE_PYTHON,
  LineConn,
  readAll,
  resetClient,
  runScript,
  scriptPath,
  startServer,
} from "./_helpers.ts";
import { PseudoTerminal } from "./_pty.ts";

const SERVER = "multiclients/server.ts";
const CLIENT = "multiclients/client.ts";
const enc = new TextEncoder();

async function client(port: number): Promise<LineConn> {
  return new LineConn(await connect(port));
}

Deno.test("multiclients: B gets nothing while A is served, then its greeting once A leaves", async () => {
  await using server = await startServer(SERVER);
  using a = await client(server.port);
  assertMatch((await a.line())!, /^\* hello .* you are client #1/);
  using b = await client(server.port);
  // B's connect() succeeded (backlog) but nothing may arrive while A is
  // served: B's first line must come after A's session ended.
  let aDone = false;
  const bFirst = b.line().then((line) => ({ line, afterA: aDone }));
  await a.send("from a");
  assertEquals(await a.line(), "from a");
  await a.conn.closeWrite();
  assertEquals(await a.line(), null);
  aDone = true;
  const { line, afterA } = await bFirst;
  assert(afterA, `B got "${line}" while A was still being served`);
  assertMatch(line!, /^\* hello .* you are client #2/);
  await b.send("from b");
  assertEquals(await b.line(), "from b");
});

Deno.test("multiclients: 20 clients connected at once are served one after the other, in order of arrival", async () => {
  await using server = await startServer(SERVER);
  const clients: LineConn[] = [];
  for (let i = 0; i < 20; i++) clients.push(await client(server.port)); // arrival order
  const finished: number[] = [];
  await Promise.all(clients.map(async (c, i) => {
    const greeting = (await c.line(20_000))!;
    assertStringIncludes(greeting, `you are client #${i + 1};`);
    await c.send(`client ${i}`);
    assertEquals(await c.line(), `client ${i}`);
    finished.push(i);
    c.conn.close();
  }));
  assertEquals(finished, Array.from({ length: 20 }, (_, i) => i));
  await server.stdout.waitFor(/20 clients served/);
});

Deno.test("multiclients: echo is byte-exact per line, invalid UTF-8 and \\r\\n included", async () => {
  await using server = await startServer(SERVER);
  const conn = await connect(server.port);
  const lines = Uint8Array.of(0xff, 0xfe, 0x00, 0x0a, 0x61, 0x0d, 0x0a, 0x62); // last line has no end
  await writeAll(conn, lines);
  await conn.closeWrite();
  const all = await readAll(conn);
  conn.close();
  const greetingEnd = all.indexOf(0x0a) + 1;
  assertEquals(all.subarray(greetingEnd), lines);
});

Deno.test("multiclients: a reset, invalid UTF-8 and an over-long line do not stop service for the next", async () => {
  await using server = await startServer(SERVER, ["--max-line", "1024"]);

  // 1. A client that resets (RST, as Python's SO_LINGER 0 sends it).
  if (HAVE_PYTHON) {
    await resetClient(server.port, enc.encode("x\n"));
  } else {
    console.log("  a clean close instead of a reset: python3 is not here");
    (await connect(server.port)).close();
  }
  await server.stdout.waitFor(/1 client served/);

  // 2. Invalid UTF-8, then a clean close.
  const garbage = await connect(server.port);
  await writeAll(garbage, Uint8Array.of(0xc3, 0x28, 0xa0, 0xa1, 0x0a));
  await garbage.closeWrite();
  await readAll(garbage);
  garbage.close();

  // 3. A line over the maximum: a message, then the session is closed.
  using long = await client(server.port);
  await long.line();
  await writeAll(long.conn, new Uint8Array(2000).fill(0x61));
  assertMatch(
    await long.until(/^\*/),
    /line longer than the maximum of 1024 bytes/,
  );
  assertEquals(await long.line(), null);

  // The next client is served normally.
  using next = await client(server.port);
  assertStringIncludes((await next.line())!, "you are client #4");
  await next.send("still here");
  assertEquals(await next.line(), "still here");
});

Deno.test("multiclients: --max-clients 2 exits 0 once the second client leaves", async () => {
  await using server = await startServer(SERVER, ["--max-clients", "2"]);
  for (let i = 1; i <= 2; i++) {
    using c = await client(server.port);
    await c.line();
    await c.conn.closeWrite();
    assertEquals(await c.line(), null);
  }
  assertEquals((await server.exited(5000)).code, 0);
});

Deno.test("multiclients: SIGTERM during a session tells the client and exits 0 within a second", async () => {
  await using server = await startServer(SERVER);
  using c = await client(server.port);
  await c.line();
  server.kill("SIGTERM");
  assertEquals(await c.line(), "* server shutting down");
  assertEquals((await server.exited(1000)).code, 0);
});

Deno.test("multiclients: an idle client is told and disconnected", async () => {
  await using server = await startServer(SERVER, ["--idle-timeout", "0.3"]);
  using c = await client(server.port);
  await c.line();
  assertEquals(await c.line(2000), "* idle for 0.3 s; disconnecting");
  assertEquals(await c.line(), null);
});

Deno.test("multiclients client: says it waits for its turn, then echoes piped lines", async () => {
  await using server = await startServer(SERVER);
  using busy = await client(server.port);
  await busy.line();
  await using waiting = new Child(CLIENT, ["--port", String(server.port)], {
    stdin: true,
  });
  const input = waiting.process.stdin.getWriter();
  await input.write(new TextEncoder().encode("one\ntwo\n"));
  await input.close();
  await waiting.stderr.waitFor(/waiting for our turn/);
  busy.conn.close();
  assertEquals((await waiting.exited(10_000)).code, 0, waiting.stderr.text);
  assertMatch(waiting.stdout.text, /^\* hello .*client #2.*\none\ntwo$/);
});

Deno.test("multiclients: a shutdown mid-session does not say it accepts the next", async () => {
  await using server = await startServer(SERVER);
  using c = await client(server.port);
  await c.line();
  server.kill("SIGTERM");
  assertEquals(await c.line(), "* server shutting down");
  assertEquals((await server.exited(5000)).code, 0);
  const log = server.stdout.text;
  assertMatch(log, /SIGTERM: shutting down[\s\S]*bye$/);
  assertEquals(log.includes("accepting the next"), false, log);
});

Deno.test("multiclients: at a shutdown, a crowd that keeps connecting does not keep the server from exiting", async () => {
  await using server = await startServer(SERVER);
  using served = await client(server.port);
  await served.line();
  let storming = true;
  const storm = (async () => {
    while (storming) {
      try {
        (await connect(server.port)).close();
      } catch {
        // the listener closed at last
      }
      await delay(20);
    }
  })();
  try {
    server.kill("SIGTERM");
    assertEquals(await served.line(), "* server shutting down");
    assertEquals((await server.exited(5000)).code, 0);
  } finally {
    storming = false;
    await storm;
  }
});

Deno.test("multiclients: at a shutdown, clients waiting in the backlog are told too, not reset", async () => {
  await using server = await startServer(SERVER);
  using served = await client(server.port);
  await served.line();
  const waiting = [await client(server.port), await client(server.port)];
  try {
    await server.stdout.waitFor(/serving/);
    server.kill("SIGTERM");
    assertEquals(await served.line(), "* server shutting down");
    for (const c of waiting) {
      assertEquals(await c.line(), "* server shutting down");
      assertEquals(await c.line(), null);
    }
    assertEquals((await server.exited(5000)).code, 0);
  } finally {
    for (const c of waiting) c[Symbol.dispose]();
  }
});

/** Once `waiting` says it waits in the queue, writes `input` to its stdin and ends it. */
async function typeWhileQueued(waiting: Child, input: string): Promise<void> {
  await waiting.stderr.waitFor(/waiting for our turn/);
  const stdin = waiting.process.stdin.getWriter();
  await stdin.write(enc.encode(input));
  await stdin.close();
}

/** The client on `port`, its stdin a pipe the test writes to. */
function pipedClient(port: number): Child {
  return new Child(CLIENT, ["--port", String(port)], { stdin: true });
}

for (
  const [how, input] of [["/quit", "/quit\n"], ["the end of input", ""]]
) {
  Deno.test(`multiclients client: ${how} while waiting in the queue leaves at once, exit 0; the server finds it gone`, async () => {
    await using server = await startServer(SERVER);
    using busy = await client(server.port);
    await busy.line();
    await using waiting = pipedClient(server.port);
    await typeWhileQueued(waiting, input);
    // The other client is still being served: nothing else ends the wait.
    assertEquals((await waiting.exited(5000)).code, 0, waiting.stderr.text);
    assertStringIncludes(
      waiting.stderr.text,
      "-- left the queue before our turn",
    );
    assertEquals(waiting.stdout.text, "");
    // Its turn comes: accept()ed, greeted, gone.
    busy.conn.close();
    const [, peer] = await server.stdout.waitFor(
      /serving (\S+) \(client #2\)/,
    );
    await server.stdout.waitFor(
      new RegExp(
        ` ${peer.replaceAll(".", "\\.")} left without sending anything$`,
      ),
    );
    await server.stdout.waitFor(/2 clients served/);
  });
}

Deno.test("multiclients client: input ending at once, with the server free, still shows the greeting; no word of a queue", async () => {
  await using server = await startServer(SERVER);
  for (const input of ["", "/quit\n", "a\n"]) {
    const result = await runScript(CLIENT, ["--port", `${server.port}`], input);
    assertEquals(result.code, 0, result.stderr);
    assertEquals(result.stderr, "");
    assertMatch(
      new TextDecoder().decode(result.stdout),
      new RegExp(`^\\* hello .*\n${input === "a\n" ? "a\n" : ""}$`),
    );
  }
});

Deno.test("multiclients client: lines sent while waiting come back once its turn comes, even after /quit", async () => {
  await using server = await startServer(SERVER);
  using busy = await client(server.port);
  await busy.line();
  await using waiting = pipedClient(server.port);
  await typeWhileQueued(waiting, "early\n/quit\n");
  await waiting.stderr.waitFor(/ending after our turn, when the line sent/);
  busy.conn.close();
  assertEquals((await waiting.exited(10_000)).code, 0, waiting.stderr.text);
  assertMatch(waiting.stdout.text, /^\* hello .*client #2.*\nearly$/);
});

Deno.test("multiclients client: a server shutting down while it waits is said as such, exit 1, never 'our turn'", async () => {
  await using server = await startServer(SERVER);
  using busy = await client(server.port);
  await busy.line();
  await using waiting = pipedClient(server.port);
  await waiting.stderr.waitFor(/waiting for our turn/);
  server.kill("SIGTERM");
  assertEquals((await waiting.exited(5000)).code, 1);
  const said = waiting.stderr.text;
  assertStringIncludes(
    said,
    "error: the server is shutting down; it closed the connection before our turn.",
  );
  assertEquals(said.includes("our turn, after"), false, said);
  assertEquals(waiting.stdout.text, "* server shutting down");
});

for (const [how, keys] of [["/quit", "/quit\r"], ["Ctrl+D", "\x04"]]) {
  Deno.test(`multiclients client on a terminal: ${how} while waiting in the queue leaves at once, exit 0`, async () => {
    await using server = await startServer(SERVER);
    using busy = await client(server.port);
    await busy.line();
    await using term = PseudoTerminal.start([
      "run",
      "--allow-net",
      scriptPath(CLIENT),
      "--port",
      `${server.port}`,
    ]);
    if (!term) {
      return console.log("skipped: python3 cannot play the terminal here");
    }
    await term.waitFor("waiting for our turn…");
    await term.type(keys);
    await term.waitFor("-- left the queue before our turn");
    assertEquals(await term.exited(5000), 0, term.screen);
    assertEquals(term.restored, true, "the terminal was left raw");
  });
}
