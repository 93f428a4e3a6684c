import {
  assert,
  assertEquals,
  assertRejects,
  assertThrows,
  concat,
  delay,
  parseArgs,
  styles,
  textLineStream,
} from "../lib/std.ts";

Deno.test("std: parseArgs reads strings and booleans", () => {
  const args = parseArgs(["--port", "5", "--portable", "x"], {
    string: ["port"],
    boolean: ["portable"],
  });
  assertEquals([args.port, args.portable, args._], ["5", true, ["x"]]);
});

Deno.test("std: styles leave text readable (colors are off when stdout is not a terminal)", () => {
  assertEquals(
    styles.red("x").replace("\x1b[31m", "").replace("\x1b[39m", ""),
    "x",
  );
});

Deno.test("std: concat, delay and textLineStream behave as in @std", async () => {
  assertEquals([...concat([Uint8Array.of(1), Uint8Array.of(2, 3)])], [1, 2, 3]);
  const start = Date.now();
  await delay(20);
  assert(Date.now() - start >= 15);
  const lines = await Array.fromAsync(
    ReadableStream.from(["a\r\nb", "\nc"]).pipeThrough(textLineStream()),
  );
  assertEquals(lines, ["a", "b", "c"]);
});

Deno.test("std: the assertions throw and reject as they should", async () => {
  assertThrows(() => assertEquals(1, 2), Error);
  await assertRejects(
    () => Promise.reject(new TypeError("no")),
    TypeError,
    "no",
  );
});
