import { assertEquals } from "../lib/std.ts";
import { decodeText, sanitizeText, textOf } from "../lib/sanitize.ts";

Deno.test("sanitizeText: C0 controls in caret notation, tab kept", () => {
  assertEquals(sanitizeText("a\x1b[31mb\x07c\x00d\te"), "a^[[31mb^Gc^@d\te");
  assertEquals(sanitizeText("cr\rlf\n"), "cr^Mlf^J");
});

Deno.test("sanitizeText: DEL, C1 controls and bidi overrides are escaped", () => {
  assertEquals(sanitizeText("\x7f\x9b\u202e\u2066"), "^?\\x9b<U+202E><U+2066>");
});

Deno.test("sanitizeText: plain text, accents and emoji pass unchanged", () => {
  const text = "héllo wörld 你好 🎉";
  assertEquals(sanitizeText(text), text);
});

Deno.test("sanitizeText: the same regex works on every call (no lastIndex state)", () => {
  for (let i = 0; i < 3; i++) assertEquals(sanitizeText("x\x1by"), "x^[y");
});

Deno.test("decodeText / textOf: invalid UTF-8 becomes U+FFFD, never an error", () => {
  assertEquals(decodeText(Uint8Array.of(0x61, 0xff, 0x62)), "a\uFFFDb");
  assertEquals(textOf(Uint8Array.of(0xc3, 0x28, 0x1b)), "\uFFFD(^[");
});
