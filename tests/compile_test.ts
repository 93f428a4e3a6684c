import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { BINARIES, compileArgs } from "../tools/compile.ts";
import { runCommand } from "./_helpers.ts";

/**
 * Where `deno compile` can find its runtime without the network: DENORT_BIN,
 * or a download cached by an earlier run. `null` when there is none.
 */
function runtimeSource(): string | null {
  const explicit = Deno.env.get("DENORT_BIN");
  if (explicit) return `DENORT_BIN=${explicit}`;
  const denoDir = Deno.env.get("DENO_DIR") ??
    `${Deno.env.get("HOME")}/.cache/deno`;
  const target = `${Deno.build.arch}-${
    Deno.build.os === "darwin" ? "apple-darwin" : "unknown-linux-gnu"
  }`;
  const cached =
    `${denoDir}/dl/release/v${Deno.version.deno}/denort-${target}.zip`;
  try {
    Deno.statSync(cached);
    return cached;
  } catch {
    return null;
  }
}

const RUNTIME = runtimeSource();
if (RUNTIME === null) {
  console.log(
    "compile_test: the end-to-end compile test is skipped: no denort runtime here (deno compile " +
      "downloads it from dl.deno.land, which this machine cannot reach; set DENORT_BIN to run it)",
  );
}

Deno.test("compile: every binary bakes in narrow permissions, never -A", () => {
  for (const binary of BINARIES) {
    const args = compileArgs(binary, { outDir: "dist" });
    assert(!args.includes("-A") && !args.includes("--allow-all"), binary.name);
    assert(args.includes("--allow-net"), `${binary.name} needs the network`);
    for (const arg of args.filter((a) => a.startsWith("--allow-"))) {
      assert(
        [
          "--allow-net",
          "--allow-read",
          "--allow-sys=networkInterfaces",
          // --web: the WebSocket library reads these two as it loads
          "--allow-env=WS_NO_BUFFER_UTIL,WS_NO_UTF_8_VALIDATE",
        ].includes(arg),
        `${binary.name}: ${arg}`,
      );
    }
  }
});

Deno.test("compile: the threaded server embeds its worker module", () => {
  const threaded = BINARIES.find((b) => b.name === "threading-server")!;
  const args = compileArgs(threaded, {
    outDir: "dist",
    target: "aarch64-apple-darwin",
  });
  assertEquals(
    args.slice(args.indexOf("--include"), args.indexOf("--include") + 2),
    [
      "--include",
      "multiclientsusingthreading/worker.ts",
    ],
  );
  assertStringIncludes(
    args.join(" "),
    "--target aarch64-apple-darwin --output dist/threading-server-aarch64-apple-darwin",
  );
});

Deno.test({
  name: "compile: the compiled echo server and client talk to each other",
  ignore: RUNTIME === null,
  async fn() {
    const outDir = await Deno.makeTempDir({
      prefix: "socket_programming_dist_",
    });
    try {
      for (const binary of ["basic-server", "basic-client"]) {
        const build = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--allow-read",
            `--allow-write=${outDir}`,
            "--allow-run",
            "--allow-env",
            "tools/compile.ts",
            "--only",
            binary,
            "--out-dir",
            outDir,
          ],
        }).output();
        assertEquals(build.code, 0, new TextDecoder().decode(build.stderr));
      }

      const server = new Deno.Command(`${outDir}/basic-server`, {
        args: ["--port", "0"],
        stdout: "piped",
        env: { NO_COLOR: "1" },
      })
        .spawn();
      const reader = server.stdout.pipeThrough(new TextDecoderStream())
        .getReader();
      let seen = "";
      while (!/listening on 127\.0\.0\.1:(\d+)/.test(seen)) {
        seen += (await reader.read()).value ?? "";
      }
      const port = seen.match(/listening on 127\.0\.0\.1:(\d+)/)![1];
      const result = await runCommand(
        `${outDir}/basic-client`,
        ["--port", port],
        "compiled hi\n",
      );
      assertEquals(new TextDecoder().decode(result.stdout), "compiled hi\n");
      assertEquals((await server.status).code, 0);
      await reader.cancel();
    } finally {
      await Deno.remove(outDir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "compile: without Deno's runtime at hand, one sentence says what to do, no backtrace",
  ignore: RUNTIME !== null,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "socket-compile-" });
    try {
      const result = await runCommand(Deno.execPath(), [
        "run",
        "--allow-read",
        `--allow-write=${out}`,
        "--allow-run",
        "--allow-env",
        new URL("../tools/compile.ts", import.meta.url).pathname,
        "--only",
        "basic-server",
        "--out-dir",
        out,
      ]);
      assertEquals(result.code, 1);
      assertStringIncludes(result.stderr, "Set DENORT_BIN");
      assert(
        !/Caused by|Stack backtrace|dns error/.test(result.stderr),
        result.stderr,
      );
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
