/**
 * Interoperability with tools no one here wrote: OpenBSD `nc`, `socat`, and
 * a plain Python `socket` client. A missing tool skips its tests with a
 * printed reason (.ci/run installs nc and socat from Debian's packages).
 */

import { assertEquals, assertMatch, assertStringIncludes } from "./_assert.ts";
import { installed } from "../tools/server_process.ts";
import {
  Child,
  connect,
  HAVE_PYTHON,
  LineConn,
  runCommand,
  type Server,
  startServer,
} from "./_helpers.ts";
import { serverCertificate } from "../lib/certificate.ts";

const dec = new TextDecoder();

const HAVE = {
  nc: await installed("nc", ["-h"]),
  socat: await installed("socat", ["-V"]),
  python3: HAVE_PYTHON,
};
for (const [tool, ok] of Object.entries(HAVE)) {
  if (!ok) {
    console.log(
      `interop_test: ${tool} is not installed; its tests are skipped`,
    );
  }
}

Deno.test({
  name: "interop: nc -N against the basic echo server",
  ignore: !HAVE.nc,
  async fn() {
    await using server = await startServer("basic/server.ts");
    const result = await runCommand(
      "nc",
      ["-N", "127.0.0.1", String(server.port)],
      "hello from nc\n",
    );
    assertEquals(dec.decode(result.stdout), "hello from nc\n");
    assertEquals((await server.exited(5000)).code, 0);
  },
});

Deno.test({
  name:
    "interop: socat carries 1 MiB of binary through the basic echo server byte for byte",
  ignore: !HAVE.socat,
  async fn() {
    await using server = await startServer("basic/server.ts");
    const data = new Uint8Array(1 << 20).map((_, i) => (i * 31 + 7) & 0xff);
    const result = await runCommand("socat", [
      "-t",
      "5",
      "-",
      `TCP:127.0.0.1:${server.port}`,
    ], data);
    assertEquals(result.code, 0, result.stderr);
    assertEquals(result.stdout.length, data.length);
    assertEquals(result.stdout, data);
  },
});

Deno.test({
  name: "interop: a plain Python socket client against the basic echo server",
  ignore: !HAVE.python3,
  async fn() {
    await using server = await startServer("basic/server.ts");
    const script = [
      "import socket, sys",
      "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))",
      "s.sendall(b'ping\\x00\\xff\\n')",
      "s.shutdown(socket.SHUT_WR)",
      "data = b''",
      "while chunk := s.recv(4096): data += chunk",
      "sys.stdout.write(data.hex())",
    ].join("\n");
    const result = await runCommand(
      "python3",
      ["-c", script, String(server.port)],
      "",
    );
    assertEquals(result.code, 0, result.stderr);
    assertEquals(dec.decode(result.stdout), "70696e6700ff0a");
  },
});

Deno.test({
  name:
    "interop: nc against the iterative server: greeting, then each line back",
  ignore: !HAVE.nc,
  async fn() {
    await using server = await startServer("multiclients/server.ts");
    const result = await runCommand(
      "nc",
      ["-N", "127.0.0.1", String(server.port)],
      "one\r\ntwo\n",
    );
    assertMatch(
      dec.decode(result.stdout),
      /^\* hello .*client #1.*\none\r\ntwo\n$/,
    );
  },
});

Deno.test({
  name: "interop: socat clients chat through the threaded server",
  ignore: !HAVE.socat,
  async fn() {
    await using server = await startServer(
      "multiclientsusingthreading/server.ts",
      ["--workers", "2"],
    );
    using listener = new LineConn(await connect(server.port));
    await listener.line(); // welcome
    const result = await runCommand("socat", [
      "-t",
      "1",
      "-",
      `TCP:127.0.0.1:${server.port}`,
    ], "hi from socat\n/who\n");
    assertEquals(result.code, 0, result.stderr);
    assertMatch(
      await listener.until(/hi from socat/),
      /^guest-\d+: hi from socat$/,
    );
    assertMatch(
      dec.decode(result.stdout),
      /^\* welcome guest-\d+ \(worker \d\)/,
    );
  },
});

