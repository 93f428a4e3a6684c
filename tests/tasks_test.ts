import { assertEquals, assertStringIncludes } from "./_assert.ts";
import { connect, LineConn, runCommand, startServer } from "./_helpers.ts";
import { PseudoTerminal } from "./_pty.ts";

const CONFIG = JSON.parse(
  await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
) as { tasks: Record<string, { description: string; command: string }> };

Deno.test("tasks: every task says what it does", () => {
  for (const [name, task] of Object.entries(CONFIG.tasks)) {
    assertEquals(typeof task.description, "string", name);
    assertEquals(task.description.length > 10, true, name);
  }
});

for (const host of ["localhost", "::1", "127.0.0.1"]) {
  Deno.test(`tasks: basic:client reaches a server on ${host} (every loopback name is allowed)`, async () => {
    await using server = await startServer("basic/server.ts", [
      "--host",
      host,
    ]);
    const result = await runCommand(Deno.execPath(), [
      "task",
      "--quiet",
      "basic:client",
      "--host",
      host,
      "--port",
      String(server.port),
    ], "hi\n");
    assertEquals(result.code, 0, result.stderr);
    assertStringIncludes(new TextDecoder().decode(result.stdout), "hi\n");
  });
}

// Ctrl+C at a terminal reaches a program run by `deno task` twice: from the
// terminal and forwarded by the task runner, a millisecond apart. The second
// used to count as "the user insists" and ended the server (130) mid-goodbye,
// in about half the tries: three tries each.
for (
  const [task, args] of [
    ["sandbox:server", []],
    ["threading:server", ["--workers", "2"]],
    ["threading:server", ["--portable", "--workers", "2"]],
  ] as const
) {
  Deno.test(
    `tasks: Ctrl+C on ${
      [task, ...args].join(" ")
    } at a terminal tells the clients, says bye and exits 0`,
    async () => {
      for (let i = 0; i < 3; i++) {
        await using term = PseudoTerminal.start([
          "task",
          task,
          "--port",
          "0",
          ...args,
        ]);
        if (!term) {
          return console.log(
            "skipped: python3 is not available to play the terminal",
          );
        }
        const port = Number(
          (await term.waitFor(/listening on 127\.0\.0\.1:\d+/)).split(":")[1],
        );
        using client = new LineConn(await connect(port));
        await client.until(/^\* welcome /);
        await term.waitFor(/joined/);
        await term.type("\x03");
        assertEquals(
          await client.until(/^\* server/),
          "* server shutting down",
        );
        await term.waitFor(/ bye\r?\n/);
        assertEquals(await term.exited(), 0, term.screen);
      }
    },
  );
}
