import {
  assert,
  assertEquals,
  assertMatch,
  assertNotMatch,
  assertRejects,
  assertStringIncludes,
} from "./_assert.ts";
import { ServerClosedError } from "../lib/errors.ts";
import { writeAll, type Writer } from "../lib/io.ts";
import { CLEAR_LINE, LineEditor } from "../lib/line_editor.ts";
import {
  isQuitCommand,
  PipedConsole,
  quitNotes,
  type Reader,
  readLines,
  ScreenText,
  TerminalConsole,
} from "../lib/terminal.ts";
import { readAll, runScript, scriptPath, startServer } from "./_helpers.ts";
import { PseudoTerminal } from "./_pty.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

// ---------------------------------------------------------------------------
// Fakes

/** Input fed by the test, chunk by chunk; `end()` is end of input. */
class FakeInput implements Reader {
  raw: boolean[] = [];
  #chunks: (Uint8Array | null)[] = [];
  #wake: (() => void) | null = null;

  feed(text: string): void {
    this.#chunks.push(enc.encode(text));
    this.#wake?.();
  }

  end(): void {
    this.#chunks.push(null);
    this.#wake?.();
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    const chunk = this.#chunks.shift()!;
    if (chunk === null) return null;
    p.set(chunk);
    return chunk.length;
  }

  setRaw(mode: boolean): void {
    this.raw.push(mode);
  }
}

/** Output kept as text. */
class FakeOutput implements Writer {
  text = "";
  write(p: Uint8Array): Promise<number> {
    this.text += dec.decode(p);
    return Promise.resolve(p.length);
  }
}

/** A terminal console on fakes, with a resize the test can trigger. */
function fakeTerminal(quit: "end" | "send" = "end") {
  const input = new FakeInput();
  const output = new FakeOutput();
  const errors = new FakeOutput();
  let width = 80;
  let resized = (): void => {};
  const console = new TerminalConsole({
    input,
    output,
    errors,
    columns: () => width,
    onResize(redraw) {
      resized = redraw;
      return () => (resized = () => {});
    },
  }, { prompt: "> ", quit });
  return {
    console,
    input,
    output,
    errors,
    resize(columns: number) {
      width = columns;
      resized();
    },
  };
}

