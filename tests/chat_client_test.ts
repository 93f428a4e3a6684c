import {
  assert,
  assertEquals,
  assertNotMatch,
  assertStringIncludes,
  assertThrows,
} from "./_assert.ts";
import {
  chatCodec,
  lengthChatCodec,
  lineChatCodec,
  naiveCodec,
} from "../lib/chat_client.ts";
import { FramingError } from "../lib/decoder.ts";
import { encodeFrame } from "../lib/encoders.ts";
import { writeAll } from "../lib/io.ts";
import { readAll, runScript, scriptPath, startServer } from "./_helpers.ts";
import { PseudoTerminal } from "./_pty.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

// ---------------------------------------------------------------------------
// Unit: the codecs

Deno.test("lineChatCodec: a typed line is sent with one \\n, whatever its end", () => {
  const { encode } = lineChatCodec();
  for (const typed of ["hi", "hi\n", "hi\r\n"]) {
    assertEquals(dec.decode(encode(enc.encode(typed))), "hi\n");
  }
});

Deno.test("lineChatCodec: what arrives is sanitized, line breaks kept, UTF-8 split across reads joined", () => {
  const { render } = lineChatCodec();
  assertEquals(
    dec.decode(render(enc.encode("a: \x1b[2Jx\r\nb: y\n"))),
    "a: ^[[2Jx\nb: y\n",
  );
  const e = enc.encode("é\n");
  assertEquals(
    dec.decode(render(e.subarray(0, 1))) + dec.decode(render(e.subarray(1))),
    "é\n",
  );
});

Deno.test("lineChatCodec: binary from a length-framing server is named, not printed", () => {
  assertThrows(
    () => lineChatCodec().render(encodeFrame("* welcome")),
    FramingError,
    "--framing length",
  );
});

Deno.test("lengthChatCodec: lines become frames; frames become sanitized lines", () => {
  const { encode, render } = lengthChatCodec();
  assertEquals([...encode(enc.encode("hi\r\n"))], [0, 0, 0, 2, 104, 105]);
  const wire = new Uint8Array([
    ...encodeFrame("a: one\ntwo"),
    ...encodeFrame("b: \x07"),
  ]);
  assertEquals(dec.decode(render(wire)), "a: one\ntwo\nb: ^G\n");
});

Deno.test("lengthChatCodec: text from a line-framing server is named, not misread", () => {
  assertThrows(
    () => lengthChatCodec().render(enc.encode("* welcome guest-1\n")),
    FramingError,
    "--framing line",
  );
});

Deno.test("lengthChatCodec: a frame cut short by the end of the stream is said, with the counts", () => {
  const codec = lengthChatCodec();
  codec.render(encodeFrame("0123456789").subarray(0, 7));
  assertThrows(
    () => codec.end(),
    FramingError,
    "the server closed the connection in the middle of a frame: got 3 of 10 bytes",
  );
  const whole = lengthChatCodec();
  whole.render(encodeFrame("ok"));
  assertEquals(whole.end().length, 0);
});

Deno.test("chatCodec: picks by name", () => {
  assertEquals([...chatCodec("length").encode(enc.encode("x"))], [
    0,
    0,
    0,
    1,
    120,
  ]);
  assertEquals(dec.decode(chatCodec("line").encode(enc.encode("x"))), "x\n");
});

Deno.test("naiveCodec (line): each read is one message, however many lines it holds", () => {
  const { render } = naiveCodec("line");
  const shown = [
    enc.encode("one\ntwo\n"),
    enc.encode("thr"),
    enc.encode("ee\n"),
  ]
    .map((read) => dec.decode(render(read)));
  assertEquals(shown, ["one^Jtwo\n", "thr\n", "ee\n"]);
});

Deno.test("naiveCodec (length): one frame from the start of each read, the rest dropped", () => {
  const { encode, render } = naiveCodec("length");
  assertEquals([...encode(enc.encode("hi\n"))], [0, 0, 0, 2, 104, 105]);
  const two = new Uint8Array([...encodeFrame("first"), ...encodeFrame("lost")]);
  assertEquals(dec.decode(render(two)), "first\n");
});

// ---------------------------------------------------------------------------
// End to end: the chat clients

