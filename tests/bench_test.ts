import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "./_assert.ts";
import { connect, LineConn, runCommand } from "./_helpers.ts";
import { certificateDir, tlsFlags } from "./_certificate.ts";
import {
  type CertificateFiles,
  compileC,
  loadGenerators,
  relayRows,
  tlsRelayRows,
} from "../bench/run.ts";
import { closeQuietly, writeAll } from "../lib/io.ts";
import { connectTls, type StreamConn } from "../lib/tls.ts";
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
const HAVE_NODE = await installed("node", ["--version"]);
if (!HAVE_NODE) {
  console.log("bench: the Node TLS baseline tests are skipped: no node here");
}
/** Why the C generator has no TLS here (built as the bench builds it), or undefined. */
const NO_TLS_GENERATOR = await (async () => {
  const dir = await Deno.makeTempDir();
  try {
    return (await loadGenerators(dir)).noTls;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
})();
if (NO_TLS_GENERATOR !== undefined) {
  console.log(
    `bench: the TLS generator tests are skipped: ${NO_TLS_GENERATOR}`,
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
    "bench: the C generator's sender waits without spinning while it is the whole window ahead",
  ignore: !HAVE_CC || Deno.build.os !== "linux",
  async fn() {
    // A server that welcomes and then relays nothing: the sender is 2,000
    // messages ahead at once, and stays so for the rest of the run.
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const conns: Deno.Conn[] = [];
    const serving = (async () => {
      for await (const conn of listener) {
        conns.push(conn);
        await writeAll(conn, new TextEncoder().encode("* welcome\n"));
        void (async () => {
          const sink = new Uint8Array(65536);
          while (await conn.read(sink).catch(() => null) !== null) {
            // drained, never relayed
          }
        })();
      }
    })();
    const dir = await Deno.makeTempDir();
    try {
      const { c } = await loadGenerators(dir);
      // bash's `times` prints its children's user and system time last
      const out = await new Deno.Command("bash", {
        args: [
          "-c",
          '"$0" chat 127.0.0.1 "$1" 1 1 line; times',
          c![0],
          String(listener.addr.port),
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout).trim().split("\n");
      assert(out.success, new TextDecoder().decode(out.stderr));
      assertEquals(Number(text[0].split(" ")[0]), 2000, text[0]);
      const [user, system] = text.at(-1)!.split(" ").map((time) => {
        const [, minutes, seconds] = time.match(/^(\d+)m([\d.]+)s$/)!;
        return Number(minutes) * 60 + Number(seconds);
      });
      // spinning, it took about the whole measured second
      assert(user + system < 0.25, `the generator used ${text.at(-1)}`);
    } finally {
      listener.close();
      await serving.catch(() => {});
      for (const conn of conns) closeQuietly(conn);
      await Deno.remove(dir, { recursive: true });
    }
  },
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
      // blocks of 70 KB, and soon past for the client that reads nothing; a
      // stall time of 2 s, so that a pause of this process (which reads for
      // the honest client) does not get that client cut too
      await using server = await spawnProcess(relay, [
        "0",
        "65536",
        "262144",
        "2000",
      ]);
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

// ---- TLS: the TLS echo, the generator over TLS, the Node TLS baselines

/** A verified TLS client of a server on loopback (lib/tls.ts's connectTls). */
function connectTrusting(
  port: number,
  files: CertificateFiles,
): Promise<StreamConn> {
  return connectTls({ host: "127.0.0.1", port }, { ca: files.cert });
}

/** Sends `sent` and reads as many bytes back (closing `conn` after 10 s). */
async function echoed(
  conn: StreamConn,
  sent: Uint8Array,
): Promise<Uint8Array> {
  const deadline = setTimeout(() => conn.close(), 10_000);
  try {
    const reading = (async () => {
      const got = new Uint8Array(sent.length);
      let at = 0;
      while (at < got.length) {
        const n = await conn.read(got.subarray(at)).catch(() => null);
        if (n === null) break;
        at += n;
      }
      return got.subarray(0, at);
    })();
    await writeAll(conn, sent);
    return await reading;
  } finally {
    clearTimeout(deadline);
  }
}

/** Reads lines from `conn` until one matches `pattern`; that line. */
async function lineMatching(
  conn: StreamConn,
  pattern: RegExp,
  held: { text: string },
): Promise<string> {
  const buffer = new Uint8Array(4096);
  const decoder = new TextDecoder();
  const deadline = setTimeout(() => conn.close(), 10_000);
  try {
    for (;;) {
      const lines = held.text.split("\n");
      held.text = lines.pop()!;
      const at = lines.findIndex((line) => pattern.test(line));
      if (at !== -1) {
        held.text = [...lines.slice(at + 1), held.text].join("\n");
        return lines[at];
      }
      const n = await conn.read(buffer);
      assert(n !== null, `the connection ended before a line ${pattern}`);
      held.text += decoder.decode(buffer.subarray(0, n), { stream: true });
    }
  } finally {
    clearTimeout(deadline);
  }
}

Deno.test("bench: deno_echo --tls echoes byte for byte to verified clients (connectTls)", async () => {
  await using files = await certificateDir();
  await using server = await spawnServer("bench/deno_echo.ts", tlsFlags(files));
  assertMatch(server.lines.join("\n"), /listening on 127\.0\.0\.1:\d+ \(TLS\)/);
  await Promise.all(Array.from({ length: 4 }, async (_, seed) => {
    const conn = await connectTrusting(server.port, files);
    try {
      const sent = Uint8Array.from(
        { length: 50_000 },
        (_, i) => (i * 7 + seed) & 0xff,
      );
      const got = await echoed(conn, sent);
      assertEquals(got.length, sent.length, `connection ${seed}: bytes echoed`);
      assert(
        got.every((byte, i) => byte === sent[i]),
        `connection ${seed}: the echo differs from what was sent`,
      );
    } finally {
      closeQuietly(conn);
    }
  }));
});

Deno.test({
  name:
    "bench: the C generator over TLS measures our TLS echo (raw and line); the counts add up",
  ignore: NO_TLS_GENERATOR !== undefined,
  async fn() {
    await using files = await certificateDir();
    const { c } = await loadGenerators(files.dir);
    for (const framing of ["raw", "line"]) {
      await using server = await spawnServer("bench/deno_echo.ts", [
        "--framing",
        framing,
        ...tlsFlags(files),
      ]);
      const [trips, bytes, p50, p99, cpu] = await run(
        [...c!, "--tls", files.cert],
        server.pid,
        ["echo", "127.0.0.1", String(server.port), "4", "64", "0.3", framing],
      );
      assert(trips > 0, `${framing}: ${trips} round trips`);
      assertEquals(bytes, trips * 64 * 2);
      assert(0 < p50 && p50 <= p99, `${framing}: p50 ${p50}, p99 ${p99}`);
      assert(cpu > 0, `${framing}: server CPU ${cpu} s`);
    }
  },
});

Deno.test({
  name:
    "bench: the C generator over TLS relays through the sandbox server; deliveries add up",
  ignore: NO_TLS_GENERATOR !== undefined,
  async fn() {
    await using files = await certificateDir();
    const { c } = await loadGenerators(files.dir);
    await using chat = await spawnServer("sandbox/server.ts", tlsFlags(files));
    const receivers = 5;
    const [sent, delivered, , , cpu] = await run(
      [...c!, "--tls", files.cert],
      chat.pid,
      [
        "chat",
        "127.0.0.1",
        String(chat.port),
        String(receivers),
        "0.5",
        "line",
      ],
    );
    assert(sent > 0, `${sent} sent`);
    // each receiver counts what reached it; the last few may be in flight
    assert(delivered <= sent * receivers, `${delivered} of ${sent}`);
    assert(delivered >= (sent - 2000) * receivers, `${delivered} of ${sent}`);
    assert(cpu > 0, `server CPU ${cpu} s`);
  },
});

Deno.test({
  name:
    "bench: the C generator over TLS refuses a server whose certificate it was not given",
  ignore: NO_TLS_GENERATOR !== undefined,
  async fn() {
    await using served = await certificateDir();
    await using trusted = await certificateDir();
    const { c } = await loadGenerators(trusted.dir);
    await using server = await spawnServer(
      "bench/deno_echo.ts",
      tlsFlags(served),
    );
    const out = await new Deno.Command(c![0], {
      args: [
        "--tls",
        trusted.cert,
        "echo",
        "127.0.0.1",
        String(server.port),
        "1",
        "64",
        "0.1",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 1);
    assertEquals(new TextDecoder().decode(out.stdout), "");
    assertStringIncludes(
      new TextDecoder().decode(out.stderr),
      "loadgen: TLS handshake with 127.0.0.1 failed",
    );
  },
});

Deno.test({
  name:
    "bench: the TLS relay rows follow their plain twins, and the threaded TLS row is measured",
  ignore: NO_TLS_GENERATOR !== undefined,
  async fn() {
    await using files = await certificateDir();
    const { c } = await loadGenerators(files.dir);
    const rows = tlsRelayRows({
      cEcho: null,
      cRelay: null,
      node: true,
      python: false,
      ncat: false,
    }, files);
    assertEquals(rows.map((row) => [row.name, row.tls !== undefined]), [
      ["Deno sandbox/ line", false],
      ["Deno sandbox/ line TLS", true],
      ["Deno threaded (reuse-port)", false],
      ["Deno threaded (reuse-port) TLS", true],
      ["Node net relay", false],
      ["Node tls relay", true],
    ]);
    await using server = await rows[3].start();
    const [sent, delivered, , , cpu] = await run(
      [...c!, "--tls", rows[3].tls!],
      server.pid,
      ["chat", "127.0.0.1", String(server.port), "5", "0.3", rows[3].framing],
    );
    assert(sent > 0 && delivered > 0, `${delivered} of ${sent} delivered`);
    assert(delivered <= sent * 5, `${delivered} of ${sent}`);
    assert(cpu >= 0, `server CPU ${cpu} s`);
  },
});

Deno.test({
  name: "bench: node_echo.mjs --tls echoes to a verified client",
  ignore: !HAVE_NODE,
  async fn() {
    await using files = await certificateDir();
    await using server = await spawnProcess("node", [
      new URL("../bench/node_echo.mjs", import.meta.url).pathname,
      ...tlsFlags(files),
    ]);
    const conn = await connectTrusting(server.port, files);
    try {
      const sent = Uint8Array.from({ length: 40_000 }, (_, i) => i & 0xff);
      const got = await echoed(conn, sent);
      assertEquals(got.length, sent.length);
      assert(got.every((byte, i) => byte === sent[i]), "the echo differs");
    } finally {
      closeQuietly(conn);
    }
  },
});

Deno.test({
  name:
    "bench: node_chat.mjs --tls welcomes verified clients and relays a line between them",
  ignore: !HAVE_NODE,
  async fn() {
    await using files = await certificateDir();
    await using server = await spawnProcess("node", [
      new URL("../bench/node_chat.mjs", import.meta.url).pathname,
      ...tlsFlags(files),
    ]);
    const a = await connectTrusting(server.port, files);
    const b = await connectTrusting(server.port, files).catch((error) => {
      closeQuietly(a);
      throw error;
    });
    try {
      const [heldA, heldB] = [{ text: "" }, { text: "" }];
      assertMatch(
        await lineMatching(a, /^\* welcome/, heldA),
        /^\* welcome guest-\d+ \(node\): 0 others here$/,
      );
      await lineMatching(b, /^\* welcome/, heldB);
      await lineMatching(a, /has joined$/, heldA);
      await writeAll(a, new TextEncoder().encode("hello over tls\n"));
      assertMatch(
        await lineMatching(b, /hello/, heldB),
        /^guest-\d+: hello over tls$/,
      );
    } finally {
      closeQuietly(a);
      closeQuietly(b);
    }
  },
});

Deno.test("bench: --wire-cost strips the wire view from copies of the sandbox and iterative servers that still serve", async () => {
  const result = await runCommand(Deno.execPath(), [
    "run",
    "--allow-net=127.0.0.1",
    "--allow-run",
    "--allow-read",
    "--allow-write",
    "--allow-env=NO_COLOR",
    new URL("../bench/run.ts", import.meta.url).pathname,
    "--wire-cost",
    "--seconds",
    "0.2",
    "--repeat",
    "1",
  ]);
  assertEquals(result.code, 0, result.stderr);
  const text = new TextDecoder().decode(result.stdout);
  for (const folder of ["sandbox", "multiclients"]) {
    assertStringIncludes(text, `| ${folder}/ wire view stripped |`);
    assertStringIncludes(text, `| ${folder}/ as shipped |`);
    // the copy is gone afterwards
    const left = (await Array.fromAsync(
      Deno.readDir(new URL(`../${folder}/`, import.meta.url)),
    )).filter((e) => e.name.startsWith("_without_wire"));
    assertEquals(left, []);
  }
});
