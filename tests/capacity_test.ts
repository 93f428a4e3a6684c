import { assert, assertEquals } from "./_assert.ts";
import { capacity, formatCapacity } from "../tools/capacity.ts";

// CI's version of `deno task capacity` (the README has the 5,000 figures).
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
