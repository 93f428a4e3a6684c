import { concat, delay, styles, textLineStream } from "../lib/std.ts";
import {
  assert,
  assertEquals,
  assertRejects,
  assertThrows,
} from "./_assert.ts";

Deno.test("std: styles leave text readable (colors are off when stdout is not a terminal)", () => {
  assertEquals(
    styles.red("x").replace("\x1b[31m", "").replace("\x1b[39m", ""),
    "x",
  );
});

Deno.test("std: concat, delay and textLineStream behave as in @std", async () => {
  assertEquals([...concat([Uint8Array.of(1), Uint8Array.of(2, 3)])], [1, 2, 3]);
  await delay(1);
  const lines = await Array.fromAsync(
    ReadableStream.from(["a\r\nb", "\nc"]).pipeThrough(textLineStream()),
  );
  assertEquals(lines, ["a", "b", "c"]);
});

Deno.test("std: the assertions throw and reject as they should", async () => {
  assertThrows(() => assertEquals(1, 2), Error);
  assertThrows(() => assert(false), Error);
  await assertRejects(
    () => Promise.reject(new TypeError("no")),
    TypeError,
    "no",
  );
});
