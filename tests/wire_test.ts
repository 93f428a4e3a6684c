import fc from "fast-check";
import { concat, setColorEnabled } from "../lib/std.ts";
import { parseCli, usage } from "../lib/cli.ts";
import { FrameTracker, type WireFraming } from "../lib/frame_tracker.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "./_assert.ts";
import { encodeFrame, encodeLine } from "../lib/encoders.ts";
import { writeAll } from "../lib/io.ts";
import {
  WIRE_FLAG,
  WireLog,
  wireLogFor,
  type WireLogOptions,
} from "../lib/wire.ts";
import {
  wireAccepted,
  WireConn,
  wireConn,
  wireConnected,
} from "../lib/wire_conn.ts";
import { installed } from "../tools/server_process.ts";
import { cutAt, HAVE_PYTHON, readBytes, resetClient } from "./_helpers.ts";

const enc = new TextEncoder();

/** A connection as the log sees it: two addresses. */
const PEER = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 52144 },
  localAddr: { transport: "tcp", hostname: "127.0.0.1", port: 5000 },
} as const;

/** A wire log writing into an array, at a fixed time, without colors. */
function capture(
  options: WireLogOptions = {},
): { wire: WireLog; lines: string[] } {
  const lines: string[] = [];
  const wire = new WireLog({
    color: false,
    clock: () => new Date(2026, 0, 1, 14, 2, 3, 117),
    write: (line) => lines.push(line),
    ...options,
  });
  return { wire, lines };
}

/** The rows under each event, without the indent, one string per event. */
function readAll(
  chunks: (string | Uint8Array)[],
  options: WireLogOptions = {},
): string[] {
  const { wire, lines } = capture(options);
  for (const chunk of chunks) {
    wire.read(PEER, typeof chunk === "string" ? enc.encode(chunk) : chunk);
  }
  return lines.map((line) => line.replace(/^ {13}/, ""));
}

// ---------------------------------------------------------------------------
// Events

Deno.test("wire: a read is one line with the peer, a timestamp and the count", () => {
  assertEquals(readAll(["hi"]), [
    "14:02:03.117 read 2 bytes from 127.0.0.1:52144",
    "│ hi",
  ]);
  assertEquals(
    readAll(["x"])[0],
    "14:02:03.117 read 1 byte from 127.0.0.1:52144",
  );
});

Deno.test("wire: a short write says how much of how much", () => {
  const { wire, lines } = capture();
  wire.wrote(PEER, { asked: enc.encode("abcdefgh"), written: 3 });
  assertEquals(lines, [
    "14:02:03.117 wrote 3 of 8 bytes to 127.0.0.1:52144 (a short write: the rest needs another write)",
    "             │ abc",
  ]);
});

Deno.test("wire: accept, connect, end of stream, half-close, close and reset are one line each", () => {
  const { wire, lines } = capture();
  wire.accepted(PEER);
  wire.connected(PEER);
  wire.read(PEER, null);
  wire.closedWrite(PEER);
  wire.failed(PEER, {
    call: "read",
    error: new Deno.errors.ConnectionReset("reset"),
  });
  wire.failed(PEER, {
    call: "write",
    error: new Deno.errors.BrokenPipe("Broken pipe (os error 32)"),
  });
  wire.resetHere(PEER);
  wire.closed(PEER);
  assertEquals(lines.map((l) => l.slice(13)), [
    "accepted a connection from 127.0.0.1:52144 on 127.0.0.1:5000",
    "connected to 127.0.0.1:52144 from 127.0.0.1:5000",
    "end of stream from 127.0.0.1:52144: read returned null (it half-closed: FIN)",
    "half-closed our side to 127.0.0.1:52144: closeWrite() sent FIN; reading goes on",
    "read from 127.0.0.1:52144: connection reset by the peer (RST: it closed abruptly or crashed)",
    "write to 127.0.0.1:52144 failed: BrokenPipe: Broken pipe (os error 32)",
    "reset the connection with 127.0.0.1:52144: sent RST, not FIN",
    "closed the connection with 127.0.0.1:52144",
  ]);
});

