import { assertEquals } from "./_assert.ts";
import { PendingLimit } from "../lib/pending_limit.ts";
import { delay } from "../lib/std.ts";

/** Resolves once `evicted` has `count` entries (checked every 5 ms; fails after 2 s). */
async function evictions(evicted: string[], count: number): Promise<void> {
  for (const deadline = Date.now() + 2000; evicted.length < count;) {
    if (Date.now() > deadline) throw new Error(`evicted only ${evicted}`);
    await delay(5);
  }
}

function holder(name: string, evicted: string[]) {
  return { evict: (held: number) => void evicted.push(`${name} ${held}`) };
}

Deno.test("PendingLimit: within the limit nobody is evicted; totals follow each holder", () => {
  const evicted: string[] = [];
  const limit = new PendingLimit(100);
  const [a, b] = [holder("a", evicted), holder("b", evicted)];
  limit.hold(a, 60);
  limit.hold(b, 40);
  limit.hold(a, 10);
  assertEquals(limit.total, 50);
  limit.release(a);
  assertEquals(limit.total, 40);
  assertEquals(evicted, []);
});

Deno.test("PendingLimit: past the limit, the largest holders go until it fits", () => {
  const evicted: string[] = [];
  const limit = new PendingLimit(100);
  const [a, b, c] = ["a", "b", "c"].map((n) => holder(n, evicted));
  limit.hold(a, 45);
  limit.hold(b, 40);
  limit.hold(c, 5);
  limit.hold(c, 90); // 175: c (90) goes, then 85 fits
  assertEquals(evicted, ["c 90"]);
  assertEquals(limit.total, 85);
  limit.hold(c, 30); // c is back with 30: 115; a (45) goes
  assertEquals(evicted, ["c 90", "a 45"]);
  assertEquals(limit.total, 70);
});

Deno.test("PendingLimit: an evicted holder is forgotten, so releasing it later changes nothing", () => {
  const evicted: string[] = [];
  const limit = new PendingLimit(10);
  const a = holder("a", evicted);
  limit.hold(a, 11);
  assertEquals([evicted, limit.total], [["a 11"], 0]);
  limit.release(a);
  assertEquals(limit.total, 0);
});

Deno.test("PendingLimit with a grace time: past the limit, only a holder that held for the grace time is cut off", async () => {
  const evicted: string[] = [];
  const limit = new PendingLimit(100, { graceMs: 40 });
  const [a, b] = [holder("a", evicted), holder("b", evicted)];
  limit.hold(a, 60);
  await delay(50); // a has held for the grace time
  limit.hold(b, 50); // 110: b is newer than the grace time, a is not
  assertEquals(evicted, [], "judged at once");
  await evictions(evicted, 1); // a check runs every half grace time
  assertEquals(evicted, ["a 60"]);
  assertEquals(limit.total, 50);
  limit.release(b);
});

Deno.test("PendingLimit with a grace time: a burst that is gone within it is never judged", async () => {
  const evicted: string[] = [];
  const limit = new PendingLimit(100, { graceMs: 40 });
  const [a, b] = [holder("a", evicted), holder("b", evicted)];
  limit.hold(a, 80);
  limit.hold(b, 80); // 160: past the limit, not past twice
  await delay(5);
  limit.release(a); // written out, as replies to a reader are
  limit.release(b);
  await delay(60);
  assertEquals([evicted, limit.total], [[], 0]);
});

Deno.test("PendingLimit with a grace time: holders that stay are judged once they held for it, the largest first", async () => {
  const evicted: string[] = [];
  const limit = new PendingLimit(100, { graceMs: 40 });
  const [a, b, c] = ["a", "b", "c"].map((n) => holder(n, evicted));
  limit.hold(a, 80);
  limit.hold(b, 70);
  limit.hold(c, 60); // 210, all new
  assertEquals(evicted, []);
  await evictions(evicted, 2); // once they held for the grace time: a, then b
  assertEquals(evicted, ["a 80", "b 70"]);
  assertEquals(limit.total, 60);
  limit.release(c);
});
