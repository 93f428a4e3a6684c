import { assert, assertEquals } from "./_assert.ts";
import { hexByte, mostlyBinary, wireTokens } from "../lib/wire_text.ts";

const encode = (text: string) => new TextEncoder().encode(text);

/** Each token as [text, bytes, columns, binary]. */
function shown(bytes: Uint8Array): [string, number, number, boolean][] {
  return [...wireTokens(bytes)].map((t) => [t.text, t.bytes, t.cols, t.binary]);
}

Deno.test("wireTokens: printable text as itself; tab, newline, return and backslash named", () => {
  assertEquals(shown(encode("a\t\\\r\n")), [
    ["a", 1, 1, false],
    ["\\t", 1, 2, false],
    ["\\\\", 1, 2, false],
    ["\\r", 1, 2, false],
    ["\\n", 1, 2, false],
  ]);
  const tokens = [...wireTokens(encode("a\nb"))];
  assertEquals(tokens.map((t) => t.newline), [false, true, false]);
});

Deno.test("wireTokens: control characters are escaped and binary; invisible ones escaped, not binary", () => {
  assertEquals(shown(encode("\x1b[\x00\x7f")), [
    ["\\x1b", 1, 4, true],
    ["[", 1, 1, false],
    ["\\x00", 1, 4, true],
    ["\\x7f", 1, 4, true],
  ]);
  // a zero-width space, a bidi override, a line separator: never shown raw
  assertEquals(shown(encode("\u200b\u202e\u2028")), [
    ["\\u200b", 3, 6, false],
    ["\\u202e", 3, 6, false],
    ["\\u2028", 3, 6, false],
  ]);
});

Deno.test("wireTokens: terminal columns of wide, combining and joined characters", () => {
  assertEquals(shown(encode("é漢")), [["é", 2, 1, false], ["漢", 3, 2, false]]);
  // e + a combining acute takes one column; the joiner inside an emoji stays
  assertEquals(shown(encode("e\u0301")).map((t) => t[2]), [1, 0]);
  assertEquals(
    shown(encode("👨\u200d👩")).map((t) => [t[0], t[2]]),
    [["👨", 2], ["\u200d", 0], ["👩", 2]],
  );
});

Deno.test("wireTokens: a character cut by either end of a read is escaped but not binary; an invalid byte is binary", () => {
  const snowman = encode("☃"); // e2 98 83
  assertEquals(shown(snowman.subarray(0, 2)), [
    ["\\xe2", 1, 4, false],
    ["\\x98", 1, 4, false],
  ]);
  assertEquals(shown(snowman.subarray(1)), [
    ["\\x98", 1, 4, false],
    ["\\x83", 1, 4, false],
  ]);
  assertEquals(shown(new Uint8Array([0x61, 0xff, 0x62])), [
    ["a", 1, 1, false],
    ["\\xff", 1, 4, true],
    ["b", 1, 1, false],
  ]);
  // a lead byte followed by no valid continuation, mid-chunk: binary
  assertEquals(shown(new Uint8Array([0xe2, 0x41])), [
    ["\\xe2", 1, 4, true],
    ["A", 1, 1, false],
  ]);
});

Deno.test("mostlyBinary: more than a quarter of the first 512 bytes binary, across parts", () => {
  assert(!mostlyBinary([encode("hello\r\n")]));
  assert(mostlyBinary([new Uint8Array([0, 1, 2, 0xff])]));
  // a quarter exactly is still text; one more binary byte tips it
  assert(!mostlyBinary([encode("abc"), new Uint8Array([0])]));
  assert(mostlyBinary([encode("abc"), new Uint8Array([0, 0])]));
  // only the first 512 bytes count
  const text = new Uint8Array(512).fill(0x61);
  assert(!mostlyBinary([text, new Uint8Array(2048)]));
  assert(!mostlyBinary([]));
});

Deno.test("hexByte: two lowercase digits", () => {
  assertEquals([0, 0x0a, 0x1b, 0xff].map(hexByte), ["00", "0a", "1b", "ff"]);
});