/** Waits until `check()` holds, on the next turns of the event loop. */
async function settled(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000 && !check(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  assert(check(), `never: ${what}`);
}

/** Collects the lines of a console into `into` until they end. */
async function collect(
  lines: AsyncIterable<Uint8Array>,
  into: string[],
): Promise<void> {
  for await (const line of lines) into.push(dec.decode(line));
}

// ---------------------------------------------------------------------------
// Unit: the pieces

Deno.test("ScreenText: ESC, BEL and C1 CSI are escaped; line breaks and tabs kept", () => {
  const screen = new ScreenText();
  assertEquals(
    screen.push(enc.encode("\x1b[2J\x1b]0;pwned\x07a\tb\r\nc\u009b1m\n")),
    "^[[2J^[]0;pwned^Ga\tb\nc\\x9b1m\n",
  );
});

Deno.test("ScreenText: UTF-8 and \\r\\n split across reads are joined", () => {
  const screen = new ScreenText();
  const bytes = enc.encode("é\r\n");
  assertEquals(
    [bytes.subarray(0, 1), bytes.subarray(1, 3), bytes.subarray(3)]
      .map((part) => screen.push(part)).join(""),
    "é\n",
  );
});

Deno.test("isQuitCommand: /quit alone or with a message, as the servers read it", () => {
  for (const yes of ["/quit", "/quit\n", "/quit\r\n", "/quit bye now\n"]) {
    assertEquals(isQuitCommand(enc.encode(yes)), true, yes);
  }
  for (const no of ["quit\n", "/quitter\n", " /quit\n", "//quit\n", ""]) {
    assertEquals(isQuitCommand(enc.encode(no)), false, no);
  }
});

Deno.test("quitNotes: say /quit, Ctrl+D and Ctrl+C (130), and whether /quit is sent", () => {
  for (const mode of ["end", "send"] as const) {
    const text = quitNotes(mode).join(" ");
    for (const part of ["/quit", "Ctrl+D", "Ctrl+C", "130"]) {
      assertStringIncludes(text, part);
    }
  }
  assertStringIncludes(quitNotes("send").join(" "), "is sent");
  assertStringIncludes(quitNotes("end").join(" "), "is not sent");
});

Deno.test("readLines: lines keep their ends; a last partial line is kept", async () => {
  const input = new FakeInput();
  input.feed("a\nb");
  input.feed("c\r\nd");
  input.end();
  const lines = (await Array.fromAsync(readLines(input))).map((l) =>
    dec.decode(l)
  );
  assertEquals(lines, ["a\n", "bc\r\n", "d"]);
});

Deno.test("PipedConsole: /quit ends the lines unsent (echo); a bare 'quit' is a line", async () => {
  const input = new FakeInput();
  input.feed("a\nquit\n/quit\nb\n");
  const console = new PipedConsole({
    input,
    output: new FakeOutput(),
    errors: new FakeOutput(),
  }, { quit: "end" });
  const lines: string[] = [];
  await collect(console.lines(), lines);
  assertEquals(lines, ["a\n", "quit\n"]);
});

Deno.test("PipedConsole: /quit [message] is sent, then the lines end (chat)", async () => {
  const input = new FakeInput();
  input.feed("a\n/quit bye\nb\n");
  const console = new PipedConsole({
    input,
    output: new FakeOutput(),
    errors: new FakeOutput(),
  }, { quit: "send" });
  const lines: string[] = [];
  await collect(console.lines(), lines);
  assertEquals(lines, ["a\n", "/quit bye\n"]);
});

Deno.test("PipedConsole: the receiving side ending first stops the lines with ServerClosedError", async () => {
  const input = new FakeInput();
  input.feed("a\n"); // and the input stays open
  const console = new PipedConsole({
    input,
    output: new FakeOutput(),
    errors: new FakeOutput(),
  });
  let serverClosed = (): void => {};
  const until = new Promise<void>((resolve) => (serverClosed = resolve));
  const lines: string[] = [];
  const running = collect(console.lines({ until }), lines);
  await settled(() => lines.length === 1, "the first line");
  serverClosed();
  await assertRejects(() => running, ServerClosedError);
  assertEquals(lines, ["a\n"]);
  input.end(); // lets the read left pending finish
});

Deno.test("PipedConsole: the receiving side failing stops the lines with its error", async () => {
  const input = new FakeInput();
  const console = new PipedConsole({
    input,
    output: new FakeOutput(),
    errors: new FakeOutput(),
  });
  const until = Promise.reject(new Deno.errors.ConnectionReset("reset"));
  await assertRejects(
    () => collect(console.lines({ until }), []),
    Deno.errors.ConnectionReset,
  );
  input.end();
});

Deno.test("PipedConsole: shows bytes exactly, or escaped when stdout is a terminal", async () => {
  const bytes = Uint8Array.of(0x1b, 0x5b, 0x32, 0x4a, 0x00, 0xff, 0x0a);
  const exact = new FakeOutput();
  const chunks: Uint8Array[] = [];
  await new PipedConsole({
    input: new FakeInput(),
    output: {
      write(p) {
        chunks.push(p.slice());
        return Promise.resolve(p.length);
      },
    },
    errors: exact,
  }).show(bytes);
  assertEquals(chunks, [bytes]);
  const escaped = new FakeOutput();
  await new PipedConsole({
    input: new FakeInput(),
    output: escaped,
    errors: new FakeOutput(),
  }, { escape: true }).show(bytes);
  assertEquals(escaped.text, "^[[2J^@\uFFFD\n");
});

Deno.test("TerminalConsole: text arriving while typing goes above; the typed text is redrawn", async () => {
  const t = fakeTerminal();
  const lines: string[] = [];
  const running = collect(t.console.lines(), lines);
  t.input.feed("hel");
  await settled(() => t.output.text.endsWith("> hel"), "the typed text");
  await t.console.show(enc.encode("news\x1b[2J\n"));
  assert(
    t.output.text.endsWith(`${CLEAR_LINE}news^[[2J\r\n${CLEAR_LINE}> hel`),
    JSON.stringify(t.output.text),
  );
  t.input.feed("lo\r\x04");
  await running;
  assertEquals(lines, ["hello\n"]);
  assertEquals(t.input.raw, [true, false]);
});

Deno.test("TerminalConsole: a resize redraws the prompt row at the new width", async () => {
  const t = fakeTerminal();
  const running = collect(t.console.lines(), []);
  const typed = "abcdefghij".repeat(6);
  t.input.feed(typed);
  await settled(() => t.output.text.includes(typed), "the typed text");
  t.resize(30);
  const editor = new LineEditor("> ");
  editor.feed(enc.encode(typed));
  await settled(
    () => t.output.text.endsWith(editor.render(30)),
    `redrawn at 30 columns: ${JSON.stringify(t.output.text.slice(-80))}`,
  );
  t.input.feed("\x15\x04"); // Ctrl+U, Ctrl+D
  await running;
});

Deno.test("TerminalConsole: the server closing while typing clears the row and leaves raw mode", async () => {
  const t = fakeTerminal();
  let serverClosed = (): void => {};
  const until = new Promise<void>((resolve) => (serverClosed = resolve));
  const running = collect(t.console.lines({ until }), []);
  t.input.feed("partial");
  await settled(() => t.output.text.endsWith("> partial"), "the typed text");
  serverClosed();
  await assertRejects(() => running, ServerClosedError);
  assert(t.output.text.endsWith(`> partial${CLEAR_LINE}`), t.output.text);
  assertEquals(t.input.raw, [true, false]);
  t.input.end();
});

Deno.test("TerminalConsole: a status line gets a row of its own; the typed text comes back", async () => {
  const t = fakeTerminal();
  const running = collect(t.console.lines(), []);
  t.input.feed("abc");
  await settled(() => t.output.text.endsWith("> abc"), "the typed text");
  await t.console.status("waiting");
  assertEquals(t.errors.text, "-- waiting\r\n");
  assert(t.output.text.endsWith(`> abc${CLEAR_LINE}${CLEAR_LINE}> abc`));
  t.input.feed("\x15\x04"); // Ctrl+U, Ctrl+D
  await running;
});

Deno.test("TerminalConsole: /quit [message] is sent (chat), then raw mode ends", async () => {
  const t = fakeTerminal("send");
  const lines: string[] = [];
  const running = collect(t.console.lines(), lines);
  t.input.feed("hi\r/quit bye\rnot read\r");
  await running;
  assertEquals(lines, ["hi\n", "/quit bye\n"]);
  assertEquals(t.input.raw, [true, false]);
});

// ---------------------------------------------------------------------------
// End to end: the echo clients, as users found them

const BASIC_SERVER = "basic/server.ts";
const BASIC_CLIENT = "basic/client.ts";

/**
 * A server made by the test: accepts one client, then does what `serve`
 * says with it; closes everything when disposed.
 */
function fakeServer(serve: (conn: Deno.Conn) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await listener.accept();
    try {
      await serve(conn);
    } finally {
      try {
        conn.close();
      } catch {
        // closed by `serve`
      }
    }
  })();
  return {
    port: listener.addr.port,
    served,
    async [Symbol.asyncDispose]() {
      listener.close();
      await served.catch(() => {});
    },
  };
}

