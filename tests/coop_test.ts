import { assert, assertEquals } from "./_assert.ts";
import { COOP_SLICE_MS, cooperate } from "../lib/coop.ts";
import { delay } from "../lib/std.ts";

/** Runs ready steps (microtasks only), cooperating, until `done()` or 2 s. */
async function spin(done: () => boolean): Promise<number> {
  const start = performance.now();
  while (!done() && performance.now() - start < 2000) {
    await Promise.resolve();
    const turn = cooperate();
    if (turn) await turn;
  }
  return performance.now() - start;
}

Deno.test("cooperate: the first call after the event loop turned goes on at once", async () => {
  await delay(2 * COOP_SLICE_MS);
  assertEquals(cooperate(), undefined);
  await delay(2 * COOP_SLICE_MS); // the mark it made has run
});

Deno.test("cooperate: a loop whose steps are always ready still lets a timer fire", async () => {
  let fired = false;
  setTimeout(() => (fired = true), 0);
  const took = await spin(() => fired);
  assert(fired, "the timer never fired while the loop ran");
  assert(took < 500, `the timer fired after ${took} ms`);
});

Deno.test("cooperate: a loop whose steps are always ready still lets another socket be read", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  using client = await Deno.connect({ port: listener.addr.port });
  using server = await listener.accept();
  let read = false;
  const reading = server.read(new Uint8Array(8)).then(() => (read = true));
  await client.write(Uint8Array.of(1));
  const took = await spin(() => read);
  await reading;
  assert(took < 500, `the read came after ${took} ms`);
});