const CHAT: [string, string, string[]][] = [
  [
    "multiclientsusingthreading/server.ts",
    "multiclientsusingthreading/client.ts",
    ["--workers", "1"],
  ],
  ["sandbox/server.ts", "sandbox/client.ts", []],
];

for (const [server, client, serverArgs] of CHAT) {
  Deno.test(`${client} on a terminal: /quit bye says goodbye and exits 0, no error`, async () => {
    await using chat = await startServer(server, serverArgs);
    await using term = PseudoTerminal.start([
      "run",
      "--allow-net",
      scriptPath(client),
      "--port",
      `${chat.port}`,
    ]);
    if (!term) {
      return console.log("skipped: python3 cannot play the terminal here");
    }
    await term.waitFor("* welcome");
    await term.type("/quit bye\r");
    await term.waitFor("* bye");
    assertEquals(await term.exited(), 0, term.screen);
    assertNotMatch(term.screen, /error/);
    assertEquals(term.restored, true, "the terminal was left raw");
  });
}

/** A one-client server made by the test; `serve` decides what it sends. */
function fakeServer(serve: (conn: Deno.Conn) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await listener.accept();
    conn.setNoDelay(true); // each write its own segment
    try {
      await serve(conn);
    } finally {
      conn.close();
    }
  })();
  return {
    port: listener.addr.port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await served;
    },
  };
}

Deno.test("sandbox client (length): a frame cut short by the server closing is said; exit 1", async () => {
  await using server = fakeServer(async (conn) => {
    await writeAll(conn, encodeFrame("0123456789").subarray(0, 7));
    await readAll(conn); // until the client has seen the end of its input
  });
  const result = await runScript("sandbox/client.ts", [
    "--port",
    `${server.port}`,
    "--framing",
    "length",
  ]);
  assertEquals(result.code, 1);
  assertStringIncludes(
    result.stderr,
    "the server closed the connection in the middle of a frame: got 3 of 10 bytes",
  );
});

/**
 * Runs the sandbox client against a server that writes "one\ntwo\n" in
 * one write, and "three\n" in two ("thr", then "ee\n"), each once the
 * client showed what came before; resolves with what the client printed.
 */
async function twoLinesOneRead(
  clientArgs: string[],
): Promise<{ stdout: string; stderr: string; code: number }> {
  let shown = "";
  const waiting = new Map<string, () => void>();
  const onScreen = (text: string): Promise<void> =>
    new Promise((resolve) => waiting.set(text, resolve));
  const [twoShown, thrShown] = [onScreen("two"), onScreen("thr")];
  await using server = fakeServer(async (conn) => {
    await writeAll(conn, enc.encode("one\ntwo\n"));
    await twoShown; // so that "thr" comes in a read of its own
    await writeAll(conn, enc.encode("thr"));
    await thrShown;
    await writeAll(conn, enc.encode("ee\n"));
  });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      scriptPath("sandbox/client.ts"),
      "--port",
      `${server.port}`,
      ...clientArgs,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const stdout = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stdout) {
      shown += decoder.decode(chunk, { stream: true });
      for (const [text, wake] of waiting) if (shown.includes(text)) wake();
    }
  })();
  await child.stdin.close(); // nothing to say: the client just listens
  const [status] = await Promise.all([child.status, stdout]);
  return { stdout: shown, stderr: await stderr, code: status.code };
}

Deno.test("sandbox client --naive: one read is taken for one message, and it shows", async () => {
  const result = await twoLinesOneRead(["--naive"]);
  assertEquals(result.code, 0, result.stderr);
  assertEquals(result.stdout, "one^Jtwo\nthr\nee\n");
  assertStringIncludes(result.stderr, "one read is not one message");
});

Deno.test("sandbox client: the same reads make whole lines without --naive", async () => {
  const result = await twoLinesOneRead([]);
  assertEquals(result.code, 0, result.stderr);
  assertEquals(result.stdout, "one\ntwo\nthree\n");
});

Deno.test("sandbox client --help: --naive is labelled the wrong way; the ending rule is said", async () => {
  const result = await runScript("sandbox/client.ts", ["--help"]);
  assertEquals(result.code, 0);
  const text = dec.decode(result.stdout);
  assert(/--naive\s+the wrong way/.test(text), text);
  assertStringIncludes(text, "/quit [message] is sent");
  assertStringIncludes(text, "Ctrl+D");
});