Deno.test({
  name:
    "interop: a Python client speaks length framing to the sandbox (struct.pack('!I'))",
  ignore: !HAVE.python3,
  async fn() {
    await using server = await startServer("sandbox/server.ts", [
      "--framing",
      "length",
    ]);
    const script = [
      "import socket, struct, sys",
      "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))",
      "def send(text): b = text.encode(); s.sendall(struct.pack('!I', len(b)) + b)",
      "def recv_exact(n):",
      "    data = b''",
      "    while len(data) < n:",
      "        chunk = s.recv(n - len(data))",
      "        if not chunk: raise EOFError",
      "        data += chunk",
      "    return data",
      "def frame(): (n,) = struct.unpack('!I', recv_exact(4)); return recv_exact(n).decode()",
      "print(frame())",
      "send('/nick py')",
      "print(frame())",
      "send('/who')",
      "print(frame())",
    ].join("\n");
    const result = await runCommand(
      "python3",
      ["-c", script, String(server.port)],
      "",
    );
    assertEquals(result.code, 0, result.stderr);
    const lines = dec.decode(result.stdout).trim().split("\n");
    assertStringIncludes(lines[0], "* welcome guest-1");
    assertEquals(lines.slice(1), ["* you are now py", "* 1 here: py"]);
  },
});

const HAVE_TLS_TOOLS = {
  openssl: await installed("openssl", ["version"]),
  ncat: await installed("ncat", ["--version"]),
};

/** A sandbox --tls server with a certificate made for the test. */
async function tlsChat(
  script: string,
  args: string[] = [],
): Promise<{ server: Server; cert: string; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "socket-interop-tls-" });
  const made = await serverCertificate({ directory: dir });
  const server = await startServer(script, [
    "--tls",
    "--cert",
    made.path,
    "--key",
    `${dir}/server-key.pem`,
    ...args,
  ]);
  return { server, cert: made.path, dir };
}

for (const tool of ["openssl", "ncat"] as const) {
  Deno.test({
    name:
      `interop: ${tool} is a TLS chat client of the sandbox server (--tls), verifying its certificate`,
    ignore: !HAVE_TLS_TOOLS[tool],
    async fn() {
      const { server, cert, dir } = await tlsChat("sandbox/server.ts");
      try {
        // A pinned Deno client watches the room.
        const fingerprint = (await serverCertificate({ directory: dir }))
          .fingerprint;
        await using watcher = new Child("sandbox/client.ts", [
          "--port",
          String(server.port),
          "--tls",
          "--fingerprint",
          fingerprint,
        ], { stdin: true });
        await watcher.stdout.waitFor(/^\* welcome/);
        const args = tool === "openssl"
          ? [
            "s_client",
            "-connect",
            `127.0.0.1:${server.port}`,
            "-CAfile",
            cert,
            "-verify_return_error",
            "-verify_ip",
            "127.0.0.1",
            "-quiet",
            "-no_ign_eof",
          ]
          : [
            "--ssl",
            "--ssl-verify",
            "--ssl-trustfile",
            cert,
            "localhost", // ncat checks names, not IP addresses
            String(server.port),
          ];
        // It verifies first (or refuses), sends its line, and leaves at
        // the end of its input.
        const result = await runCommand(tool, args, `hello from ${tool}\n`);
        assertEquals(result.code, 0, result.stderr);
        await watcher.stdout.waitFor(
          new RegExp(`^guest-\\d+: hello from ${tool}$`),
        );
      } finally {
        await server[Symbol.asyncDispose]();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name:
    "interop: the threaded server speaks TLS in both modes (reuse-port, portable) to openssl and a pinned client",
  ignore: !HAVE_TLS_TOOLS.openssl || Deno.build.os !== "linux",
  async fn(t) {
    for (const mode of [[], ["--portable"]]) {
      await t.step(mode.length ? "portable" : "reuse-port", async () => {
        const { server, cert, dir } = await tlsChat(
          "multiclientsusingthreading/server.ts",
          ["--workers", "2", ...mode],
        );
        try {
          assertMatch(server.stdout.text, /listening on .* \(TLS\) with 2/);
          const fingerprint =
            (await serverCertificate({ directory: dir })).fingerprint;
          await using watcher = new Child(
            "multiclientsusingthreading/client.ts",
            [
              "--port",
              String(server.port),
              "--tls",
              "--fingerprint",
              fingerprint,
            ],
            { stdin: true },
          );
          await watcher.stdout.waitFor(/^\* welcome/);
          const result = await runCommand("openssl", [
            "s_client",
            "-connect",
            `127.0.0.1:${server.port}`,
            "-CAfile",
            cert,
            "-verify_return_error",
            "-quiet",
            "-no_ign_eof",
          ], "hello over tls\n");
          assertEquals(result.code, 0, result.stderr);
          await watcher.stdout.waitFor(/^guest-\d+: hello over tls$/);
        } finally {
          await server[Symbol.asyncDispose]();
          await Deno.remove(dir, { recursive: true });
        }
      });
    }
  },
});