function onTerminal(script: string, args: string[], columns = 80) {
  return PseudoTerminal.start(
    ["run", "--allow-net", scriptPath(script), ...args],
    { columns },
  );
}

const NO_PTY = "skipped: python3 is not available to play the terminal";

/** {@linkcode CLEAR_LINE}, for a regular expression. */
const CLEAR = CLEAR_LINE.replace(/[[\]\\^$.|?*+()]/g, "\\$&");

Deno.test("basic client on a terminal: ESC, BEL and C1 CSI from the server show escaped", async () => {
  const hostile = "\x1b[2J\x1b]0;pwned\x07hi\u009b1m\n";
  await using server = fakeServer(async (conn) => {
    await writeAll(conn, enc.encode(hostile));
    await readAll(conn); // until the client shuts down its side
  });
  await using term = onTerminal(BASIC_CLIENT, ["--port", `${server.port}`]);
  if (!term) return console.log(NO_PTY);
  await term.waitFor("^[[2J^[]0;pwned^Ghi\\x9b1m");
  await term.type("\x04");
  assertEquals(await term.exited(), 0, term.screen);
  // deno-lint-ignore no-control-regex -- the terminal's escape sequences are the point
  assertNotMatch(term.screen, /\x1b\[2J|\x1b\]0;|\x07|\u009b/);
});

