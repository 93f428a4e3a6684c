import { assert, assertEquals } from "./_assert.ts";
import {
  acceptKey,
  clipUtf8,
  encodeFrame,
  handshakeProblem,
} from "../lib/websocket.ts";
import { clientFrame, wsPair } from "./_websocket.ts";
import { PendingLimit } from "../lib/pending_limit.ts";
import { concat } from "../lib/std.ts";

const enc = new TextEncoder();
const TEXT = 0x1;
const BINARY = 0x2;
const CONTINUATION = 0x0;
const CLOSE = 0x8;
const PING = 0x9;
const PONG = 0xa;

function closePayload(code: number, reason = ""): Uint8Array {
  const text = enc.encode(reason);
  const out = new Uint8Array(2 + text.length);
  out[0] = code >> 8;
  out[1] = code & 0xff;
  out.set(text, 2);
  return out;
}

Deno.test("acceptKey: the answer of RFC 6455's example", async () => {
  assertEquals(
    await acceptKey("dGhlIHNhbXBsZSBub25jZQ=="),
    "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
  );
});

Deno.test("handshakeProblem: upgrade, connection, version 13 and a 16-byte key", () => {
  const good = {
    upgrade: "websocket",
    connection: "keep-alive, Upgrade",
    "sec-websocket-version": "13",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
  };
  assertEquals(handshakeProblem(new Headers(good)), null);
  const bad: [Record<string, string>, string][] = [
    [{ upgrade: "h2c" }, "not a WebSocket upgrade"],
    [{ connection: "keep-alive" }, "Connection must include Upgrade"],
    [{ "sec-websocket-version": "8" }, "WebSocket version 13 only"],
    [{ "sec-websocket-key": "short" }, "bad Sec-WebSocket-Key"],
  ];
  for (const [change, problem] of bad) {
    assertEquals(
      handshakeProblem(new Headers({ ...good, ...change })),
      problem,
    );
  }
});

Deno.test("encodeFrame: lengths of 7, 16 and 64 bits", () => {
  for (const n of [0, 125, 126, 65535, 65536]) {
    const frame = encodeFrame(TEXT, new Uint8Array(n));
    const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
    assertEquals(frame.length, head + n, `${n}`);
    assertEquals(frame[0], 0x81);
  }
});

Deno.test("clipUtf8: cut at a character, never inside one", () => {
  assertEquals(clipUtf8("é".repeat(70), 123), "é".repeat(61));
  assertEquals(clipUtf8("abc", 123), "abc");
});

Deno.test("WebSocketConn: messages arrive whole and in order, however the bytes are cut and fragmented", async () => {
  using pair = await wsPair();
  const { ws, client } = pair;
  const bytes = new Uint8Array([
    ...clientFrame(TEXT, "hello"),
    ...clientFrame(TEXT, "wor", { fin: false }),
    ...clientFrame(PING, "p"), // a control frame between fragments
    ...clientFrame(CONTINUATION, "ld"),
    ...clientFrame(BINARY, new Uint8Array([1, 2, 3])),
  ]);
  for (const byte of bytes) await client.write(new Uint8Array([byte]));
  const got: (string | Uint8Array)[] = [];
  while (got.length < 3) got.push(...(await ws.read())!);
  assertEquals(got, ["hello", "world", new Uint8Array([1, 2, 3])]);
  const pong = await client.frame();
  assertEquals([pong?.opcode, pong?.payload], [PONG, enc.encode("p")]);
});

Deno.test("WebSocketConn: a message past maxMessage ends the reading (1009) at the header that passes it, before its payload", async () => {
  using pair = await wsPair({ maxMessage: 100 });
  const { ws, client } = pair;
  // 60 bytes, then a fragment announcing 1 GiB that never comes
  await client.write(clientFrame(TEXT, "x".repeat(60), { fin: false }));
  await client.write(
    clientFrame(CONTINUATION, "", { announce: 1 << 30 }).subarray(0, 14),
  );
  assertEquals(await ws.read(), null);
  assertEquals(ws.end?.kind, "broken");
  assertEquals(ws.end?.kind === "broken" && ws.end.code, 1009);
});

Deno.test("WebSocketConn: a broken peer ends the reading with the code RFC 6455 names", async () => {
  const cases: [string, Uint8Array, number][] = [
    ["an unmasked frame", clientFrame(TEXT, "hi", { mask: false }), 1002],
    ["text that is not UTF-8", clientFrame(TEXT, new Uint8Array([0xc3])), 1007],
    [
      "a reserved bit",
      (() => {
        const frame = clientFrame(TEXT, "hi");
        frame[0] |= 0x40;
        return frame;
      })(),
      1002,
    ],
    ["an unknown opcode", clientFrame(0x3, "hi"), 1002],
    [
      "a continuation with nothing to continue",
      clientFrame(CONTINUATION, "hi"),
      1002,
    ],
    ["a ping of 126 bytes", clientFrame(PING, "p".repeat(126)), 1002],
  ];
  for (const [what, bytes, code] of cases) {
    using pair = await wsPair();
    await pair.client.write(bytes);
    assertEquals(await pair.ws.read(), null, what);
    const end = pair.ws.end;
    assertEquals(end?.kind === "broken" && end.code, code, what);
  }
});

Deno.test("WebSocketConn: each line of a write is one text message; long ones too", async () => {
  using pair = await wsPair();
  const { ws, client } = pair;
  const long = "y".repeat(70_000);
  const bytes = enc.encode(`* welcome\n\nbob: ünïcødé\n${long}\nlast`);
  assertEquals(await ws.write(bytes), bytes.length);
  for (const text of ["* welcome", "", "bob: ünïcødé", long, "last"]) {
    assertEquals(await client.text(), text);
  }
});

