import fc from "fast-check";
import { assertEquals } from "./_assert.ts";
import { LineDecoder } from "../lib/line_decoder.ts";
import { decodeLines, decodeText, sanitizeText } from "../lib/sanitize.ts";
import { cutAt } from "./_helpers.ts";

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

Deno.test("decodeText: invalid UTF-8 becomes U+FFFD, never an error; sanitized after", () => {
  assertEquals(decodeText(Uint8Array.of(0x61, 0xff, 0x62)), "a\uFFFDb");
  assertEquals(
    sanitizeText(decodeText(Uint8Array.of(0xc3, 0x28, 0x1b))),
    "\uFFFD(^[",
  );
});

Deno.test("decodeLines: a run split into lines, \r\n and a last unterminated line", () => {
  const bytes = (text: string) => new TextEncoder().encode(text);
  assertEquals(decodeLines(bytes("a\r\n\nb\r\r\n")), ["a", "", "b\r"]);
  assertEquals(decodeLines(bytes("tail\r")), ["tail\r"]); // as end() gives it
  assertEquals(decodeLines(Uint8Array.of(0x61, 0xe2, 0x82, 0x0a)), [
    "a\uFFFD",
  ]);
});

Deno.test("property (fast-check): decodeLines on runs gives the texts decodeText gives line by line", () => {
  const byte = fc.oneof(
    fc.constantFrom(0x0a, 0x0d, 0x61, 0xe2, 0x82, 0xac, 0xff, 0xc3),
    fc.integer({ min: 0, max: 255 }),
  );
  fc.assert(
    fc.property(
      fc.array(byte, { maxLength: 200 }),
      fc.array(fc.nat({ max: 200 }), { maxLength: 10 }),
      (input, cuts) => {
        const chunks = cutAt(Uint8Array.from(input), cuts);
        const one = new LineDecoder({ maxLength: Infinity });
        const runs = new LineDecoder({ maxLength: Infinity, runs: true });
        const want: string[] = [];
        const got: string[] = [];
        for (const chunk of chunks) {
          want.push(...one.push(chunk).map((m) => decodeText(m)));
          got.push(...runs.push(chunk).flatMap(decodeLines));
        }
        const [last, lastRun] = [one.end(), runs.end()];
        if (last) want.push(decodeText(last));
        if (lastRun) got.push(...decodeLines(lastRun));
        assertEquals(got, want);
      },
    ),
    { numRuns: 2000 },
  );
});