// ---------------------------------------------------------------------------
// Bytes as text, bytes as hex

Deno.test("wire: controls are escaped (\\n \\r \\t \\x00 \\x1b \\\\), invalid UTF-8 as \\xNN, valid UTF-8 as characters", () => {
  const bytes = concat([
    enc.encode("a\tb\r\n"),
    Uint8Array.of(0x00, 0x1b, 0x5c, 0xff, 0x7f),
    enc.encode(" é 中 ✓"),
  ]);
  assertEquals(readAll([bytes]).slice(1), [
    "│ a\\tb\\r\\n",
    "│ \\x00\\x1b\\\\\\xff\\x7f é 中 ✓",
  ]);
});

Deno.test("wire: C1 controls, bidi overrides and line separators are escaped, emoji joiners kept", () => {
  const rows = readAll(["\u0085 \u202e \u2028 \u{1F468}\u200D\u{1F469}"]);
  assertEquals(rows[1], "│ \\u0085 \\u202e \\u2028 \u{1F468}\u200D\u{1F469}");
});

Deno.test("wire: a character cut by the end of a read is escaped as text, not dumped as hex", () => {
  const euro = enc.encode("€"); // e2 82 ac
  const rows = readAll([
    concat([enc.encode("price: "), euro.subarray(0, 2)]),
    euro.subarray(2),
  ]);
  assertEquals(rows[1], "│ price: \\xe2\\x82");
  assertEquals(rows[3], "│ \\xac");
});

// deno-lint-ignore no-control-regex -- what must never be printed
const UNPRINTABLE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e]/;