Deno.test("basic client piped: the server's bytes come out byte-exact", async () => {
  const bytes = new Uint8Array(256 * 4).map((_, i) => i % 256);
  await using server = fakeServer(async (conn) => {
    await writeAll(conn, bytes);
    await readAll(conn);
  });
  const result = await runScript(BASIC_CLIENT, ["--port", `${server.port}`]);
  assertEquals(result.code, 0, result.stderr);
  assertEquals(result.stdout, bytes);
});

Deno.test("basic client: /quit ends the session unsent; the replies due are shown", async () => {
  await using server = await startServer(BASIC_SERVER);
  const result = await runScript(
    BASIC_CLIENT,
    ["--port", String(server.port)],
    "a\n/quit\nb\n",
  );
  assertEquals(result.code, 0, result.stderr);
  assertEquals(dec.decode(result.stdout), "a\n");
});

Deno.test("basic client: a bare 'quit' is sent like any line", async () => {
  await using server = await startServer(BASIC_SERVER);
  const result = await runScript(
    BASIC_CLIENT,
    ["--port", String(server.port)],
    "quit\nb\n",
  );
  assertEquals(result.code, 0, result.stderr);
  assertEquals(dec.decode(result.stdout), "quit\nb\n");
});

Deno.test("basic client on a terminal: /quit exits 0 and restores the terminal", async () => {
  await using server = await startServer(BASIC_SERVER);
  await using term = onTerminal(BASIC_CLIENT, ["--port", `${server.port}`]);
  if (!term) return console.log(NO_PTY);
  await term.waitFor("> ");
  await term.type("hi\r");
  await term.waitFor(/hi\r+\n/); // typed
  await term.waitFor(/hi\r+\n/); // echoed
  await term.type("/quit\r");
  assertEquals(await term.exited(), 0, term.screen);
  assertEquals(term.restored, true, "the terminal was left raw");
  assertNotMatch(term.screen, /error/);
});

Deno.test("basic client on a terminal: Ctrl+D on an empty line ends the session, exit 0", async () => {
  await using server = await startServer(BASIC_SERVER);
  await using term = onTerminal(BASIC_CLIENT, ["--port", `${server.port}`]);
  if (!term) return console.log(NO_PTY);
  await term.waitFor("> ");
  await term.type("\x04");
  assertEquals(await term.exited(), 0, term.screen);
  assertEquals(term.restored, true);
});

Deno.test("basic client on a terminal: Ctrl+C exits 130 at once and restores the terminal", async () => {
  await using server = fakeServer((conn) => readAll(conn).then(() => {}));
  await using term = onTerminal(BASIC_CLIENT, ["--port", `${server.port}`]);
  if (!term) return console.log(NO_PTY);
  await term.waitFor("> ");
  await term.type("abc");
  await term.waitFor("abc");
  await term.type("\x03");
  assertEquals(await term.exited(), 130, term.screen);
  assertEquals(term.restored, true);
});

