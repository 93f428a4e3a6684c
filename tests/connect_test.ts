import {
  assert,
  assertEquals,
  assertMatch,
  assertNotMatch,
  assertStringIncludes,
} from "./_assert.ts";
import {
  CONNECT_FLAGS,
  connecting,
  connectSignal,
  DEFAULT_CONNECT_TIMEOUT,
} from "../lib/connect.ts";
import { parseCli } from "../lib/cli.ts";
import { textLineStream } from "../lib/std.ts";
import { Child, HAVE_PYTHON, runCommand, runScript } from "./_helpers.ts";

const CLIENTS = [
  "basic/client.ts",
  "multiclients/client.ts",
  "multiclientsusingthreading/client.ts",
  "sandbox/client.ts",
];

// ---------------------------------------------------------------------------
// Unit

Deno.test("connectSignal: none for 0 (never); aborts with a TimeoutError after the limit", async () => {
  assertEquals(
    connectSignal({ host: "h", port: 1, connectTimeout: 0 }),
    undefined,
  );
  const signal = connectSignal({ host: "h", port: 1, connectTimeout: 0.01 })!;
  await new Promise((resolve) => signal.addEventListener("abort", resolve));
  assertEquals((signal.reason as DOMException).name, "TimeoutError");
});

Deno.test("connectSignal: 10 s when no limit is given", () => {
  assertEquals(DEFAULT_CONNECT_TIMEOUT, 10);
  const signal = connectSignal({ host: "h", port: 1 })!;
  assertEquals(signal.aborted, false);
});

Deno.test("connecting: says 'connecting to HOST:PORT…' after the delay, with the limit", async () => {
  const said = await new Promise<string>((say) => {
    connecting({ host: "::1", port: 5003, connectTimeout: 10 }, {
      afterMs: 0,
      say,
    });
  });
  assertEquals(said, "-- connecting to [::1]:5003… (giving up after 10 s)");
});

Deno.test("connecting: disposed in time, it says nothing", async () => {
  const said: string[] = [];
  {
    using _status = connecting({ host: "127.0.0.1", port: 5000 }, {
      afterMs: 0,
      say: (line) => said.push(line),
    });
  }
  // A timer set now fires after the one disposed of would have.
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals(said, []);
});

Deno.test("CONNECT_FLAGS: --connect-timeout is seconds, 10 by default, 0 allowed", () => {
  const spec = {
    script: "basic/client.ts",
    summary: "Echo client.",
    role: "client",
    defaultPort: 5000,
    flags: CONNECT_FLAGS,
  } as const;
  assertEquals(parseCli([], spec).connectTimeout, 10);
  assertEquals(parseCli(["--connect-timeout", "0"], spec).connectTimeout, 0);
  assertEquals(
    parseCli(["--connect-timeout", "1.5"], spec).connectTimeout,
    1.5,
  );
});

// ---------------------------------------------------------------------------
// End to end: every client

/**
 * A listener that never answers: Python's backlog of 0, its one place
 * taken, so the kernel drops further SYNs as a silent LAN address does.
 * `null` (the caller skips, saying why) without Python, or where this
 * kernel answers anyway.
 */
async function silentListener(): Promise<
  { port: number } & AsyncDisposable | null
> {
  if (!HAVE_PYTHON) return null;
  const python = new Deno.Command("python3", {
    args: [
      "-c",
      [
        "import socket, sys",
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
        "port = s.getsockname()[1]",
        "fill = socket.create_connection(('127.0.0.1', port), timeout=2)",
        "print(port, flush=True); sys.stdin.read()",
      ].join("\n"),
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const lines = python.stdout.pipeThrough(new TextDecoderStream())
    .pipeThrough(textLineStream()).getReader();
  const port = Number((await lines.read()).value);
  const listener = {
    port,
    async [Symbol.asyncDispose]() {
      await python.stdin.close();
      await lines.cancel();
      await python.status;
    },
  };
  try {
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port,
      signal: AbortSignal.timeout(300),
    });
    conn.close();
  } catch {
    return listener; // no answer: as wanted
  }
  await listener[Symbol.asyncDispose]();
  return null;
}

const NO_SILENCE = "skipped: no silent listener here (needs python3, and a " +
  "kernel that drops SYNs to a full backlog)";

for (const client of CLIENTS) {
  Deno.test(`${client} --connect-timeout 1: gives up after about a second, saying so`, async () => {
    await using silent = await silentListener();
    if (!silent) return console.log(NO_SILENCE);
    const start = Date.now();
    const result = await runScript(client, [
      "--port",
      `${silent.port}`,
      "--connect-timeout",
      "1",
    ]);
    const took = Date.now() - start;
    assertEquals(result.code, 1, result.stderr);
    assertStringIncludes(
      result.stderr,
      `cannot connect to 127.0.0.1:${silent.port}: timed out after 1 s`,
    );
    assert(took >= 1000 && took < 4000, `took ${took} ms`);
  });

  Deno.test(`${client}: '-- connecting to' is said once connecting takes over a second`, async () => {
    await using silent = await silentListener();
    if (!silent) return console.log(NO_SILENCE);
    await using child = new Child(client, ["--port", `${silent.port}`]);
    await child.stderr.waitFor(
      new RegExp(`^-- connecting to 127\\.0\\.0\\.1:${silent.port}…`),
      5000,
    );
  });
}

Deno.test("basic client: no route to host is explained (a network namespace with an unreachable route)", async () => {
  const result = await runCommand("unshare", [
    "--net",
    "sh",
    "-c",
    'ip link set lo up && ip route add unreachable 192.0.2.0/24 && exec "$@"',
    "sh",
    Deno.execPath(),
    "run",
    "--allow-net",
    new URL("../basic/client.ts", import.meta.url).pathname,
    "--host",
    "192.0.2.1",
  ]).catch((error: Error) => ({
    code: -1,
    stdout: new Uint8Array(),
    stderr: error.message,
  }));
  if (result.code !== 1 || !result.stderr.includes("192.0.2.1")) {
    return console.log(
      `skipped: cannot make a network namespace here (needs unshare and ip, as root): ${result.stderr.trim()}`,
    );
  }
  assertStringIncludes(
    result.stderr,
    "cannot connect to 192.0.2.1:5000: no route to host",
  );
  assertStringIncludes(result.stderr, "same network");
  assertNotMatch(result.stderr, /os error|\bat .*:\d+:\d+/);
});

Deno.test("basic client --port 0: a usage error, exit 2", async () => {
  const result = await runScript("basic/client.ts", ["--port", "0"]);
  assertEquals(result.code, 2);
  assertMatch(
    result.stderr,
    /^error: --port must be an integer from 1 to 65535/,
  );
  assertStringIncludes(result.stderr, "Usage:");
});

Deno.test("basic client -h: the usage, with --connect-timeout and the ending rule; exit 0", async () => {
  const result = await runScript("basic/client.ts", ["-h"]);
  assertEquals(result.code, 0, result.stderr);
  const text = new TextDecoder().decode(result.stdout);
  assertStringIncludes(text, "Usage: deno run -A basic/client.ts");
  assertStringIncludes(text, "--connect-timeout SECONDS");
  assertStringIncludes(text, "/quit or Ctrl+D");
});
