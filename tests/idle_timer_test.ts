import { assertEquals } from "./_assert.ts";
import { idleTimer } from "../lib/idle_timer.ts";

Deno.test("idleTimer: fires after the time without a touch, then closes the connection", async () => {
  const { promise: closed, resolve } = Promise.withResolvers<void>();
  const events: string[] = [];
  using idle = idleTimer({ close: () => resolve() }, {
    ms: 20,
    onIdle: () => void events.push("idle"),
  });
  await closed;
  assertEquals([events, idle.fired], [["idle"], true]);
});

Deno.test("idleTimer: each touch starts the time again", async () => {
  const { promise: closed, resolve } = Promise.withResolvers<number>();
  const start = Date.now();
  let touches = 0;
  using idle = idleTimer({ close: () => resolve(touches) }, { ms: 50 });
  // Touch every 10 ms, five times: it cannot fire before 90 ms.
  const touching = setInterval(() => {
    if (++touches === 5) clearInterval(touching);
    idle.touch();
  }, 10);
  assertEquals(await closed, 5);
  assertEquals(Date.now() - start >= 90, true);
});

Deno.test("idleTimer: 0 never fires; disposing stops it", () => {
  using never = idleTimer({ close: () => {} }, { ms: 0 });
  never.touch();
  assertEquals(never.fired, false);
  const stopped = idleTimer({ close: () => {} }, { ms: 10 });
  stopped[Symbol.dispose](); // the sanitizer checks that no timer is left
});
