import { assertEquals, assertMatch } from "./_assert.ts";
import { scriptPath } from "./_helpers.ts";

/** Runs a server that fails at once (bad port), without NO_COLOR, output piped. */
async function piped(
  env: Record<string, string>,
): Promise<{ out: string; err: string }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      scriptPath("basic/server.ts"),
      "--port",
      String(listener.addr.port),
    ],
    stdout: "piped",
    stderr: "piped",
    env,
    clearEnv: true,
  }).output();
  listener.close();
  return {
    out: new TextDecoder().decode(output.stdout),
    err: new TextDecoder().decode(output.stderr),
  };
}

Deno.test("log and errors: no color codes when the output is not a terminal, even without NO_COLOR", async () => {
  const { err } = await piped({});
  assertMatch(err, /^error: cannot listen/);
  assertEquals(
    err.includes("\x1b["),
    false,
    "an escape sequence in piped output",
  );
});

Deno.test("log: each line starts with a HH:MM:SS.mmm timestamp", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", scriptPath("basic/server.ts"), "--port", "0"],
    stdout: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await reader.read();
  child.kill("SIGKILL");
  await reader.cancel();
  await child.status;
  assertMatch(
    value ?? "",
    /^\d\d:\d\d:\d\d\.\d{3} listening on 127\.0\.0\.1:\d+/,
  );
});
