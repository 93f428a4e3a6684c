import { assert, assertEquals } from "./_assert.ts";
import { loadGenerators } from "../bench/run.ts";
import { closeQuietly, writeAll } from "../lib/io.ts";
import { spawnServer } from "../tools/server_process.ts";

// The benchmark's own smoke test is `deno task bench --quick` in .ci/run;
// here its harness: each load generator (C where cc is, Deno always)
// measures an echo and a chat relay, with the server's CPU time.

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
    const { c, deno } = await loadGenerators(dir);
    const generators: [string, string[] | null][] = [
      ["loadgen.c", c],
      ["loadgen.ts", deno],
    ];
    for (const [name, command] of generators) {
      if (command === null) {
        console.log(`skipped ${name}: no cc here to build bench/loadgen.c`);
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

Deno.test({
  name:
    "bench: deno_echo --workers 2 (reuse-port) echoes every connection byte for byte",
  ignore: Deno.build.os !== "linux",
  async fn() {
    await using server = await spawnServer("bench/deno_echo.ts", [
      "--workers",
      "2",
    ]);
    const echoOnce = async (seed: number): Promise<void> => {
      const conn = await Deno.connect({
        hostname: "127.0.0.1",
        port: server.port,
      });
      // a worker that does not answer fails the test, not hangs it
      const deadline = setTimeout(() => closeQuietly(conn), 10_000);
      try {
        const sent = Uint8Array.from(
          { length: 100_000 },
          (_, i) => (i * 31 + seed) & 0xff,
        );
        const reading = (async () => {
          const got = new Uint8Array(sent.length);
          let at = 0;
          while (at < got.length) {
            const n = await conn.read(got.subarray(at)).catch(() => null);
            if (n === null) break;
            at += n;
          }
          return { got, at };
        })();
        await writeAll(conn, sent);
        const { got, at } = await reading;
        assertEquals(at, sent.length, `connection ${seed}: bytes echoed`);
        assert(
          got.every((byte, i) => byte === sent[i]),
          `connection ${seed}: the echo differs from what was sent`,
        );
      } finally {
        clearTimeout(deadline);
        closeQuietly(conn);
      }
    };
    await Promise.all(Array.from({ length: 16 }, (_, i) => echoOnce(i)));
  },
});
