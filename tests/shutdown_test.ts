import { assertEquals } from "../lib/std.ts";
import { onShutdown, SHUTDOWN_SIGNALS } from "../lib/shutdown.ts";

Deno.test("SHUTDOWN_SIGNALS: Ctrl+C everywhere, SIGTERM where it exists", () => {
  assertEquals(SHUTDOWN_SIGNALS[0], "SIGINT");
  assertEquals(SHUTDOWN_SIGNALS.length, 2);
});

Deno.test("onShutdown: the returned function removes the listeners (no leak)", () => {
  const stop = onShutdown(() => {});
  stop();
});

// The signal path itself runs in the end-to-end tests: every server's
// "SIGTERM ... exits 0" test sends a real signal to a real process.