Deno.test("WebSocketConn: the peer's close ends the reading; the answer echoes it and the connection closes", async () => {
  using pair = await wsPair();
  const { ws, client } = pair;
  await client.write(clientFrame(TEXT, "last words"));
  await client.write(clientFrame(CLOSE, closePayload(1001, "tab closed")));
  assertEquals(await ws.read(), ["last words"]);
  assertEquals(await ws.read(), null);
  assertEquals(ws.end, { kind: "closed", code: 1001, reason: "tab closed" });
  await ws.close({ code: 1001, reason: "" });
  const answer = await client.frame();
  assertEquals(answer?.opcode, CLOSE);
  assertEquals(await client.frame(), null, "then the end of the stream");
});

Deno.test("WebSocketConn: close sends its frame and ends the connection when the peer answers", async () => {
  using pair = await wsPair({ closeWaitMs: 10_000 });
  const { ws, client } = pair;
  const reading = ws.read();
  const closing = ws.close({ code: 1008, reason: "too slow" });
  const frame = await client.frame();
  assertEquals(frame?.opcode, CLOSE);
  assertEquals(frame?.payload, closePayload(1008, "too slow"));
  await client.write(clientFrame(CLOSE, closePayload(1008)));
  assertEquals(await reading, null);
  await closing;
  assertEquals(await client.frame(), null);
});

Deno.test("WebSocketConn: a peer that never answers a close still loses its connection after the close wait", async () => {
  using pair = await wsPair({ closeWaitMs: 100 });
  const { ws, client } = pair;
  const started = Date.now();
  await ws.close({ code: 1000, reason: "bye" });
  const waited = Date.now() - started;
  assert(waited >= 90 && waited < 2000, `waited ${waited} ms`);
  assertEquals((await client.frame())?.opcode, CLOSE);
  assertEquals(await client.frame(), null, "the server closed its side");
  await ws.write(enc.encode("late\n")).then(
    () => assert(false, "a write after close must fail"),
    (error) => assert(error instanceof Deno.errors.BrokenPipe),
  );
});

Deno.test("WebSocketConn: a connection that ends without a close frame is lost", async () => {
  using pair = await wsPair();
  pair.client.conn.close();
  assertEquals(await pair.ws.read(), null);
  assertEquals(pair.ws.end, { kind: "lost" });
});

Deno.test("WebSocketConn: bytes that came with the handshake are read first", async () => {
  using pair = await wsPair({ rest: clientFrame(TEXT, "early") });
  await pair.client.write(clientFrame(TEXT, "later"));
  const got: (string | Uint8Array)[] = [];
  while (got.length < 2) got.push(...(await pair.ws.read())!);
  assertEquals(got, ["early", "later"]);
});

Deno.test("WebSocketConn: pings are answered, the first at once and the latest last; none is answered twice", async () => {
  using pair = await wsPair();
  const { ws, client } = pair;
  const reading = ws.read();
  await client.write(
    concat([
      clientFrame(PING, "A"),
      clientFrame(PING, "B"),
      clientFrame(PING, "C"),
    ]),
  );
  const pongs: string[] = [];
  while (pongs[pongs.length - 1] !== "C") {
    const frame = await client.frame();
    assertEquals(frame?.opcode, PONG);
    pongs.push(new TextDecoder().decode(frame!.payload));
  }
  assertEquals(pongs[0], "A");
  assert(
    pongs.length <= 3 && new Set(pongs).size === pongs.length,
    pongs.join(),
  );
  await client.write(clientFrame(CLOSE, closePayload(1000)));
  assertEquals(await reading, null);
});

Deno.test("WebSocketConn: a message in more than 64 fragments ends the reading (1008)", async () => {
  using pair = await wsPair();
  const frames = [clientFrame(TEXT, "a", { fin: false })];
  for (let i = 0; i < 70; i++) {
    frames.push(clientFrame(CONTINUATION, "a", { fin: false }));
  }
  await pair.client.write(concat(frames));
  assertEquals(await pair.ws.read(), null);
  const end = pair.ws.end;
  assertEquals(end?.kind === "broken" && end.code, 1008);
});

Deno.test("WebSocketConn: a message sent a byte at a time is whole, and what it holds meanwhile counts against the pending limit", async () => {
  const pending = new PendingLimit(1000);
  using pair = await wsPair({ pending });
  const { ws, client } = pair;
  const bytes = clientFrame(TEXT, "z".repeat(300));
  const reading = ws.read();
  for (const byte of bytes.subarray(0, 200)) {
    await client.write(new Uint8Array([byte]));
  }
  // held as it arrives (the reader has taken all it was sent, or soon will)
  for (let i = 0; i < 100 && pending.total < 200; i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assertEquals(pending.total, 200);
  await client.write(bytes.subarray(200));
  assertEquals(await reading, ["z".repeat(300)]);
  assertEquals(pending.total, 0, "released once whole");
});

Deno.test("WebSocketConn: past the pending limit the largest holder is cut off, its connection closed", async () => {
  const pending = new PendingLimit(1000);
  using big = await wsPair({ pending, maxMessage: 4096 });
  using small = await wsPair({ pending, maxMessage: 4096 });
  const bigReading = big.ws.read();
  const smallReading = small.ws.read();
  await small.client.write(clientFrame(TEXT, "s".repeat(600)).subarray(0, 400));
  await big.client.write(clientFrame(TEXT, "b".repeat(2000)).subarray(0, 900));
  assertEquals(await bigReading, null);
  assertEquals(big.ws.end?.kind, "evicted");
  assertEquals(await big.client.frame(), null, "closed");
  await small.client.write(clientFrame(TEXT, "s".repeat(600)).subarray(400));
  assertEquals(await smallReading, ["s".repeat(600)]);
});
