import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { connect, LineConn } from "./_helpers.ts";
import { compileC, loadGenerators, relayRows } from "../bench/run.ts";
import { closeQuietly, writeAll } from "../lib/io.ts";
import {
  installed,
  spawnProcess,
  spawnServer,
} from "../tools/server_process.ts";

const HAVE_CC = await installed("cc", ["--version"]);
if (!HAVE_CC) {
  console.log(
    "bench: the C relay tests are skipped: no cc here to build bench/c_relay.c",
  );
}

// The benchmark's own smoke test is `deno task bench --quick` in .ci/run;
// here its harness: each load generator (C where cc is, Deno always)
// measures an echo and a chat relay, with the server's CPU time; the C
// relay (the relay rows' anchor) speaks our chat protocol.

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

Deno.test({
  name:
    "bench: the C relay speaks the chat protocol (welcome, join, relay, escapes, leave)",
  ignore: !HAVE_CC,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const relay = (await compileC(dir, "c_relay"))!;
      await using server = await spawnProcess(relay, ["0"]);
      using a = new LineConn(await connect(server.port));
      assertMatch(
        (await a.line())!,
        /^\* welcome guest-1\b.*: 0 others here$/,
      );
      using b = new LineConn(await connect(server.port));
      assertMatch((await b.line())!, /^\* welcome guest-2\b.*: 1 other here$/);
      assertEquals(await a.line(), "* guest-2 has joined");
      // two lines in one write: one block to b; "\r\n" and ESC as ours
      await writeAll(a.conn, new TextEncoder().encode("hello\r\nhi \x1b[2J\n"));
      assertEquals(await b.line(), "guest-1: hello");
      assertEquals(await b.line(), "guest-1: hi ^[[2J");
      await b.send("and you");
      assertEquals(await a.line(), "guest-2: and you");
      b.conn.close();
      assertEquals(await a.line(), "* guest-2 has left");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "bench: the C relay cuts off an unfinished line over its bound, with a notice",
  ignore: !HAVE_CC,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const relay = (await compileC(dir, "c_relay"))!;
      await using server = await spawnProcess(relay, ["0", "1024"]);
      using a = new LineConn(await connect(server.port));
      await a.line();
      using b = new LineConn(await connect(server.port));
      await b.line();
      await a.line(); // b has joined
      await writeAll(b.conn, new Uint8Array(2000).fill(0x7a));
      assertEquals(
        await b.line(),
        "* line longer than 1024 bytes; disconnecting",
      );
      assertEquals(await b.line(), null);
      assertEquals(
        await a.line(),
        "* guest-2 has left (line longer than 1024 bytes)",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "bench: the C relay cuts off a client that stops reading; the others go on",
  ignore: !HAVE_CC,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const relay = (await compileC(dir, "c_relay"))!;
      // queues of 256 KiB (congested past 128 KiB): room for the reader's
      // blocks of 70 KB, and soon past for the client that reads nothing
      await using server = await spawnProcess(relay, ["0", "65536", "262144"]);
      using a = new LineConn(await connect(server.port));
      using b = new LineConn(await connect(server.port));
      using stopped = new LineConn(await connect(server.port));
      await stopped.line(); // its welcome; then it reads nothing more
      await b.until(/^\* guest-3 has joined$/);
      let cut = false;
      const heard = b.until(
        /^\* guest-3 has left \(too slow: \d+ bytes unread\)$/,
        20_000,
      ).finally(() => (cut = true));
      const lines = new TextEncoder().encode(
        `${"x".repeat(99)}\n`.repeat(650),
      );
      // the relay stops reading the sender while the stopped client's queue
      // is congested, then cuts it off and reads on
      for (let i = 0; i < 500 && !cut; i++) await writeAll(a.conn, lines);
      assertMatch(await heard, /too slow/);
      await a.send("still here");
      assertEquals(await b.until(/still here$/), "guest-1: still here");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "bench: the relay rows start with the C relay where cc is, and it is measured",
  ignore: !HAVE_CC,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const cRelay = await compileC(dir, "c_relay");
      const { c } = await loadGenerators(dir);
      const rows = relayRows({
        cEcho: null,
        cRelay,
        node: false,
        python: false,
        ncat: false,
      });
      assertEquals(rows.map((row) => row.name), [
        "C epoll relay",
        "Deno threaded (reuse-port)",
        "Deno threaded (portable)",
        "Deno sandbox/ line",
        "Deno sandbox/ length",
      ]);
      await using server = await rows[0].start();
      const [sent, delivered, , , cpu] = await run(c!, server.pid, [
        "chat",
        "127.0.0.1",
        String(server.port),
        "5",
        "0.3",
        rows[0].framing,
      ]);
      assert(sent > 0 && delivered > 0, `${delivered} of ${sent} delivered`);
      assert(delivered <= sent * 5, `${delivered} of ${sent}`);
      assert(cpu >= 0, `server CPU ${cpu} s`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
