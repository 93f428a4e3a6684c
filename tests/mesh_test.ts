import { assert, assertEquals } from "./_assert.ts";
import { within } from "./_helpers.ts";
import {
  mainCell,
  mainHandled,
  Mesh,
  meshBacklogBuffer,
} from "../multiclientsusingthreading/mesh.ts";

// Waits go through `within`, whose timer also keeps the event loop alive:
// Deno does not count an `Atomics.waitAsync` as pending work.

const LIMIT = 1024;

/** Whether `promise` is still pending after the tasks queued so far ran. */
async function pending(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(() => (settled = true), () => (settled = true));
  await new Promise((resolve) => setTimeout(resolve, 0));
  return !settled;
}

Deno.test("meshBacklogBuffer: one cell per worker, then one per worker for its posts to the main thread", () => {
  const cells = new Int32Array(meshBacklogBuffer(4));
  assertEquals(cells.length, 9);
  assertEquals([1, 2, 3, 4].map((index) => mainCell(cells, index)), [
    5,
    6,
    7,
    8,
  ]);
});

Deno.test("Mesh: bytes posted to another worker count until it handled them; the sender waits while they are over the bound", async () => {
  const backlog = meshBacklogBuffer(2);
  const cells = new Int32Array(backlog);
  let release = () => {};
  const got: number[] = [];
  const one = new Mesh(1, { backlog, limit: LIMIT, deliver: () => undefined });
  const two = new Mesh(2, {
    backlog,
    limit: LIMIT,
    deliver: (bytes) => {
      got.push(bytes.length);
      return new Promise((resolve) => (release = resolve));
    },
  });
  const channel = new MessageChannel();
  one.connect(2, channel.port1);
  two.connect(1, channel.port2);
  try {
    one.send(new Uint8Array(LIMIT + 1));
    assertEquals(Atomics.load(cells, 2), LIMIT + 1);
    assert(one.congested());
    assert(!two.congested(), "worker 1's backlog is empty");
    const drained = one.drained();
    while (got.length === 0) await new Promise((r) => setTimeout(r, 1));
    assert(await pending(drained), "delivered but not handled yet");
    release();
    await within(drained, 5000, "still waiting after 5 s");
    assertEquals(Atomics.load(cells, 2), 0);
  } finally {
    one.close();
    two.close();
  }
});

Deno.test("Mesh: in portable mode a worker also waits while its posts to the main thread are over the bound, until mainHandled", async () => {
  const backlog = meshBacklogBuffer(2);
  const cells = new Int32Array(backlog);
  const deliver = () => undefined;
  const one = new Mesh(1, { backlog, limit: LIMIT, deliver, main: true });
  const two = new Mesh(2, { backlog, limit: LIMIT, deliver, main: true });
  one.toMain(LIMIT);
  assert(!one.congested(), "at the bound, not over it");
  one.toMain(1);
  assert(one.congested());
  assert(!two.congested(), "each worker waits on its own posts");
  const drained = one.drained();
  assert(await pending(drained));
  mainHandled(cells, { index: 1, size: 1 });
  await within(drained, 5000, "still waiting after 5 s");
  assert(!one.congested());
  assertEquals(Atomics.load(cells, mainCell(cells, 1)), LIMIT);
});

Deno.test("Mesh: without main, posts to the main thread are not counted", () => {
  const backlog = meshBacklogBuffer(1);
  const one = new Mesh(1, {
    backlog,
    limit: LIMIT,
    deliver: () => undefined,
  });
  one.toMain(LIMIT + 1);
  assert(!one.congested());
  assertEquals([...new Int32Array(backlog)], [0, 0, 0]);
});