Deno.test("wire: property (fast-check): no raw control character ever reaches the output", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 600 }),
      fc.constantFrom<WireFraming>("none", "line", "length"),
      fc.constantFrom<"text" | "hex">("text", "hex"),
      (bytes, framing, mode) => {
        for (const line of readAll([bytes], { framing, mode, maxLines: 50 })) {
          assert(!UNPRINTABLE.test(line), line);
        }
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("wire: a mostly binary chunk is a hex dump: offset, hex pairs, ASCII gutter", () => {
  const bytes = Uint8Array.from({ length: 20 }, (_, i) => i === 3 ? 0x41 : i);
  assertEquals(readAll([bytes]).slice(1), [
    "│ 0000: 0001 0241 0405 0607 0809 0a0b 0c0d 0e0f  ...A............",
    "│ 0010: 1011 1213                                ....",
  ]);
});

Deno.test("wire: mode hex dumps text too", () => {
  assertEquals(readAll(["hello\n"], { mode: "hex" }).slice(1), [
    "│ 0000: 6865 6c6c 6f0a                           hello.",
  ]);
});

Deno.test("wire: text rows wrap at the width; a wide character takes two columns", () => {
  // width 40: 25 columns of data after the indent and the gutter
  const rows = readAll(["a".repeat(60)], { width: 40 }).slice(1);
  assertEquals(rows, [
    `│ ${"a".repeat(25)}`,
    `│ ${"a".repeat(25)}`,
    `│ ${"a".repeat(10)}`,
  ]);
  const wide = readAll(["中".repeat(20)], { width: 40 }).slice(1);
  assertEquals(wide, [`│ ${"中".repeat(12)}`, `│ ${"中".repeat(8)}`]);
});

Deno.test("wire: text breaks rows after \\n in a stream without framing", () => {
  assertEquals(readAll(["one\ntwo\nthree"]).slice(1), [
    "│ one\\n",
    "│ two\\n",
    "│ three",
  ]);
});

Deno.test("wire: a long chunk is cut after maxLines rows: … N more bytes", () => {
  const rows = readAll(["x".repeat(60_000 + 4 * 65)]).slice(1);
  assertEquals(rows.length, 5);
  assertEquals(rows[4], "… 60,000 more bytes");
  assertEquals(readAll(["abcdef"], { width: 32, maxLines: 1 }).slice(1), [
    "│ abcdef",
  ]);
  assertEquals(readAll(["a\nb\nc"], { maxLines: 2 }).slice(1), [
    "│ a\\n",
    "│ b\\n",
    "… 1 more byte",
  ]);
});

Deno.test("wire: a hex dump is cut after maxRows rows", () => {
  const rows = readAll([new Uint8Array(16 * 8 + 100)]).slice(1);
  assertEquals(rows.length, 9);
  assertEquals(rows[7].slice(0, 9), "│ 0070: 0");
  assertEquals(rows[8], "… 100 more bytes");
  assertEquals(readAll([new Uint8Array(40)], { maxRows: 1 }).slice(1), [
    "│ 0000: 0000 0000 0000 0000 0000 0000 0000 0000  ................",
    "… 24 more bytes",
  ]);
});

// ---------------------------------------------------------------------------
// Frames

Deno.test("wire: line framing marks a message ending inside a read and a read ending inside a message", () => {
  assertEquals(readAll(["hello\nhow are you\ns"], { framing: "line" }), [
    "14:02:03.117 read 19 bytes from 127.0.0.1:52144",
    "│ hello\\n",
    "└ message 1 ends (6 bytes)",
    "│ how are you\\n",
    "└ message 2 ends (12 bytes)",
    "│ s",
    "… message 3 continues in the next read (1 byte so far)",
  ]);
});

Deno.test("wire: a message over several reads says how many, and counts on", () => {
  const rows = readAll(["ab", "cd", "e\nf\n"], { framing: "line" });
  assertEquals(rows, [
    "14:02:03.117 read 2 bytes from 127.0.0.1:52144",
    "│ ab",
    "… message 1 continues in the next read (2 bytes so far)",
    "14:02:03.117 read 2 bytes from 127.0.0.1:52144",
    "│ cd",
    "… message 1 continues in the next read (4 bytes so far)",
    "14:02:03.117 read 4 bytes from 127.0.0.1:52144",
    "│ e\\n",
    "└ message 1 ends (6 bytes, over 3 reads)",
    "│ f\\n",
    "└ message 2 ends (2 bytes)",
  ]);
});

Deno.test("wire: writes say 'the next write'; each direction counts its own messages", () => {
  const { wire, lines } = capture({ framing: "line" });
  wire.read(PEER, enc.encode("in\n"));
  wire.wrote(PEER, { asked: enc.encode("out"), written: 3 });
  wire.read(PEER, enc.encode("in again\n"));
  assertEquals(lines.filter((l) => /[└…]/.test(l)).map((l) => l.trim()), [
    "└ message 1 ends (3 bytes)",
    "… message 1 continues in the next write (3 bytes so far)",
    "└ message 2 ends (9 bytes)",
  ]);
});

Deno.test("wire: length framing decodes the prefix: [00 00 00 1d] = 29 bytes", () => {
  const payload = "the quick brown fox jumps ove";
  const frame = encodeFrame(payload);
  assertEquals(readAll([frame.subarray(0, 10)], { framing: "length" }), [
    "14:02:03.117 read 10 bytes from 127.0.0.1:52144",
    "│ [00 00 00 1d] = 29 bytes",
    "│ the qu",
    "… message 1 continues in the next read (6 of 29 bytes so far)",
  ]);
  assertEquals(readAll([frame], { framing: "length" }).slice(1), [
    "│ [00 00 00 1d] = 29 bytes",
    `│ ${payload}`,
    "└ message 1 ends (29 bytes)",
  ]);
});

Deno.test("wire: a length prefix split across reads is decoded once whole", () => {
  const frame = encodeFrame("x".repeat(29));
  const rows = readAll([frame.subarray(0, 2), frame.subarray(2, 8)], {
    framing: "length",
  });
  assertEquals(rows, [
    "14:02:03.117 read 2 bytes from 127.0.0.1:52144",
    "│ [00 00",
    "… length prefix continues in the next read (2 of 4 bytes)",
    "14:02:03.117 read 6 bytes from 127.0.0.1:52144",
    "│ 00 1d] (with the 2 before it: [00 00 00 1d] = 29 bytes)",
    "│ xxxx",
    "… message 1 continues in the next read (4 of 29 bytes so far)",
  ]);
});

Deno.test("wire: a prefix that ends a read leaves its message waiting", () => {
  assertEquals(
    readAll([encodeFrame("abc").subarray(0, 4)], { framing: "length" }).slice(
      1,
    ),
    [
      "│ [00 00 00 03] = 3 bytes",
      "… message 1 continues in the next read (0 of 3 bytes so far)",
    ],
  );
});

Deno.test("wire: zero-length frames end at their prefix", () => {
  const bytes = concat([encodeFrame(""), encodeFrame("hi"), encodeFrame("")]);
  assertEquals(readAll([bytes], { framing: "length" }).slice(1), [
    "│ [00 00 00 00] = 0 bytes",
    "└ message 1 ends (0 bytes: an empty message)",
    "│ [00 00 00 02] = 2 bytes",
    "│ hi",
    "└ message 2 ends (2 bytes)",
    "│ [00 00 00 00] = 0 bytes",
    "└ message 3 ends (0 bytes: an empty message)",
  ]);
});

Deno.test("wire: the cut counts the messages that end in the bytes not shown", () => {
  const rows = readAll(["a\n".repeat(1000) + "partial"], { framing: "line" });
  assertEquals(rows.slice(-2), [
    "… 1,999 more bytes (996 more messages end there)",
    "… message 1001 continues in the next read (7 bytes so far)",
  ]);
  assertEquals(rows.length, 1 + 4 * 2 + 2);
});

Deno.test("wire: in a hex dump the frame marks list their byte ranges", () => {
  const bytes = concat([
    encodeFrame("hello"),
    encodeFrame(""),
    encodeFrame("abc").subarray(0, 5),
  ]);
  assertEquals(readAll([bytes], { framing: "length", mode: "hex" }).slice(1), [
    "│ 0000: 0000 0005 6865 6c6c 6f00 0000 0000 0000  ....hello.......",
    "│ 0010: 0361                                     .a",
    "  0000-0003 [00 00 00 05] = 5 bytes",
    "└ 0004-0008 message 1 ends (5 bytes)",
    "  0009-000c [00 00 00 00] = 0 bytes",
    "└ 000d message 2 ends (0 bytes: an empty message)",
    "  000d-0010 [00 00 00 03] = 3 bytes",
    "… 0011 message 3 continues in the next read (1 of 3 bytes so far)",
  ]);
});

/** Where messages end in the stream, as the tracker reports them over `chunks`. */
function endsSeen(framing: WireFraming, chunks: Uint8Array[]): number[] {
  const tracker = new FrameTracker(framing);
  const ends: number[] = [];
  let offset = 0;
  for (const chunk of chunks) {
    for (const piece of tracker.pieces(chunk)) {
      if (piece.kind === "payload" && piece.ends) ends.push(offset + piece.end);
    }
    offset += chunk.length;
  }
  return ends;
}

/** Where each message ends in the encoded stream. */
function endsOf(messages: Uint8Array[]): number[] {
  let offset = 0;
  return messages.map((m) => (offset += m.length));
}

Deno.test("FrameTracker: property (fast-check): under any chunking, messages end where they were encoded", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      (payloads, cuts) => {
        const frames = payloads.map((p) => encodeFrame(p));
        assertEquals(
          endsSeen("length", cutAt(concat(frames), cuts)),
          endsOf(frames),
        );
        const lines = payloads.map((p) =>
          encodeLine(new TextDecoder().decode(p).replaceAll("\n", " "))
        );
        assertEquals(
          endsSeen("line", cutAt(concat(lines), cuts)),
          endsOf(lines),
        );
      },
    ),
    { numRuns: 300 },
  );
});

