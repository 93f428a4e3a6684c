import { assertEquals, assertStringIncludes } from "./_assert.ts";
import { runCommand, startServer } from "./_helpers.ts";

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
