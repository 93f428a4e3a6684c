import { assertEquals } from "./_assert.ts";
import { onShutdown, SHUTDOWN_SIGNALS } from "../lib/shutdown.ts";
import { LineLog, within } from "./_helpers.ts";
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

// A signal right after the first is the same Ctrl+C delivered twice (the
// terminal and `deno task` both send it); one after REPEAT_WINDOW_MS insists.
Deno.test({
  name:
    "onShutdown: a repeat at once is the same signal; one after the window exits 130",
  ignore: Deno.build.os === "windows",
  async fn() {
    const shutdown = new URL("../lib/shutdown.ts", import.meta.url).href;
    const script = `
      import { onShutdown, REPEAT_WINDOW_MS } from "${shutdown}";
      onShutdown(async () => {
        console.log("stopping");
        await new Promise((resolve) => setTimeout(resolve, REPEAT_WINDOW_MS + 50));
        console.log("insist now");
        await new Promise((resolve) => setTimeout(resolve, 10_000));
        Deno.exit(0);
      });
      console.log("ready");
      setTimeout(() => {}, 20_000);
    `;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", script],
      stdout: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const log = new LineLog(child.stdout);
    await log.waitFor(/^ready$/);
    child.kill("SIGINT");
    await log.waitFor(/^stopping$/);
    child.kill("SIGINT"); // the duplicate: ignored
    await log.waitFor(/^insist now$/); // still running past the window
    child.kill("SIGINT");
    const status = await within(child.status, 5_000, "no exit on insisting");
    assertEquals(status.code, 130);
    await log.done;
  },
});
