import { assertEquals, assertStringIncludes } from "../lib/std.ts";
import { installed, spawnServer } from "../tools/server_process.ts";

// The benchmark's own smoke test is `deno task bench --quick` in .ci/run;
// here only its harness: the load generator builds and measures an echo.
Deno.test("bench: loadgen.c compiles and measures a Deno echo server", async () => {
  const cc = await installed("cc", ["--version"]);
  if (!cc) {
    console.log("skipped: no cc here to build bench/loadgen.c");
    return;
  }
  const dir = await Deno.makeTempDir();
  try {
    const root = new URL("../", import.meta.url).pathname;
    const build = await new Deno.Command("cc", {
      args: ["-O2", "-o", `${dir}/loadgen`, `${root}bench/loadgen.c`],
    }).output();
    assertEquals(build.success, true);
    await using server = await spawnServer("bench/deno_echo.ts", []);
    const out = await new Deno.Command(`${dir}/loadgen`, {
      args: ["echo", "127.0.0.1", String(server.port), "4", "64", "0.3"],
      stdout: "piped",
    }).output();
    assertEquals(out.success, true);
    const [trips, bytes] = new TextDecoder().decode(out.stdout).trim().split(
      " ",
    ).map(Number);
    assertEquals(trips > 0, true);
    assertEquals(bytes, trips * 64 * 2);
    assertStringIncludes(server.lines.join("\n"), "listening on");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
