import { delay, textLineStream } from "../lib/std.ts";
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
  LineConn,
  NOTICE_SUMMARY,
  readAll,
  readBytes,
  resetClient,
  rssBytes,
  runCommand,
  runScript,
  scriptPath,
  Server,
  startServer,
} from "./_helpers.ts";
import { installed } from "../tools/server_process.ts";
import { startWebServer, WsClient, wssFirstMessage } from "./_web.ts";
import { certificateDir, tlsFlags } from "./_certificate.ts";

const SERVER = "multiclientsusingthreading/server.ts";
const CLIENT = "multiclientsusingthreading/client.ts";
const enc = new TextEncoder();

const REUSE_PORT_OK = Deno.build.os === "linux";
const MODES: [string, string[]][] = [
  ["reuse-port", []],
  ["portable", ["--portable"]],
];

/** A chat client: its name and worker, read from the welcome line. */
class Chatter extends LineConn {
  name = "";
  worker = 0;
  #ignored = new Set<string>();
  #summaries = false;

  /**
   * Lines to skip once each if they still arrive (late join notices), and
   * with `summaries`, every summary of counted joins still on its way.
   */
  ignore(lines: Set<string>, summaries = false): void {
    this.#ignored = lines;
    this.#summaries = summaries;
  }

  override async line(ms?: number): Promise<string | null> {
    for (;;) {
      const line = await super.line(ms);
      if (line === null) return line;
      if (this.#ignored.delete(line)) continue;
      if (this.#summaries && NOTICE_SUMMARY.test(line)) continue;
      return line;
    }
  }
}

async function join(server: Server): Promise<Chatter> {
  const chatter = new Chatter(await connect(server.port));
  const welcome = (await chatter.line())!;
  const match = welcome.match(/^\* welcome (guest-\d+) \(worker (\d+)\)/);
  assert(match, `unexpected welcome: ${welcome}`);
  chatter.name = match[1];
  chatter.worker = Number(match[2]);
  return chatter;
}

/**
 * Joins `count` clients, then waits until each has seen every later one
 * join, by name or counted in a summary (past a burst, joins are counted:
 * `lib/notice_budget.ts`). Only each sender's own order holds across
 * workers: a join on another worker may be announced after a client's own
 * welcome, so the notice of an earlier joiner may also turn up here, and a
 * summary may count it, or the client itself.
 */
async function joinAll(server: Server, count: number): Promise<Chatter[]> {
  const chatters: Chatter[] = [];
  for (let i = 0; i < count; i++) chatters.push(await join(server));
  const earlier = (i: number): Set<string> =>
    new Set(chatters.slice(0, i).map((c) => `* ${c.name} has joined`));
  await Promise.all(chatters.map(async (c, i) => {
    const missing = new Set(
      chatters.slice(i + 1).map((later) => `* ${later.name} has joined`),
    );
    const late = earlier(i);
    let counted = 0;
    while (missing.size > counted) {
      const line = (await c.line())!;
      const summed = line.match(NOTICE_SUMMARY);
      if (summed) counted += Number(summed[1] ?? 0);
      else {
        assert(
          missing.delete(line) || late.delete(line),
          `${c.name} got an unexpected line while others joined: ${line}`,
        );
      }
    }
    // A late notice still on its way is read and checked by the tests' filters below.
    c.ignore(new Set([...late, ...missing]), true);
  }));
  return chatters;
}

function closeAll(chatters: Chatter[]): void {
  for (const c of chatters) c[Symbol.dispose]();
}

for (const [mode, flags] of MODES) {
  Deno.test({
    name:
      `threaded chat (${mode}): a line reaches every other client, across workers`,
    ignore: mode === "reuse-port" && !REUSE_PORT_OK,
    async fn() {
      await using server = await startServer(SERVER, [
        "--workers",
        "3",
        ...flags,
      ]);
      assertStringIncludes(server.stdout.text, `with 3 workers (${mode}`);
      const chatters = await joinAll(server, 12);
      try {
        const workers = new Set(chatters.map((c) => c.worker));
        assert(
          workers.size >= 2,
          `12 clients all landed on one worker: ${[...workers]}`,
        );
        await chatters[0].send("hello everyone");
        for (const other of chatters.slice(1)) {
          assertEquals(
            await other.line(),
            `${chatters[0].name}: hello everyone`,
          );
        }
      } finally {
        closeAll(chatters);
      }
    },
  });

  Deno.test({
    name:
      `threaded chat (${mode}): 200 clients x 5 numbered lines, each received exactly once, in order`,
    ignore: mode === "reuse-port" && !REUSE_PORT_OK,
    async fn() {
      await using server = await startServer(SERVER, [
        "--workers",
        "2",
        "--stats-interval",
        "0",
        ...flags,
      ]);
      const chatters = await joinAll(server, 200);
      const LINES = 5;
      try {
        await Promise.all(chatters.map(async (c) => {
          for (let n = 0; n < LINES; n++) await c.send(`${n}`);
        }));
        await Promise.all(chatters.map(async (receiver) => {
          const next = new Map<string, number>();
          for (let got = 0; got < (chatters.length - 1) * LINES; got++) {
            const line = (await receiver.line(30_000))!;
            const [, name, n] = line.match(/^(guest-\d+): (\d+)$/) ?? [];
            assert(name, `${receiver.name} got an unexpected line: ${line}`);
            assert(name !== receiver.name, "a client got its own line back");
            assertEquals(
              Number(n),
              next.get(name) ?? 0,
              `${receiver.name}: ${name}'s lines out of order or repeated`,
            );
            next.set(name, Number(n) + 1);
          }
          assertEquals(next.size, chatters.length - 1);
        }));
      } finally {
        closeAll(chatters);
      }
    },
  });

  Deno.test({
    name:
      `threaded chat (${mode}): a crashed worker is replaced; its clients are told; others keep chatting`,
    ignore: mode === "reuse-port" && !REUSE_PORT_OK ||
      Deno.build.os === "windows",
    async fn() {
      await using server = await startServer(SERVER, [
        "--workers",
        "2",
        ...flags,
      ]);
      const chatters: Chatter[] = [];
      try {
        // Enough clients to have some on each worker.
        while (
          new Set(chatters.map((c) => c.worker)).size < 2 || chatters.length < 4
        ) {
          chatters.push(await join(server));
          assert(chatters.length < 60, "the kernel never picked worker 2");
        }
        const victims = chatters.filter((c) => c.worker === 1);
        const survivors = chatters.filter((c) => c.worker === 2);
        server.kill("SIGUSR2"); // crash drill: worker 1
        for (const victim of victims) {
          await victim.until(/^\* server error in worker 1; disconnecting/);
          assertEquals(await victim.line(), null);
        }
        for (const survivor of survivors) {
          for (const victim of victims) {
            await survivor.until(
              new RegExp(
                `^\\* ${victim.name} has left \\(server error in worker 1\\)$`,
              ),
            );
          }
        }
        await server.stdout.waitFor(/worker 1 crashed: crash drill/);
        await server.stdout.waitFor(/worker 1 replaced/);
        await survivors[0].send("still here");
        for (const other of survivors.slice(1)) {
          await other.until(/: still here$/);
        }
        // Newcomers are served, on either worker.
        const late = await join(server);
        chatters.push(late);
        await late.send("hello after the crash");
        await survivors[0].until(
          new RegExp(`^${late.name}: hello after the crash$`),
        );
      } finally {
        closeAll(chatters);
      }
    },
  });
}

Deno.test("threaded chat: control characters never reach another client raw", async () => {
  await using server = await startServer(SERVER, ["--workers", "2"]);
  const [a, b] = await joinAll(server, 2);
  try {
    await writeAll(
      a.conn,
      enc.encode("\x1b[2J\x1b]0;pwned\x07bell\x00nul\x7f\u202etxt\t.\r\n"),
    );
    const line = (await b.line())!;
    assertEquals(line, `${a.name}: ^[[2J^[]0;pwned^Gbell^@nul^?<U+202E>txt\t.`);
    // deno-lint-ignore no-control-regex -- no raw control character may arrive
    assertNotMatch(line, /[\x00-\x08\x0b-\x1f\x7f]/);
  } finally {
    closeAll([a, b]);
  }
});

Deno.test("threaded chat: commands /help /who /stats, unknown ones, // escape, /quit seen by others", async () => {
  await using server = await startServer(SERVER, ["--workers", "2"]);
  const [a, b] = await joinAll(server, 2);
  try {
    await a.send("/help");
    assertEquals(await a.line(), "* commands:");
    await a.send("/who");
    assertEquals(await a.until(/^\* 2 here/), `* 2 here: ${a.name}, ${b.name}`); // by id
    await a.send("/stats");
    assertMatch(
      await a.until(/^\* stats/),
      /^\* stats: 2 connected, 2 since start, \d+ messages relayed; memory: [\d.]+ MiB resident/,
    );
    await a.send("/frobnicate");
    assertEquals(
      await a.until(/unknown/),
      "* unknown command /frobnicate; /help lists the commands",
    );
    await a.send("//not a command");
    assertEquals(await b.line(), `${a.name}: /not a command`);
    await a.send("/quit see you");
    assertEquals(await b.line(), `* ${a.name} has left (quit: see you)`);
    assertEquals(await a.until(/bye/), "* bye");
    assertEquals(await a.line(), null);
  } finally {
    closeAll([a, b]);
  }
});

for (const [mode, flags] of MODES) {
  Deno.test({
    name:
      `threaded chat (${mode}): a stalled reader is cut off; memory stays flat; others never notice`,
    ignore: mode === "reuse-port" && !REUSE_PORT_OK,
    fn: () => stalledReader(flags),
  });
}

for (const [mode, flags] of MODES) {
  Deno.test({
    name:
      `threaded chat (${mode}): 30,000 commands in one write are all answered, in order, with the others' lines between`,
    ignore: mode === "reuse-port" && !REUSE_PORT_OK,
    async fn() {
      // No command budget (past it they would go unanswered): the turns alone.
      await using server = await startServer(SERVER, [
        "--workers",
        "1",
        "--max-commands",
        "1000000000",
        ...flags,
      ]);
      const [asker, other] = await joinAll(server, 2);
      using _a = asker;
      using _o = other;
      const COUNT = 30_000;
      const asks = Array.from({ length: COUNT }, (_, i) => `/x${i}\n`);
      const writing = writeAll(asker.conn, enc.encode(asks.join("")));
      await other.send("between"); // a broadcast among the answers
      let between = 0;
      for (let i = 0; i < COUNT; i++) {
        let line = await asker.line();
        if (line === `${other.name}: between`) {
          between++;
          line = await asker.line();
        }
        assertEquals(
          line,
          `* unknown command /x${i}; /help lists the commands`,
        );
      }
      await writing;
      await asker.send("/who");
      let line = await asker.line(); // the broadcast, if it came after all
      if (line === `${other.name}: between`) {
        between++;
        line = await asker.line();
      }
      assertEquals(between, 1, "the broadcast arrived once");
      assertMatch(line ?? "", /^\* 2 here: /);
    },
  });
}

async function stalledReader(flags: string[]): Promise<void> {
  await using server = await startServer(SERVER, ["--workers", "2", ...flags]);
  const [sender, reader] = await joinAll(server, 2);
  const batch = enc.encode(`${"x".repeat(1023)}\n`.repeat(1024)); // 1 MiB of lines
  const stream = async (mib: number): Promise<void> => {
    const reading = countXs(reader.conn, { count: mib * 1024 * 1023 });
    for (let i = 0; i < mib; i++) await writeAll(sender.conn, batch);
    assertEquals(await reading, mib * 1024 * 1023, "the reader missed bytes");
  };
  let stalled: Chatter | undefined;
  try {
    await stream(64); // warm-up: the heap settles at its working size
    const before = await rssBytes(server.process.pid);
    stalled = await join(server); // connects, then never reads again
    await reader.until(new RegExp(`^\\* ${stalled.name} has joined$`));
    const PHASE = 256; // MiB sent while the stalled client sits there
    await stream(PHASE);
    await server.stdout.waitFor(
      new RegExp(`${stalled.name} left \\(too slow: \\d+ bytes unread\\)`),
    );
    const after = await rssBytes(server.process.pid);
    if (before === null || after === null) {
      console.log("skipped the memory check: no /proc on this system");
    } else {
      const grown = (after - before) / (1 << 20);
      console.log(
        `server RSS after warm-up ${
          (before / (1 << 20)).toFixed(0)
        } MiB, after ${PHASE} MiB more: ${(after / (1 << 20)).toFixed(0)} MiB`,
      );
      assert(
        grown < PHASE / 2,
        `server memory grew by ${
          grown.toFixed(0)
        } MiB while ${PHASE} MiB streamed past a stalled client`,
      );
    }
    await reader.send("after the stall");
    assertEquals(
      await sender.until(/after the stall/),
      `${reader.name}: after the stall`,
    );
  } finally {
    closeAll([sender, reader, ...(stalled ? [stalled] : [])]);
  }
}

Deno.test("threaded chat: a 16 MiB line without newline is refused; the sender is cut off; memory bounded", async () => {
  await using server = await startServer(SERVER, ["--workers", "2"]);
  const [flooder, other, third] = await joinAll(server, 3);
  try {
    const before = await rssBytes(server.process.pid);
    const chunk = new Uint8Array(1 << 20).fill(0x41);
    try {
      for (let i = 0; i < 16; i++) await writeAll(flooder.conn, chunk);
    } catch {
      // the server closed us mid-flood: expected
    }
    await flooder.until(
      /^\* line longer than the maximum of 65536 bytes; disconnecting$/,
    ).catch(() => {
      // the notice may be lost to a reset when our unread flood is discarded
    });
    await other.until(
      new RegExp(
        `^\\* ${flooder.name} has left \\(line longer than the maximum`,
      ),
    );
    const after = await rssBytes(server.process.pid);
    if (before !== null && after !== null) {
      assert(
        (after - before) / (1 << 20) < 16,
        "the server buffered the flood",
      );
    }
    await other.send("fine here");
    assertEquals(await third.until(/fine here/), `${other.name}: fine here`);
  } finally {
    closeAll([flooder, other, third]);
  }
});

Deno.test({
  name:
    "threaded chat: a client reset mid-broadcast does not disturb the others",
  ignore: !HAVE_PYTHON,
  async fn() {
    await using server = await startServer(SERVER, ["--workers", "2"]);
    const [a, b] = await joinAll(server, 2);
    try {
      // a floods while a Python client joins and resets (RST) mid-flood
      const flooding = writeAll(a.conn, enc.encode("spam\n".repeat(20_000)));
      const greeting = await resetClient(server.port, new Uint8Array());
      await flooding;
      const name = greeting.match(/welcome (guest-\d+)/)?.[1];
      assert(name, `unexpected greeting: ${greeting}`);
      await b.until(new RegExp(`^\\* ${name} has left \\(connection reset`));
      await b.send("after the reset");
      assertEquals(
        await a.until(/after the reset/),
        `${b.name}: after the reset`,
      );
    } finally {
      closeAll([a, b]);
    }
  },
});

for (const [mode, flags] of MODES) {
  Deno.test({
    name:
      `threaded chat (${mode}): SIGTERM tells every client and exits 0 within 2 s`,
    ignore: mode === "reuse-port" && !REUSE_PORT_OK,
    async fn() {
      await using server = await startServer(SERVER, [
        "--workers",
        "2",
        ...flags,
      ]);
      const chatters = await joinAll(server, 4);
      try {
        const start = Date.now();
        server.kill("SIGTERM");
        for (const c of chatters) {
          assertEquals(
            await c.until(/shutting down/),
            "* server shutting down",
          );
          assertEquals(await c.line(), null);
        }
        assertEquals((await server.exited(2000)).code, 0);
        assert(Date.now() - start < 2000);
      } finally {
        closeAll(chatters);
      }
    },
  });
}

Deno.test("threaded chat client: piped lines reach another client; the client exits 0", async () => {
  await using server = await startServer(SERVER, ["--workers", "2"]);
  using watcher = await join(server);
  const result = await runScript(
    CLIENT,
    ["--port", String(server.port)],
    "hi from a pipe\n",
  );
  assertEquals(result.code, 0, result.stderr);
  assertStringIncludes(
    new TextDecoder().decode(result.stdout),
    "* welcome guest-",
  );
  assertMatch(
    await watcher.until(/hi from a pipe/),
    /^guest-\d+: hi from a pipe$/,
  );
});

/**
 * Runs `args` on a pseudo-terminal (Python's pty module plays the
 * terminal): `steps` are keystrokes to type, or waits for screen output.
 * Resolves with everything the program wrote and its exit code.
 */
async function onTerminal(
  args: string[],
  steps:
    ({ type: string } | { waitFor: string } | { run: () => Promise<void> })[],
): Promise<{ screen: string; code: number } | null> {
  const driver = [
    "import os, pty, sys, select, json, time",
    "pid, fd = pty.fork()",
    "if pid == 0:",
    "    os.execv(sys.argv[1], sys.argv[1:])",
    "out = b''",
    "def pump(t):",
    "    global out",
    "    r, _, _ = select.select([fd], [], [], t)",
    "    if r:",
    "        try: out += os.read(fd, 65536)",
    "        except OSError: return False",
    "    return True",
    "for line in iter(sys.stdin.readline, ''):",
    "    cmd = json.loads(line)",
    "    if 'type' in cmd: os.write(fd, cmd['type'].encode())",
    "    elif 'waitFor' in cmd:",
    "        deadline = time.time() + 10",
    "        while cmd['waitFor'].encode() not in out and time.time() < deadline:",
    "            if not pump(1): break",
    "        print(json.dumps({'seen': cmd['waitFor'].encode() in out}), flush=True)",
    "    elif 'end' in cmd: break",
    "while pump(5) and os.waitpid(pid, os.WNOHANG) == (0, 0): pass",
    "_, status = os.waitpid(pid, 0)",
    "print(json.dumps({'screen': out.decode('utf-8', 'replace'), 'code': os.waitstatus_to_exitcode(status)}), flush=True)",
  ].join("\n");
  let python: Deno.ChildProcess;
  try {
    python = new Deno.Command("python3", {
      args: ["-c", driver, Deno.execPath(), ...args],
      stdin: "piped",
      stdout: "piped",
      env: { NO_COLOR: "1", TERM: "xterm" },
    }).spawn();
  } catch {
    return null;
  }
  const lines = python.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(
    textLineStream(),
  ).getReader();
  const writer = python.stdin.getWriter();
  const send = (command: object): Promise<void> =>
    writer.write(enc.encode(`${JSON.stringify(command)}\n`));
  try {
    for (const step of steps) {
      if ("run" in step) await step.run();
      else if ("type" in step) await send(step);
      else {
        await send(step);
        const { seen } = JSON.parse((await lines.read()).value!);
        assert(
          seen,
          `never saw ${JSON.stringify(step.waitFor)} on the terminal`,
        );
      }
    }
    await send({ end: true });
    await writer.close();
    const result = JSON.parse((await lines.read()).value!);
    return result;
  } finally {
    await lines.cancel();
    await python.status;
  }
}

Deno.test("threaded chat client on a terminal: others' messages appear above the line being typed", async () => {
  await using server = await startServer(SERVER, ["--workers", "2"]);
  let other: Chatter | undefined;
  const result = await onTerminal(
    ["run", "--allow-net", scriptPath(CLIENT), "--port", String(server.port)],
    [
      { waitFor: "> " },
      { type: "hello wor" },
      { waitFor: "hello wor" },
      {
        run: async () => {
          other = await join(server);
          await other.send("hey there");
        },
      },
      { waitFor: "hey there" },
      { waitFor: "> hello wor" }, // redrawn after the message
      { type: "ld\r" },
      {
        run: async () =>
          assertMatch(
            await other!.until(/hello world/),
            /^guest-\d+: hello world$/,
          ),
      },
      { type: "\x04" }, // Ctrl+D on an empty line: end of input
    ],
  );
  other?.[Symbol.dispose]();
  if (result === null) {
    console.log("skipped: python3 is not available to play the terminal");
    return;
  }
  assertEquals(result.code, 0, result.screen);
  // The message is printed on a cleared row (after the join notice, when
  // both came in one read), then the prompt and the typed text come back.
  assertMatch(
    result.screen,
    // deno-lint-ignore no-control-regex -- the terminal's escape sequences are the point
    /\r\x1b\[2K(?:[^\r\n\x1b]*\r+\n)?guest-\d+: hey there\r+\n\r\x1b\[2K> hello wor/,
  );
});

for (const [mode, flags] of MODES) {
  Deno.test({
    name:
      `threaded chat (${mode}): what a client asked before it half-closed is answered (20 of 20)`,
    ignore: mode === "reuse-port" && !REUSE_PORT_OK,
    async fn() {
      await using server = await startServer(SERVER, [
        "--workers",
        "2",
        ...flags,
      ]);
      for (let i = 0; i < 20; i++) {
        // As `printf '/who\n/help\n' | nc -N` does: ask, then shut the write side.
        const conn = await connect(server.port);
        await writeAll(conn, enc.encode("/who\n/help\n"));
        await conn.closeWrite();
        const text = new TextDecoder().decode(await readAll(conn));
        conn.close();
        assertMatch(text, /^\* welcome guest-\d+ \(worker \d\)/, `try ${i}`);
        assertMatch(text, /^\* 1 here: guest-\d+$/m, `try ${i}: ${text}`);
        assertMatch(text, /^\* commands:$/m, `try ${i}: ${text}`);
      }
    },
  });
}

Deno.test({
  name:
    "threaded chat: a second reuse-port server on the same port is refused (address already in use); the first goes on",
  ignore: !REUSE_PORT_OK,
  async fn() {
    await using first = await startServer(SERVER, ["--workers", "2"]);
    const second = await runCommand(Deno.execPath(), [
      "run",
      "--allow-net",
      "--allow-read",
      scriptPath(SERVER),
      "--port",
      String(first.port),
    ]);
    assertEquals(second.code, 1);
    assertStringIncludes(second.stderr, "address already in use");
    assertNotMatch(second.stderr, /Uncaught|at \w+ \(/);
    const [a, b] = await joinAll(first, 2);
    try {
      await a.send("still one chat");
      assertEquals(await b.line(), `${a.name}: still one chat`);
    } finally {
      closeAll([a, b]);
    }
  },
});

Deno.test({
  name:
    "threaded chat (reuse-port): a client knocking while the server starts is served or refused, never reset",
  ignore: !REUSE_PORT_OK,
  async fn() {
    for (let start = 0; start < 3; start++) {
      const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = probe.addr.port;
      probe.close();
      const server = new Server(SERVER, [
        "--port",
        String(port),
        "--workers",
        "2",
      ]);
      const counts = { refused: 0, served: 0, reset: 0 };
      try {
        // Knock until the server says it listens and a few clients were served.
        let listening = false;
        server.stdout.waitFor(/listening on/).then(
          () => (listening = true),
          () => {},
        );
        const deadline = Date.now() + 20_000;
        while (!listening || counts.served < 5) {
          assert(Date.now() < deadline, `never served: ${server.stderr.text}`);
          let conn: Deno.TcpConn;
          try {
            conn = await connect(port);
          } catch {
            counts.refused++;
            await new Promise((resolve) => setTimeout(resolve, 1));
            continue;
          }
          try {
            const first = await readBytes(conn, 10, 5000);
            if (first.length === 0) counts.reset++;
            else counts.served++;
          } catch (error) {
            if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
            counts.reset++;
          } finally {
            conn.close();
          }
        }
        assertEquals(counts.reset, 0, JSON.stringify(counts));
      } finally {
        await server[Symbol.asyncDispose]();
      }
    }
  },
});

Deno.test({
  name:
    "threaded chat: the crash drill (SIGUSR2) opens no port: the process listens on its own port only",
  ignore: !REUSE_PORT_OK || !await installed("ss", ["-V"]),
  async fn() {
    await using server = await startServer(SERVER, ["--workers", "2"]);
    server.kill("SIGUSR2");
    await server.stdout.waitFor(/worker 1 replaced/);
    const ports = await listeningPorts(server.process.pid);
    assertEquals(ports, [server.port]);
    const help = await runScript(SERVER, ["--help"]);
    assertStringIncludes(new TextDecoder().decode(help.stdout), "SIGUSR2");
    assertStringIncludes(
      new TextDecoder().decode(help.stdout),
      "Never send SIGUSR1",
    );
  },
});

/** The TCP ports process `pid` listens on, from `ss` (each once, sorted). */
async function listeningPorts(pid: number): Promise<number[]> {
  const output = await new Deno.Command("ss", { args: ["-Hltnp"] }).output();
  const ports = new TextDecoder().decode(output.stdout).split("\n")
    .filter((line) => line.includes(`pid=${pid},`))
    .map((line) => Number(line.split(/\s+/)[3].split(":").at(-1)));
  return [...new Set(ports)].sort((a, b) => a - b);
}

Deno.test("threaded chat: more workers than cores is said, with what it costs", async () => {
  const cores = navigator.hardwareConcurrency;
  await using server = await startServer(SERVER, [
    "--workers",
    String(cores + 1),
  ]);
  assertStringIncludes(
    server.stdout.text,
    `${cores + 1} workers on ${cores} cores`,
  );
});

Deno.test("threaded chat: without read permission for its workers, one sentence and exit 1, no worker traces", async () => {
  const result = await runCommand(Deno.execPath(), [
    "run",
    "--allow-net",
    "--no-prompt",
    scriptPath(SERVER),
    "--port",
    "0",
  ]);
  assertEquals(result.code, 1);
  assertStringIncludes(result.stderr, "--allow-read");
  assertNotMatch(result.stderr, /Uncaught/);
});

Deno.test("threaded chat: the stats line appears when something changed, and counts in words", async () => {
  await using server = await startServer(SERVER, [
    "--workers",
    "2",
    "--stats-interval",
    "0.05",
  ]);
  const [a, b] = await joinAll(server, 2);
  try {
    await a.send("one");
    await b.line();
    const line = await server.stdout.waitFor(/stats: .*1 message relayed/);
    assertMatch(
      line[0],
      /stats: 2 connected on 2 workers, 2 since start, 1 message relayed$/,
    );
    const stats = server.stdout.lines.filter((l) => l.includes("stats:"));
    assertNotMatch(stats[0], /0 connected/); // nothing had changed before the joins
  } finally {
    closeAll([a, b]);
  }
});

Deno.test({
  name:
    "threaded chat: names are unique across workers, after case folding and normalisation",
  ignore: !REUSE_PORT_OK,
  async fn() {
    await using server = await startServer(SERVER, ["--workers", "2"]);
    const chatters: Chatter[] = [];
    try {
      while (new Set(chatters.map((c) => c.worker)).size < 2) {
        chatters.push(await join(server));
        assert(chatters.length < 60, "the kernel never picked worker 2");
      }
      const one = chatters.find((c) => c.worker === 1)!;
      const two = chatters.find((c) => c.worker === 2)!;
      await one.send("/nick Alice");
      assertEquals(await one.until(/^\* you/), "* you are now Alice");
      for (const name of ["alice", "ALİCE", "Ａｌｉｃｅ"]) {
        await two.send(`/nick ${name}`);
        assertEquals(
          await two.until(/^\* cannot/),
          `* cannot use that name: "${name}" is taken`,
        );
      }
      await two.send("/nick guest-1");
      assertEquals(
        await two.until(/^\* cannot/),
        "* cannot use that name: guest-N names are given by the server",
      );
      await two.send("/who");
      assertMatch(await two.until(/here:/), /[:,] Alice(,|$)/);
    } finally {
      closeAll(chatters);
    }
  },
});

Deno.test("threaded chat: a line that would pass the maximum once its sender's name is added is refused, not relayed", async () => {
  await using server = await startServer(SERVER, ["--workers", "2"]);
  const [a, b] = await joinAll(server, 2);
  try {
    await a.send("x".repeat(65_530)); // within --max-line, over it as "guest-N: x…"
    assertMatch(
      await a.until(/^\* message not sent/),
      /once relayed .* the limit is 65536$/,
    );
    await a.send("short");
    assertEquals(await b.line(), `${a.name}: short`); // nothing came before it
  } finally {
    closeAll([a, b]);
  }
});

// ---------------------------------------------------------------------------
// --web: worker 1 serves the page; its browsers are in the same room.

/** A WebSocket member: its name and worker, read from the welcome. */
async function webJoin(port: number): Promise<WsClient & { name: string }> {
  const ws = await WsClient.open(port);
  const welcome = await ws.until(/^\* welcome/);
  const name = welcome.match(/^\* welcome (guest-\d+) \(worker 1\)/)?.[1];
  assert(name, `unexpected welcome: ${welcome}`);
  return Object.assign(ws, { name });
}

for (const [mode, flags] of MODES) {
  Deno.test({
    name:
      `threaded chat (${mode}) --web: worker 1 serves the page; a browser and clients on both workers chat in one room`,
    ignore: mode === "reuse-port" && !REUSE_PORT_OK,
    async fn() {
      await using server = await startWebServer(
        ["--workers", "2", "--stats-interval", "0", ...flags],
        0,
        SERVER,
      );
      const page = await fetch(server.url);
      assertEquals(page.status, 200);
      assertStringIncludes(await page.text(), "<script");

      const chatters: Chatter[] = [];
      await using ws = await webJoin(server.web);
      try {
        while (new Set(chatters.map((c) => c.worker)).size < 2) {
          chatters.push(await join(server));
          assert(chatters.length < 60, "the clients never reached worker 2");
        }
        const two = chatters.find((c) => c.worker === 2)!;
        const names = new Set(chatters.map((c) => c.name));

        // Names are the room's: the browser cannot take worker 2's.
        two.ignore(new Set([...names].map((name) => `* ${name} has joined`)));
        await two.send("/nick zed");
        assertEquals(await two.until(/^\* you/), "* you are now zed");
        names.delete(two.name);
        names.add("zed");
        ws.send("/nick ZED");
        assertEquals(
          await ws.until(/^\* (cannot|you)/),
          '* cannot use that name: "ZED" is taken',
        );
        ws.send("/nick webby");
        assertEquals(await ws.until(/^\* (cannot|you)/), "* you are now webby");
        await two.until(new RegExp(`^\\* ${ws.name} is now webby$`));

        ws.send("hello from the browser");
        await two.until(/^webby: hello from the browser$/);
        await two.send("hello back from worker 2");
        await ws.until(/^zed: hello back from worker 2$/);
        ws.send("/who");
        const who = await ws.until(/here:/);
        for (const name of [...names, "webby"]) {
          assertMatch(who, new RegExp(`[:,] ${name}(,|$)`));
        }
      } finally {
        closeAll(chatters);
      }
      ws.send("/quit bye all");
      assertEquals((await ws.closed).code, 1000);
      await server.stdout.waitFor(/webby left \(quit: bye all\)/);
    },
  });
}

Deno.test({
  name:
    "threaded chat --web: after a crash drill on worker 1 its browser is told, and the replacement serves the page on the same port",
  ignore: !REUSE_PORT_OK,
  async fn() {
    await using server = await startWebServer(
      ["--workers", "2", "--stats-interval", "0"],
      0,
      SERVER,
    );
    const ws = await webJoin(server.web);
    await using _ = ws;
    server.kill("SIGUSR2"); // crash drill: worker 1
    await ws.until(/^\* server error in worker 1; disconnecting/);
    assert((await ws.closed).code !== 1006, "closed without a close frame");
    await server.stdout.waitFor(/worker 1 replaced/);

    await using again = await webJoin(server.web);
    const chatter = await join(server);
    try {
      again.send("back");
      await chatter.until(new RegExp(`^${again.name}: back$`));
    } finally {
      closeAll([chatter]);
    }
  },
});

Deno.test("threaded chat --web --tls: worker 1 serves the page over HTTPS and the chat over WSS", async () => {
  await using files = await certificateDir();
  await using server = await startWebServer(
    ["--workers", "2", ...tlsFlags(files)],
    0,
    SERVER,
  );
  using client = Deno.createHttpClient({
    caCerts: [await Deno.readTextFile(files.cert)],
  });
  const page = await fetch(`https://127.0.0.1:${server.web}/`, { client });
  assertEquals(page.status, 200);
  await page.body?.cancel();
  assertMatch(
    await wssFirstMessage(server.web, files.cert),
    /^\* welcome guest-1 \(worker 1\): 0 others here;/,
  );
});

Deno.test("threaded chat --web: a web port in use is one sentence naming --web, exit 1, no worker traces", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const result = await runCommand(Deno.execPath(), [
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-env=WS_NO_BUFFER_UTIL,WS_NO_UTF_8_VALIDATE",
    scriptPath(SERVER),
    "--port",
    "0",
    "--web",
    String(taken.addr.port),
  ]);
  assertEquals(result.code, 1);
  assertStringIncludes(result.stderr, "already in use");
  assertStringIncludes(result.stderr, "--web");
  assertNotMatch(result.stderr, /Uncaught|at \w+ \(/);
});

Deno.test("threaded chat --web: without the WebSocket library's permission, one sentence that names it, exit 1", async () => {
  const result = await runCommand(Deno.execPath(), [
    "run",
    "--allow-net",
    "--allow-read",
    scriptPath(SERVER),
    "--port",
    "0",
    "--web",
    "0",
  ]);
  assertEquals(result.code, 1);
  assertEquals(
    result.stderr,
    "error: --web needs --allow-env=WS_NO_BUFFER_UTIL,WS_NO_UTF_8_VALIDATE " +
      "(the WebSocket library reads them as it loads), or run with -A\n",
  );
});

for (const [mode, flags] of MODES) {
  Deno.test({
    name:
      `threaded chat (${mode}): many senders at once slow a slow reader's senders down; it is never cut off`,
    ignore: mode === "reuse-port" && !REUSE_PORT_OK,
    fn: () => manySendersSlowReader(flags),
  });
}

async function manySendersSlowReader(flags: string[]): Promise<void> {
  await using server = await startServer(SERVER, ["--workers", "2", ...flags]);
  const SENDERS = 16;
  const LINES = 1024; // each sender's, 1 KiB each: 16 MiB to the slow reader
  const chatters = await joinAll(server, SENDERS + 1);
  const [reader, ...senders] = chatters;
  const line = enc.encode(`${"x".repeat(1023)}\n`);
  const total = SENDERS * LINES * 1023;
  try {
    // The reader takes 16 KiB a millisecond at most: slower than the senders
    // together, so its outbox fills, yet it never stops reading.
    const slowly = countXs(reader.conn, { count: total, pauseMs: 1 });
    const others = senders.map((s) =>
      countXs(s.conn, { count: total - LINES * 1023 })
    );
    const writes = await Promise.allSettled(senders.map(async (s) => {
      for (let i = 0; i < LINES; i++) await writeAll(s.conn, line);
    }));
    const got = await slowly;
    await Promise.all(others);
    assertEquals(
      server.stdout.lines.filter((l) => l.includes("too slow")),
      [],
      "reading clients were cut off as too slow",
    );
    assertEquals(writes.filter((w) => w.status === "rejected").length, 0);
    assertEquals(got, total, "the slow reader missed bytes");
  } finally {
    closeAll(chatters);
  }
}

/**
 * Counts bytes "x" read until `count` arrived, the connection ended, or
 * nothing came for 10 s (a client cut off means some bytes never come),
 * pausing `pauseMs` after each read.
 */
async function countXs(
  conn: Deno.Conn,
  options: { count: number; pauseMs?: number },
): Promise<number> {
  const buffer = new Uint8Array(16384);
  let xs = 0;
  try {
    while (xs < options.count) {
      const read = conn.read(buffer);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        read,
        new Promise<"quiet">((resolve) => {
          timer = setTimeout(() => resolve("quiet"), 10_000);
        }),
      ]);
      clearTimeout(timer);
      if (n === "quiet") {
        read.catch(() => {}); // ends when the test closes the connection
        break;
      }
      if (n === null) break;
      for (let i = 0; i < n; i++) if (buffer[i] === 0x78) xs++;
      if (options.pauseMs) await delay(options.pauseMs);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
  }
  return xs;
}

for (const [mode, flags] of MODES) {
  Deno.test({
    name:
      `threaded chat (${mode}) --web: a browser sending faster than a TCP client reads is held back, as a TCP sender is; the reader gets every line and is never cut off`,
    ignore: mode === "reuse-port" && !REUSE_PORT_OK,
    async fn() {
      await using server = await startWebServer(
        ["--workers", "2", "--stats-interval", "0", ...flags],
        0,
        SERVER,
      );
      const [reader] = await joinAll(server, 1);
      await using ws = await webJoin(server.web);
      try {
        await reader.until(new RegExp(`^\\* ${ws.name} has joined$`));
        // The reader takes 32 KiB per 5 ms, half the browser's pace (much
        // slower, a reader under a flood looks stopped to the stall rule:
        // docs/reliability.md); the browser sends 16 MiB, 128 KiB per 10 ms:
        // more than the sockets between them hold and the reader's outbox
        // (1 MiB) together, unless the relay waits for it.
        const LINES = 16384;
        const slowly = readFlood(reader.conn, { from: ws.name, pauseMs: 5 });
        const text = "x".repeat(1023);
        for (let i = 0; i < LINES && ws.socket.readyState === 1; i++) {
          ws.send(text);
          if (i % 128 === 127) await delay(10);
        }
        if (ws.socket.readyState === 1) ws.send("END");
        const { lines, end } = await slowly;
        assertEquals(
          server.stdout.lines.filter((l) => l.includes("too slow")),
          [],
          "the reader was cut off",
        );
        assertEquals(end, "END", "the browser was cut off");
        assertEquals(lines, LINES, "the reader missed lines");
      } finally {
        closeAll([reader]);
      }
    },
  });
}

/**
 * Reads a flood of `from`'s lines of "x", pausing `pauseMs` after each
 * read, until its `END` line or the notice that it left; returns how many
 * lines came and the last one. Throws if the connection ends first.
 */
async function readFlood(
  conn: Deno.Conn,
  options: { from: string; pauseMs: number },
): Promise<{ lines: number; end: string }> {
  const buffer = new Uint8Array(32768);
  const decoder = new TextDecoder();
  const flood = `${options.from}: x`;
  let lines = 0;
  let partial = "";
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) {
      throw new Error(`the reader's connection ended after ${lines} lines`);
    }
    const parts =
      (partial + decoder.decode(buffer.subarray(0, n), { stream: true }))
        .split("\n");
    partial = parts.pop()!;
    for (const line of parts) {
      if (line.startsWith(flood)) lines++;
      else if (line === `${options.from}: END`) return { lines, end: "END" };
      else if (line.startsWith(`* ${options.from} has left`)) {
        return { lines, end: line };
      }
    }
    await delay(options.pauseMs);
  }
}
