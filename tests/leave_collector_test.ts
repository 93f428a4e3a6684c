import { assert, assertEquals } from "./_assert.ts";
import { within } from "./_helpers.ts";
import { collectGarbage, LeaveCollector } from "../lib/leave_collector.ts";

// Waits go through `within`, whose timer also keeps the event loop alive:
// the collector's own timer is unref'd.

/** A collection stand-in that counts its calls and says when one ran. */
function counting() {
  let calls = 0;
  let ran = Promise.withResolvers<void>();
  return {
    get calls() {
      return calls;
    },
    next: () => ran.promise,
    collect: () => {
      calls++;
      ran.resolve();
      ran = Promise.withResolvers<void>();
      return Promise.resolve();
    },
  };
}

Deno.test("LeaveCollector: once enough clients left and then none for the quiet time, one collection runs", async () => {
  const stand = counting();
  const collector = new LeaveCollector({
    leaves: 3,
    quietMs: 20,
    collect: stand.collect,
  });
  try {
    collector.left();
    collector.left();
    const started = Date.now();
    collector.left(); // the third: one collection, 20 ms after the last leave
    await within(stand.next(), 5000, "no collection in 5 s");
    assert(Date.now() - started >= 19, "ran before the quiet time");
    assertEquals(stand.calls, 1);
    // It counts again from zero.
    collector.left();
    collector.left();
    collector.left();
    await within(stand.next(), 5000, "no collection in 5 s");
    assertEquals(stand.calls, 2);
  } finally {
    collector.stop();
  }
});

Deno.test("LeaveCollector: a leave during the quiet time puts the collection off", async () => {
  const stand = counting();
  const collector = new LeaveCollector({
    leaves: 1,
    quietMs: 50,
    collect: stand.collect,
  });
  try {
    collector.left();
    await new Promise((resolve) => setTimeout(resolve, 30));
    const last = Date.now();
    collector.left(); // 30 ms in: the clock starts again
    await within(stand.next(), 5000, "no collection in 5 s");
    assert(
      Date.now() - last >= 49,
      "ran before the quiet time after the last leave",
    );
    assertEquals(stand.calls, 1);
  } finally {
    collector.stop();
  }
});

Deno.test("LeaveCollector: reads put the collection off until the thread has been quiet for the quiet time", async () => {
  const stand = counting();
  const collector = new LeaveCollector({
    leaves: 1,
    quietMs: 40,
    collect: stand.collect,
  });
  let lastRead = 0;
  let reads = 0;
  const traffic = setInterval(() => {
    collector.busy(); // a read every 10 ms: never 40 ms without one
    lastRead = Date.now();
    reads++;
  }, 10);
  try {
    collector.left();
    while (reads < 15) { // 150 ms of traffic, almost four quiet times
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assertEquals(stand.calls, 0, "collected while the thread was busy");
    clearInterval(traffic);
    await within(stand.next(), 5000, "no collection in 5 s");
    assert(
      Date.now() - lastRead >= 39,
      "ran before a quiet time without reads",
    );
    assertEquals(stand.calls, 1);
  } finally {
    clearInterval(traffic);
    collector.stop();
  }
});

Deno.test("LeaveCollector: fewer leaves than asked, stopped, or leaves 0: no collection, no timer left behind", () => {
  const stand = counting();
  const few = new LeaveCollector({
    leaves: 3,
    quietMs: 1,
    collect: stand.collect,
  });
  few.left();
  few.left();
  few.stop();
  const stopped = new LeaveCollector({
    leaves: 1,
    quietMs: 1,
    collect: stand.collect,
  });
  stopped.left(); // armed, then called off
  stopped.stop();
  stopped.left();
  const never = new LeaveCollector({ leaves: 0, collect: stand.collect });
  never.left();
  assertEquals(stand.calls, 0);
  // The test's sanitizers fail it if any timer is still pending here.
});

Deno.test("collectGarbage: Deno has V8's full collection, and it gives freed memory back", async () => {
  assertEquals(await collectGarbage(), true);
  let garbage: string[] | null = Array.from(
    { length: 200_000 },
    (_, i) => `${i}`.repeat(20),
  );
  const grown = Deno.memoryUsage().heapUsed;
  garbage = null;
  assertEquals(garbage, null);
  assertEquals(await collectGarbage(), true);
  assert(
    Deno.memoryUsage().heapUsed < grown - 10 * 2 ** 20,
    "the heap kept the garbage",
  );
});