// ---------------------------------------------------------------------------
// Colors and the flag

Deno.test("wire: color: false writes no escape codes; color: true styles the event", () => {
  assert(
    readAll(["hi\n"], { framing: "line" }).every((l) => !l.includes("\x1b")),
  );
  if (Deno.noColor) {
    console.log("  color check skipped: NO_COLOR is set for this test run");
    return;
  }
  setColorEnabled(true);
  try {
    const colored = readAll(["hi\n"], { framing: "line", color: true });
    assertStringIncludes(colored[0], "\x1b[");
  } finally {
    setColorEnabled(Deno.stdout.isTerminal());
  }
});

const HAVE_SCRIPT = await installed("script", ["--version"]);

/** What a default WireLog writes to stderr on a terminal (a pty from `script`), with `env` set. */
async function onTerminal(noColor: boolean): Promise<string> {
  const code = `import { WireLog } from "${new URL(
    "../lib/wire.ts",
    import.meta.url,
  )}";
new WireLog().read({ remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
  localAddr: { transport: "tcp", hostname: "127.0.0.1", port: 2 } }, new Uint8Array([104, 105]));`;
  const deno = `'${Deno.execPath()}' eval --quiet '${
    code.replaceAll("'", "'\\''")
  }'`;
  const output = await new Deno.Command("env", {
    args: [
      ...(noColor ? ["NO_COLOR=1"] : ["-u", "NO_COLOR"]),
      "script",
      "-qec",
      deno,
      "/dev/null",
    ],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  assertStringIncludes(
    text,
    "read 2 bytes",
    new TextDecoder().decode(output.stderr),
  );
  return text;
}

Deno.test({
  name:
    "wire: colors by default on a terminal, never with NO_COLOR, never when piped",
  ignore: !HAVE_SCRIPT,
  async fn() {
    assertStringIncludes(await onTerminal(false), "\x1b[");
    assert(
      !(await onTerminal(true)).includes("\x1b["),
      "colors despite NO_COLOR",
    );
    // Piped: this test's own stderr is not the child's terminal.
    const code = `import { colorByDefault } from "${new URL(
      "../lib/wire.ts",
      import.meta.url,
    )}";
console.log(colorByDefault());`;
    const piped = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", code],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(new TextDecoder().decode(piped.stdout).trim(), "false");
  },
});
if (!HAVE_SCRIPT) {
  console.log(
    "wire color test skipped: `script` (util-linux) is not installed",
  );
}

Deno.test("WIRE_FLAG: a bare --wire means text; --wire hex is kept", () => {
  const spec = {
    script: "x.ts",
    summary: "x",
    role: "server",
    defaultPort: 1,
    flags: { wire: WIRE_FLAG },
  } as const;
  assertEquals(parseCli(["--wire"], spec).wire, "text");
  assertEquals(parseCli(["--wire", "--port", "0"], spec).wire, "text");
  assertEquals(parseCli(["--wire", "hex"], spec).wire, "hex");
  assertEquals(parseCli(["--wire=hex"], spec).wire, "hex");
  assertEquals(parseCli(["--port", "0"], spec).wire, undefined);
  assertStringIncludes(usage(spec), "--wire [text|hex]");
  assertEquals(wireLogFor(undefined), undefined); // off: nothing wraps a conn
  assertEquals(wireLogFor("hex") instanceof WireLog, true);
});

// ---------------------------------------------------------------------------
// wireConn on real connections

/** A loopback pair: [the accepted end, the connecting end, the listener]. */
async function loopback(): Promise<
  [Deno.TcpConn, Deno.TcpConn, Deno.TcpListener]
> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({
    hostname: "127.0.0.1",
    port: listener.addr.port,
  });
  const accepted = await listener.accept();
  return [accepted, client, listener];
}

Deno.test("wireConn: without a log, the connection itself comes back", async () => {
  const [server, client, listener] = await loopback();
  assert(wireAccepted(server, undefined) === server);
  assert(wireConnected(client, undefined) === client);
  assert(wireConn(client, undefined) === client);
  server.close();
  client.close();
  listener.close();
});

Deno.test("wireConn: reports accept, reads, writes, end of stream, half-close and close on a real connection", async () => {
  const [raw, client, listener] = await loopback();
  const { wire, lines } = capture({ framing: "line" });
  const conn = wireAccepted(raw, wire);
  assert(conn instanceof WireConn);
  conn.setNoDelay(true);
  const peer = `127.0.0.1:${client.localAddr.port}`;

  await writeAll(client, enc.encode("hi\nthere\n"));
  const buffer = new Uint8Array(64);
  let got = 0;
  while (got < 9) got += (await conn.read(buffer.subarray(got)))!;
  await writeAll(conn, enc.encode("ok\n"));
  assertEquals(new TextDecoder().decode(await readBytes(client, 3)), "ok\n");
  await client.closeWrite();
  assertEquals(await conn.read(buffer), null);
  await conn.closeWrite();
  assertEquals(await client.read(buffer), null);
  conn.close();
  client.close();
  listener.close();

  const text = lines.join("\n");
  assertStringIncludes(
    text,
    `accepted a connection from ${peer} on 127.0.0.1:${listener.addr.port}`,
  );
  assertMatch(text, new RegExp(`read \\d bytes? from ${peer}`));
  assertStringIncludes(text, "└ message 1 ends (3 bytes)");
  assertStringIncludes(text, "└ message 2 ends (6 bytes");
  assertStringIncludes(text, `wrote 3 bytes to ${peer}\n             │ ok\\n`);
  assertStringIncludes(text, `end of stream from ${peer}: read returned null`);
  assertStringIncludes(text, `half-closed our side to ${peer}`);
  assertEquals(lines.at(-1)?.slice(13), `closed the connection with ${peer}`);
});

Deno.test("wireConn: readable and writable go through the reported calls", async () => {
  const [raw, client, listener] = await loopback();
  const { wire, lines } = capture();
  const conn = wireConnected(raw, wire);
  const writer = conn.writable.getWriter();
  await writer.write(enc.encode("ping"));
  assertEquals(new TextDecoder().decode(await readBytes(client, 4)), "ping");
  await writeAll(client, enc.encode("pong"));
  const reader = conn.readable.getReader();
  const { value } = await reader.read();
  assertEquals(new TextDecoder().decode(value), "pong");
  reader.releaseLock();
  await writer.close(); // closes the connection
  client.close();
  listener.close();
  const text = lines.join("\n");
  assertStringIncludes(text, "connected to 127.0.0.1:");
  assertStringIncludes(text, "wrote 4 bytes to");
  assertStringIncludes(text, "read 4 bytes from");
  assertStringIncludes(text, "closed the connection with");
});

Deno.test({
  name: "wireConn: a peer's reset is reported, then thrown as ConnectionReset",
  ignore: !HAVE_PYTHON,
  async fn() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const { wire, lines } = capture();
    const resetting = resetClient(listener.addr.port, enc.encode("bye"), {
      first: "echo", // a byte there and back, so it is accepted first
    });
    const conn = wireAccepted(await listener.accept(), wire);
    const buffer = new Uint8Array(64);
    assertEquals(await conn.read(buffer.subarray(0, 1)), 1);
    await writeAll(conn, buffer.subarray(0, 1));
    await resetting;
    let error: unknown;
    try {
      while ((await conn.read(buffer)) !== null) { /* read until the reset */ }
    } catch (e) {
      error = e;
    }
    conn.close();
    listener.close();
    assert(error instanceof Deno.errors.ConnectionReset, `got ${error}`);
    assertStringIncludes(lines.join("\n"), "connection reset by the peer (RST");
  },
});
if (!HAVE_PYTHON) {
  console.log("wireConn reset test skipped: python3 is not installed");
}
