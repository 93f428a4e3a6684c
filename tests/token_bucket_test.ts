import { assertEquals } from "./_assert.ts";
import { TokenBucket } from "../lib/token_bucket.ts";

/** A bucket on a clock the test moves. */
function bucket(burst: number, perSecond: number) {
  let now = 0;
  return {
    bucket: new TokenBucket({ burst, perSecond, now: () => now }),
    advance: (ms: number) => (now += ms),
  };
}

Deno.test("TokenBucket: a burst at once, then the steady rate", () => {
  const { bucket: b, advance } = bucket(3, 2);
  assertEquals([b.take(), b.take(), b.take(), b.take()], [
    true,
    true,
    true,
    false,
  ]);
  advance(499);
  assertEquals(b.take(), false, "not yet a whole token");
  advance(1);
  assertEquals([b.take(), b.take()], [true, false], "half a second: one");
});

Deno.test("TokenBucket: a refused take costs nothing; a long quiet refills the burst only", () => {
  const { bucket: b, advance } = bucket(2, 1);
  b.take();
  b.take();
  for (let i = 0; i < 10; i++) assertEquals(b.take(), false);
  advance(1000);
  assertEquals(b.take(), true, "the refusals did not push the next token back");
  advance(3_600_000);
  assertEquals([b.take(), b.take(), b.take()], [true, true, false]);
});
