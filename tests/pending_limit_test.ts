import { assertEquals } from "./_assert.ts";
import { PendingLimit } from "../lib/pending_limit.ts";

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
