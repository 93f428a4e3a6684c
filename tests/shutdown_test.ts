import { assertEquals } from "./_assert.ts";
import { onShutdown, SHUTDOWN_SIGNALS } from "../lib/shutdown.ts";
import { spawnServer } from "../tools/server_process.ts";

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

// A supervisor (a test, systemd, a script) may stop a server the moment it
// says it listens: by then its shutdown handler must be in place. Before
// the fix, a third to a half of these exits were 143 (killed by the signal).
for (
  const [script, args] of [
    ["multiclients/server.ts", []],
    ["sandbox/server.ts", []],
    ["multiclientsusingthreading/server.ts", ["--workers", "2"]],
  ] as const
) {
  Deno.test({
    name:
      `${script}: SIGTERM right after "listening on" is a clean shutdown (exit 0), every time`,
    ignore: Deno.build.os === "windows",
    async fn() {
      const codes: number[] = [];
      for (let i = 0; i < 10; i++) {
        const server = await spawnServer(script, [...args]);
        codes.push(await server.stop());
      }
      assertEquals(codes, Array(10).fill(0));
    },
  });
}
