import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { DEFAULT_PENDING_LIMIT } from "../lib/pending_limit.ts";
import {
  attack,
  type AttackResult,
  capacity,
  formatAttack,
  formatCapacity,
  IDLE_BUDGET_BYTES,
} from "../tools/capacity.ts";
import { mib } from "../tools/server_process.ts";

// CI's version of `deno task capacity` (docs/benchmark.md has the 5,000 figures).
Deno.test({
  name:
    "capacity: the threaded server holds 1,000 idle connections and still serves",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const result = await capacity({
      connections: 1000,
      server: "threaded",
      workers: 2,
      idleSeconds: 30,
    });
    console.log(formatCapacity(result));
    assertEquals(result.limitedBy, null);
    assertEquals(result.held, 1000);
    assertEquals([result.closedByServer, result.neverWelcomed], [0, 0]);
    assert(result.stillServing, "the server stopped answering");
    if (result.kibPerConnection !== null) {
      // Loose bounds that a leak per connection would break (see README).
      assert(
        result.kibPerConnection < 256,
        `${result.kibPerConnection} KiB per connection`,
      );
      assert(result.idleRssMiB.length > 0, "no memory samples while idle");
      assert(
        result.idleKibPerConnection !== null &&
          result.idleKibPerConnection < 256,
        `${result.idleKibPerConnection} KiB per connection once idle`,
      );
    }
  },
});

// The attacks at a small scale (the full ones are `deno task capacity
// --attack …`, figures in docs/benchmark.md): a 1 MiB bound makes the
// server disconnect most of 50 attackers that each hold 65,000 bytes.
Deno.test({
  name:
    "capacity: --attack unfinished-lines (50 connections, 1 MiB bound): the largest holders are disconnected, the rest held, the server serves",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const bound = 1 << 20;
    const result = await attack({
      attack: "unfinished-lines",
      connections: 50,
      server: "threaded",
      workers: 2,
      maxUnfinished: bound,
      idleSeconds: 5,
    });
    console.log(formatAttack(result));
    assertEquals(result.limitedBy, null);
    assertEquals(result.connected, 50);
    assertEquals(result.maxUnfinishedBytes, bound);
    assertEquals(result.closedOtherwise, 0, result.otherReasons.join("; "));
    // each worker keeps half the bound: at most 8 lines of 65,000 bytes
    assert(result.held <= 16, `${result.held} held`);
    assertEquals(result.evicted + result.held, 50);
    assertEquals(result.neverWelcomed, 0);
    // once they left, only the two probes that asked
    assertMatch(result.stats ?? "", /^stats: 2 connected/);
    assert(result.noticesRead <= result.evicted);
    assert(result.stillServing, "the server stopped answering");
    assertEquals(result.budgetMiB, mib(bound + IDLE_BUDGET_BYTES * 50));
    reportsMemory(result);
  },
});

Deno.test({
  name:
    "capacity: --attack length-prefixes (50 connections): announced sizes cost nothing, none is disconnected",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const result = await attack({
      attack: "length-prefixes",
      connections: 50,
      server: "threaded", // ignored: this attack needs the sandbox's length framing
      workers: 2,
      idleSeconds: 5,
    });
    console.log(formatAttack(result));
    assertEquals(result.limitedBy, null);
    assertMatch(result.server, /^sandbox .*--framing length/);
    assertEquals(result.maxUnfinishedBytes, DEFAULT_PENDING_LIMIT);
    assertEquals([result.connected, result.held, result.evicted], [50, 50, 0]);
    assertEquals(result.neverWelcomed, 0);
    assertEquals(result.closedOtherwise, 0, result.otherReasons.join("; "));
    assert(result.stillServing, "the server stopped answering");
    reportsMemory(result);
  },
});

/** Where ps reads the server's memory, every figure is there and consistent. */
function reportsMemory(result: AttackResult): void {
  if (result.rssBeforeMiB === null) {
    console.log("  memory not checked: ps could not read the server's RSS");
    return;
  }
  assert(result.rssPeakMiB !== null && result.growthMiB !== null);
  assert(result.rssPeakMiB >= result.rssBeforeMiB, "the peak is the highest");
  assertEquals(result.heldRssMiB.length, 1, "one sample in 5 s, held");
  assertEquals(result.afterRssMiB.length, 1, "one sample in 5 s, after");
  assert(result.withinBudget !== null && result.heldWithinBudget !== null);
  assert(result.retainedMiB !== null && result.fellBack !== null);
}
