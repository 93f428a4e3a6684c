import { assertEquals, assertThrows } from "./_assert.ts";
import {
  chatCodec,
  lengthChatCodec,
  lineChatCodec,
} from "../lib/chat_client.ts";
import { FramingError } from "../lib/decoder.ts";
import { encodeFrame } from "../lib/encoders.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

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
