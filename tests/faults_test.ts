/**
 * Faults: a server that dies under its clients, SIGTERM in the middle of a
 * broadcast, a client that freezes without closing (no FIN ever comes).
 * (Workers crashing is in multiclientsusingthreading_test.ts.)
 */

import {
  assert,
  assertEquals,
  assertMatch,
  assertNotMatch,
} from "./_assert.ts";
import { writeAll } from "../lib/io.ts";
import {
  Child,
  HAVE_PYTHON,
  joinChat,
  type LineConn,
  startServer,
} from "./_helpers.ts";

const enc = new TextEncoder();

const FOLDERS = [
  "basic",
  "multiclients",
  "multiclientsusingthreading",
  "sandbox",
];

for (const folder of FOLDERS) {
  Deno.test(`${folder} client: the server dying mid-session is said plainly; exit 1, no stack trace`, async () => {
    await using server = await startServer(`${folder}/server.ts`);
    await using client = new Child(
      `${folder}/client.ts`,
      ["--port", String(server.port)],
      { stdin: true },
    );
    const writer = client.process.stdin.getWriter();
    await writer.write(enc.encode("hello\n"));
    writer.releaseLock();
    await client.stdout.waitFor(/hello|welcome/); // in session
    server.kill("SIGKILL");
    const status = await client.exited(5_000);
    assertEquals(status.code, 1);
    assertMatch(
      client.stderr.text,
      /the server closed the connection|connection reset by the other side/,
    );
    assertNotMatch(client.stderr.text, /^\s+at /m, "a stack trace");
  });
}

/** Reads `conn` to its end; returns the lines. */
async function linesToEnd(conn: LineConn): Promise<string[]> {
  const lines: string[] = [];
  for (let line = await conn.line(); line !== null; line = await conn.line()) {
    lines.push(line);
  }
  return lines;
}

const CHATS: [string, string, string[]][] = [
  ["threaded (reuse-port)", "multiclientsusingthreading/server.ts", []],
  ["threaded (portable)", "multiclientsusingthreading/server.ts", [
    "--portable",
  ]],
  ["sandbox", "sandbox/server.ts", []],
];

for (const [name, script, flags] of CHATS) {
  Deno.test({
    name:
      `${name}: SIGTERM in the middle of a broadcast: every receiver gets whole lines, in order, the goodbye, then the end; exit 0`,
    ignore: name.includes("reuse-port") && Deno.build.os !== "linux",
    async fn() {
      await using server = await startServer(script, flags);
      const [sender, senderName] = await joinChat(server);
      const receivers: LineConn[] = [];
      for (let i = 0; i < 4; i++) receivers.push((await joinChat(server))[0]);
      try {
        // Each receiver reads everything to the end, starting now.
        const received = receivers.map(linesToEnd);
        // If the test fails first, the readers end with the connections.
        for (const lines of received) lines.catch(() => {});
        let sent = 0;
        const flooding = (async () => {
          try {
            for (;; sent += 100) {
              const batch = Array.from(
                { length: 100 },
                (_, i) => `${sent + i}\n`,
              ).join("");
              await writeAll(sender.conn, enc.encode(batch));
            }
          } catch {
            // the server went away mid-flood: expected
          }
        })();
        await server.stdout.waitFor(/joined/); // all in; let the flood run
        await new Promise((resolve) => setTimeout(resolve, 300));
        const start = Date.now();
        server.kill("SIGTERM");
        assertEquals((await server.exited(3_000)).code, 0);
        const took = Date.now() - start;
        await flooding;
        for (const lines of await Promise.all(received)) {
          const numbers = lines
            .filter((line) => line.startsWith(`${senderName}: `))
            .map((line) => line.slice(senderName.length + 2));
          assert(numbers.length > 0, "nothing was relayed before SIGTERM");
          // contiguous from 0: nothing lost, nothing twice, no torn line
          numbers.forEach((n, i) =>
            assertEquals(
              n,
              String(i),
              `${JSON.stringify(lines.slice(-4))}\n${server.stdout.text}`,
            )
          );
          assertEquals(
            lines.at(-1),
            "* server shutting down",
            `${JSON.stringify(lines.slice(-4))}\n${server.stdout.text}`,
          );
        }
        console.log(
          `  ${name}: ${sent} lines sent; exit 0 ${took} ms after SIGTERM`,
        );
      } finally {
        sender[Symbol.dispose]();
        for (const r of receivers) r[Symbol.dispose]();
      }
    },
  });
}

// A Python client that joins, prints its welcome and then sleeps: we
// freeze it with SIGSTOP. Its kernel still ACKs until its receive buffer is
// full, then the window closes: to the server it is a peer that vanished
// without a FIN.
const FROZEN_CLIENT = `
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sys.stdout.write(s.recv(4096).decode()); sys.stdout.flush()
time.sleep(60)
`;

Deno.test({
  name:
    "threaded chat: a frozen client (SIGSTOP, no FIN) is cut off at its outbox limit; the others keep chatting",
  ignore: !HAVE_PYTHON,
  async fn() {
    await using server = await startServer(
      "multiclientsusingthreading/server.ts",
      ["--outbox-limit", "262144", "--portable"],
    );
    const [a] = await joinChat(server);
    const [b] = await joinChat(server);
    const frozen = new Deno.Command("python3", {
      args: ["-c", FROZEN_CLIENT, String(server.port)],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    try {
      const reader = frozen.stdout.getReader();
      const welcome = await reader.read();
      reader.releaseLock();
      const frozenName = new TextDecoder().decode(welcome.value).match(
        /welcome (guest-\d+)/,
      )?.[1];
      assert(frozenName, "the frozen client did not join");
      frozen.kill("SIGSTOP");
      // Chat until it is cut off: past the kernel's buffers (they grow to
      // several MiB each way) and the 256 KiB bound. At most 256 MiB.
      const line = enc.encode(`${"x".repeat(1000)}\n`.repeat(64));
      let cutOff = "";
      let sent = 0;
      const flood = (async () => {
        while (!cutOff && sent < 256 << 20) {
          await writeAll(b.conn, line);
          sent += line.length;
        }
      })();
      while (!cutOff) {
        const l = await a.line(20_000).catch((error) => {
          throw new Error(
            `${error.message} (${sent} bytes sent)\n${server.stdout.text}`,
          );
        });
        if (l?.startsWith(`* ${frozenName} has left`)) cutOff = l;
      }
      await flood;
      // what was in flight to a still arrives; then a line of a's own
      await b.send("marker");
      await a.until(/: marker$/);
      assertMatch(cutOff, /too slow: \d+ bytes unread/);
      await a.send("still fine");
      assertEquals(await b.until(/still fine/), `guest-1: still fine`);
    } finally {
      frozen.kill("SIGKILL");
      await frozen.status;
      await frozen.stdout.cancel().catch(() => {});
      a[Symbol.dispose]();
      b[Symbol.dispose]();
    }
  },
});
