import { assert, assertEquals } from "./_assert.ts";
import { NoticeBudget, summary } from "../lib/notice_budget.ts";

/** A budget on a clock the test moves; its summaries, as said. */
function budget(options: { burst: number; perSecond: number }) {
  let now = 0;
  const said: string[] = [];
  const summarized = Promise.withResolvers<void>();
  const notices = new NoticeBudget({
    ...options,
    summaryMs: 10,
    now: () => now,
    say: (text) => {
      said.push(text);
      summarized.resolve();
    },
  });
  return {
    notices,
    said,
    summarized: summarized.promise,
    advance: (ms: number) => (now += ms),
  };
}

Deno.test("NoticeBudget: a burst is said one by one, then a steady rate; the rest is counted", () => {
  const { notices, advance } = budget({ burst: 3, perSecond: 2 });
  try {
    const said = [1, 2, 3, 4, 5].map((id) => notices.joined(id));
    assertEquals(said, [true, true, true, false, false]);
    advance(499);
    assertEquals(notices.joined(6), false, "not yet a whole notice's worth");
    advance(1);
    assertEquals(notices.joined(7), true, "half a second: one more");
    assertEquals(notices.joined(8), false);
    advance(60_000);
    const afterQuiet = [9, 10, 11, 12].map((id) => notices.joined(id));
    assertEquals(
      afterQuiet,
      [true, true, true, false],
      "refilled to the burst only",
    );
  } finally {
    notices.stop();
  }
});

Deno.test("NoticeBudget: one whose join was counted is counted when it leaves; one announced may be said leaving", () => {
  const { notices, advance } = budget({ burst: 1, perSecond: 1 });
  try {
    assert(notices.joined(1));
    assert(!notices.joined(2), "counted");
    advance(5_000); // budget again
    assert(!notices.left(2), "its join was never said: nor is its leave");
    assert(notices.left(1), "said: the budget was there");
  } finally {
    notices.stop();
  }
});

Deno.test("NoticeBudget: renames share the budget; one whose join was counted is counted when it renames", async () => {
  const { notices, advance, said, summarized } = budget({
    burst: 2,
    perSecond: 1,
  });
  try {
    assert(notices.joined(1));
    assert(notices.renamed(1));
    assert(!notices.renamed(1), "past the burst: counted");
    assert(!notices.joined(2));
    advance(5_000); // budget again
    assert(!notices.renamed(2), "its join was never said: nor is its rename");
    assert(notices.renamed(1));
    const alive = setTimeout(() => {}, 5_000);
    await summarized;
    clearTimeout(alive);
    assertEquals(said, [summary({ joins: 1, leaves: 0, renames: 2 })]);
  } finally {
    notices.stop();
  }
});

Deno.test("NoticeBudget: the counted notices come as one summary, after a while", async () => {
  const { notices, said, summarized } = budget({ burst: 1, perSecond: 0 });
  try {
    notices.joined(1);
    for (let id = 2; id <= 4; id++) notices.joined(id);
    notices.left(3);
    notices.left(1); // announced, but no budget left: counted
    assertEquals(said, [], "not at once");
    // Its timer keeps no program alive: this one keeps the test's.
    const alive = setTimeout(() => {}, 5_000);
    await summarized;
    clearTimeout(alive);
    assertEquals(said, [summary({ joins: 3, leaves: 2 })]);
  } finally {
    notices.stop();
  }
});

Deno.test("NoticeBudget: stop calls the pending summary off", async () => {
  const { notices, said } = budget({ burst: 0, perSecond: 0 });
  notices.joined(1);
  notices.stop();
  await new Promise((resolve) => setTimeout(resolve, 30));
  assertEquals(said, []);
});

Deno.test("summary: says what was counted, leaving out a part that is zero", () => {
  const tail =
    "just now (too many to announce one by one; /who lists who is here)";
  assertEquals(
    summary({ joins: 312, leaves: 309 }),
    `312 joined and 309 left ${tail}`,
  );
  assertEquals(summary({ joins: 1, leaves: 0 }), `1 joined ${tail}`);
  assertEquals(summary({ joins: 0, leaves: 7 }), `7 left ${tail}`);
  assertEquals(
    summary({ joins: 2, leaves: 1, renames: 40 }),
    `2 joined, 1 left and 40 changed names ${tail}`,
  );
  assertEquals(
    summary({ joins: 0, leaves: 0, renames: 1 }),
    `1 changed name ${tail}`,
  );
});
