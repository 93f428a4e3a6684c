import { assertEquals } from "./_assert.ts";
import { formatSummary, passed, soak } from "../tools/soak.ts";

// A short soak per server (CI's version of `deno task soak`): clients join,
// talk, leave and rejoin at random; every message is accounted for.
for (const server of ["threaded", "portable", "sandbox"]) {
  Deno.test({
    name:
      `soak (${server}, 4 s, 60 clients): nothing lost, duplicated or reordered`,
    ignore: server === "threaded" && Deno.build.os !== "linux",
    async fn() {
      const summary = await soak({
        seconds: 4,
        clients: 60,
        server,
        workers: 2,
        seed: 7,
      });
      console.log(formatSummary(summary));
      assertEquals(summary.problems, []);
      assertEquals(summary.lost, 0);
      assertEquals(summary.duplicated, 0);
      assertEquals(summary.reordered, 0);
      assertEquals(passed(summary), true);
      assertEquals(summary.sent > 0 && summary.delivered > summary.sent, true);
    },
  });
}