Deno.test("basic client on a terminal: the server closing while a line is typed prints the error on a clean row", async () => {
  let close = (): void => {};
  const closed = new Promise<void>((resolve) => (close = resolve));
  await using server = fakeServer(() => closed);
  await using term = onTerminal(BASIC_CLIENT, ["--port", `${server.port}`]);
  if (!term) return console.log(NO_PTY);
  await term.waitFor("> ");
  await term.type("partial");
  await term.waitFor("> partial");
  close();
  assertEquals(await term.exited(), 1, term.screen);
  assertNotMatch(term.screen, /partialerror/);
  // After the typed text: only cursor moves and clears, then the error.
  const moves = String.raw`(?:\r|\x1b\[[0-9;]*[A-Za-z])*`;
  assertMatch(
    term.screen,
    new RegExp(
      `> partial${moves}${CLEAR}${moves}error: the server closed the connection\\.`,
    ),
  );
  assertEquals(term.restored, true, "the terminal was left raw");
});

Deno.test("basic client on a terminal: text arriving while typing goes above; the typed text comes back", async () => {
  let send = (_: string): void => {};
  await using server = fakeServer(async (conn) => {
    const sent = new Promise<string>((resolve) => (send = resolve));
    await writeAll(conn, enc.encode(await sent));
    await readAll(conn);
  });
  await using term = onTerminal(BASIC_CLIENT, ["--port", `${server.port}`]);
  if (!term) return console.log(NO_PTY);
  await term.waitFor("> ");
  await term.type("typed");
  await term.waitFor("> typed");
  send("news\n");
  await term.waitFor(new RegExp(`${CLEAR}news\r+\n`));
  await term.waitFor("> typed");
  await term.type("\x15\x04");
  assertEquals(await term.exited(), 0, term.screen);
});

Deno.test("basic client on a terminal: a resize redraws the prompt row at the new width", async () => {
  await using server = fakeServer((conn) => readAll(conn).then(() => {}));
  await using term = onTerminal(BASIC_CLIENT, ["--port", `${server.port}`]);
  if (!term) return console.log(NO_PTY);
  const typed = "abcdefghij".repeat(6);
  await term.waitFor("> ");
  await term.type(typed);
  await term.waitFor(`> ${typed}`);
  await term.resize(30);
  // The row redrawn: the prompt and the end of the text, within 30 columns.
  // (The editor marks a cut-off start with "<".)
  const redrawn = await term.waitFor(new RegExp(`${CLEAR}> <?[a-j]+`));
  const shown = redrawn.slice(`${CLEAR_LINE}> `.length).replace(/^</, "");
  assert(typed.endsWith(shown), `not the end of the text: ${shown}`);
  assert(
    shown.length + 2 < 30 && shown.length >= 10,
    `${shown.length} columns of text shown at a width of 30`,
  );
  await term.type("\x15\x04");
  assertEquals(await term.exited(), 0, term.screen);
});

Deno.test("basic client: a closed stdout (| head -c 10) ends it quietly, exit 0", async () => {
  await using server = await startServer(BASIC_SERVER);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      scriptPath(BASIC_CLIENT),
      "--port",
      `${server.port}`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  // Input that outlasts the reader: the client is still writing when it goes.
  const writer = child.stdin.getWriter();
  const input = (async () => {
    try {
      for (let i = 0; i < 64; i++) {
        await writer.write(enc.encode(`${"x".repeat(1023)}\n`.repeat(64)));
      }
      await writer.close();
    } catch {
      // the client is gone: expected
    }
  })();
  const reader = child.stdout.getReader();
  let got = 0;
  while (got < 10) {
    const { value, done } = await reader.read();
    if (done) break;
    got += value.length;
  }
  await reader.cancel(); // as head does after 10 bytes
  const [status, stderr] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
    input,
  ]);
  assertEquals(status.code, 0, stderr);
  assertEquals(stderr, "");
});
