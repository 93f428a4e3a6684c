import { assert, assertEquals } from "../lib/std.ts";
import { installed, spawnServer } from "../tools/server_process.ts";

// The benchmark's own smoke test is `deno task bench --quick` in .ci/run;
// here its harness: each load generator (C where cc is, Deno always)
// measures an echo and a chat relay, with the server's CPU time.

const ROOT = new URL("../", import.meta.url).pathname;

/** The generators: a command line each, or why it cannot run here. */
async function generators(dir: string): Promise<[string, string[] | string][]> {
  let c: string[] | string = "no cc here to build bench/loadgen.c";
  if (await installed("cc", ["--version"])) {
    const build = await new Deno.Command("cc", {
      args: ["-O2", "-o", `${dir}/loadgen`, `${ROOT}bench/loadgen.c`],
    }).output();
    assertEquals(build.success, true, "bench/loadgen.c compiles");
    c = [`${dir}/loadgen`];
  }
  const deno = [
    Deno.execPath(),
    "run",
    "--allow-net=127.0.0.1",
    "--allow-run=cat",
    "--allow-env=SERVER_PID",
    `${ROOT}bench/loadgen.ts`,
  ];
  return [["loadgen.c", c], ["loadgen.ts", deno]];
}

/** Runs a generator against a server; its five figures. */
async function run(
  command: string[],
  pid: number,
  args: string[],
): Promise<number[]> {
  const out = await new Deno.Command(command[0], {
    args: [...command.slice(1), ...args],
    env: { SERVER_PID: String(pid) },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert(out.success, new TextDecoder().decode(out.stderr));
  const figures = text.split(" ").map(Number);
  assertEquals(figures.length, 5, text);
  return figures;
}

Deno.test("bench: each load generator measures echo (raw and line) and a chat relay", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    for (const [name, command] of await generators(dir)) {
      if (typeof command === "string") {
        console.log(`skipped ${name}: ${command}`);
        continue;
      }
      await t.step(name, async () => {
        for (const framing of ["raw", "line"]) {
          await using server = await spawnServer("bench/deno_echo.ts", [
            "--framing",
            framing,
          ]);
          const [trips, bytes, p50, p99, cpu] = await run(
            command,
            server.pid,
            [
              "echo",
              "127.0.0.1",
              String(server.port),
              "4",
              "64",
              "0.3",
              framing,
            ],
          );
          assert(trips > 0, `${framing}: ${trips} round trips`);
          assertEquals(bytes, trips * 64 * 2);
          assert(0 < p50 && p50 <= p99, `${framing}: p50 ${p50}, p99 ${p99}`);
          assert(cpu > 0, `${framing}: server CPU ${cpu} s`);
        }
        await using chat = await spawnServer("sandbox/server.ts", []);
        const receivers = 5;
        const [sent, delivered, , , cpu] = await run(command, chat.pid, [
          "chat",
          "127.0.0.1",
          String(chat.port),
          String(receivers),
          "0.5",
          "line",
        ]);
        assert(sent > 0, `${sent} sent`);
        // each receiver counts what reached it; the last few may be in flight
        assert(delivered <= sent * receivers, `${delivered} of ${sent}`);
        assert(
          delivered >= (sent - 2000) * receivers,
          `${delivered} of ${sent}`,
        );
        assert(cpu > 0, `server CPU ${cpu} s`);
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
