import { assert, assertEquals } from "./_assert.ts";
import { pack } from "../tools/pack.ts";
import { spawnProcess } from "../tools/server_process.ts";

// The issue's "runs from a copy of the tree plus a deno binary, with no
// registry access": every fetch goes to a closed port, so only the pack can
// supply the npm packages.
const OFFLINE = {
  HTTPS_PROXY: "http://127.0.0.1:9",
  HTTP_PROXY: "http://127.0.0.1:9",
  NO_PROXY: "",
};
const SCRIPT = new URL("../tools/offline_deno.sh", import.meta.url).pathname;

Deno.test({
  name:
    "pack: with the registry unreachable, offline_deno.sh starts the threaded server (workers and all) from the pack",
  ignore: Deno.build.os === "windows",
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "socket-pack-" });
    try {
      await pack(out, false);
      const env = { ...OFFLINE, PACK: out, DENO: Deno.execPath() };
      // Workers load their modules only once started: "listening on" comes
      // after every worker is ready.
      await using server = await spawnProcess("sh", [
        SCRIPT,
        "run",
        "--allow-net=127.0.0.1",
        "--allow-read",
        "multiclientsusingthreading/server.ts",
        "--port",
        "0",
        "--workers",
        "2",
        "--stats-interval",
        "0",
      ], { env });
      assert(server.port > 0);
      assertEquals(await server.stop(), 0);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "pack: without the pack, the same command fails and says what to do",
  ignore: Deno.build.os === "windows",
  async fn() {
    const out = await new Deno.Command("sh", {
      args: [SCRIPT, "--version"],
      env: { ...OFFLINE, PACK: "/nonexistent" },
      stdout: "null",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 1);
    assert(
      new TextDecoder().decode(out.stderr).includes("deno task pack"),
      "the error names the fix",
    );
  },
});
