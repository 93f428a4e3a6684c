import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "./_assert.ts";
import {
  DROPPING,
  HOST1,
  HOST2,
  Lan,
  namespaces,
  NETNS_UNAVAILABLE,
  type NsChild,
} from "./_netns.ts";

const ignore = NETNS_UNAVAILABLE !== null;
if (ignore) console.log(`  namespace tests skipped: ${NETNS_UNAVAILABLE}`);

/** `deno eval` code: listen on `host`, say the port, echo one read back. */
function echoOnce(host: string): string {
  return `
    const listener = Deno.listen({ hostname: ${
    JSON.stringify(host)
  }, port: 0 });
    console.log("listening " + listener.addr.port);
    const conn = await listener.accept();
    console.log("accepted from " + conn.remoteAddr.hostname);
    const buffer = new Uint8Array(1024);
    const n = await conn.read(buffer);
    await conn.write(buffer.subarray(0, n ?? 0));
    conn.close();
    listener.close();
  `;
}

/**
 * `deno eval` code: connect to `host:port` within `ms`, send a line, print
 * what came back; or print the error's name and how long it took.
 */
function connectOnce(host: string, port: number, ms: number): string {
  return `
    const started = performance.now();
    try {
      const conn = await Deno.connect({
        hostname: ${JSON.stringify(host)},
        port: ${port},
        signal: AbortSignal.timeout(${ms}),
      });
      await conn.write(new TextEncoder().encode("ping\\n"));
      const buffer = new Uint8Array(1024);
      const n = await conn.read(buffer);
      console.log("got " + new TextDecoder().decode(buffer.subarray(0, n ?? 0)).trim());
      conn.close();
    } catch (error) {
      console.log("failed " + error.name + " after " + Math.round(performance.now() - started) + " ms");
    }
  `;
}

/** Waits for a program's `listening …` line; the port in it. */
async function portOf(
  child: NsChild,
  pattern = /listening (\d+)/,
): Promise<number> {
  try {
    return Number((await child.stdout.waitFor(pattern))[1]);
  } catch (error) {
    throw new Error(
      `${(error as Error).message}\nstderr:\n${child.stderr.text}`,
    );
  }
}

/** The sandbox server in ns1 on 0.0.0.0, as on a laptop on the LAN. */
async function sandboxOnLan(
  lan: Lan,
): Promise<{ server: NsChild; port: number }> {
  const server = lan.deno(lan.ns1, [
    "run",
    "--allow-net",
    "--allow-sys=networkInterfaces",
    "sandbox/server.ts",
    "--host",
    "0.0.0.0",
    "--port",
    "0",
  ]);
  return {
    server,
    port: await portOf(server, /listening on 0\.0\.0\.0:(\d+)/),
  };
}

Deno.test({
  name:
    "Lan: two namespaces on a veth pair, 10.200.0.1 and .2, loopback up; always removed, also when the test fails",
  ignore,
  async fn() {
    let names: string[] = [];
    {
      await using lan = await Lan.create();
      names = [lan.ns1, lan.ns2];
      const present = await namespaces();
      assert(names.every((n) => present.includes(n)), `${present}`);
      for (const [ns, address] of [[lan.ns1, HOST1], [lan.ns2, HOST2]]) {
        const addresses = await lan.run(ns, ["ip", "-o", "addr"]);
        assertStringIncludes(addresses.stdout, `inet ${address}/24`);
        assertStringIncludes(addresses.stdout, "inet 127.0.0.1/8");
        const lo = await lan.run(ns, ["ip", "-o", "link", "show", "lo"]);
        assertMatch(lo.stdout, /[<,]UP[,>]/);
      }
    }
    let after = await namespaces();
    assert(names.every((n) => !after.includes(n)), `left behind: ${after}`);

    await assertRejects(
      async () => {
        await using lan = await Lan.create();
        names = [lan.ns1, lan.ns2];
        throw new Error("the test failed");
      },
      Error,
      "the test failed",
    );
    after = await namespaces();
    assert(names.every((n) => !after.includes(n)), `left behind: ${after}`);
  },
});

Deno.test({
  name:
    "Lan: a TCP connection from ns2 reaches a listener on 10.200.0.1 in ns1, and comes from 10.200.0.2",
  ignore,
  async fn() {
    await using lan = await Lan.create();
    const server = lan.deno(lan.ns1, ["eval", echoOnce(HOST1)]);
    const port = await portOf(server);
    const client = await lan.run(lan.ns2, [
      Deno.execPath(),
      "eval",
      connectOnce(HOST1, port, 5000),
    ]);
    assertEquals(client.stdout.trim(), "got ping", client.stderr);
    await server.stdout.waitFor(new RegExp(`accepted from ${HOST2}$`));
  },
});

Deno.test({
  name: "Lan: a server on 127.0.0.1 in ns1 cannot be reached from ns2",
  ignore,
  async fn() {
    await using lan = await Lan.create();
    const server = lan.deno(lan.ns1, ["eval", echoOnce("127.0.0.1")]);
    const port = await portOf(server);
    const client = await lan.run(lan.ns2, [
      Deno.execPath(),
      "eval",
      connectOnce(HOST1, port, 3000),
    ]);
    const outcome = client.stdout.trim();
    // Linux answers a SYN to a port nobody listens on (at that address)
    // with a reset: refused at once, rather than a timeout.
    console.log(`  from ns2: ${outcome}`);
    assertMatch(outcome, /^failed (ConnectionRefused|TimeoutError) /);
  },
});

Deno.test({
  name:
    "Lan: connect() to the dropping address hangs until its timeout ends it",
  ignore,
  async fn() {
    await using lan = await Lan.create();
    const client = await lan.run(lan.ns2, [
      Deno.execPath(),
      "eval",
      connectOnce(DROPPING, 5003, 1000),
    ]);
    const match = client.stdout.match(/^failed TimeoutError after (\d+) ms/);
    assert(match, `expected a timeout, got: ${client.stdout}${client.stderr}`);
    assert(Number(match[1]) >= 990, `ended early: ${match[1]} ms`);
  },
});

Deno.test({
  name: "Lan: sysctl sets a value in one namespace only",
  ignore,
  async fn() {
    await using lan = await Lan.create();
    const key = "net.ipv4.tcp_migrate_req";
    assertEquals(await lan.readSysctl(lan.ns1, key), "0");
    await lan.sysctl(lan.ns1, key, 1);
    assertEquals(await lan.readSysctl(lan.ns1, key), "1");
    assertEquals(await lan.readSysctl(lan.ns2, key), "0");
  },
});

Deno.test({
  name:
    "sandbox/server.ts --host 0.0.0.0 in ns1 tells other machines to connect to 10.200.0.1:PORT",
  ignore,
  async fn() {
    await using lan = await Lan.create();
    const { server, port } = await sandboxOnLan(lan);
    await server.stdout.waitFor(
      new RegExp(
        `other machines can connect to ${
          HOST1.replaceAll(".", "\\.")
        }:${port} `,
      ),
    );
  },
});

Deno.test({
  name:
    "sandbox/client.ts from ns2 chats with a client in ns1 through the server in ns1",
  ignore,
  async fn() {
    await using lan = await Lan.create();
    const { server, port: number } = await sandboxOnLan(lan);
    const port = String(number);
    const client = (ns: string) =>
      lan.deno(ns, [
        "run",
        "--allow-net",
        "sandbox/client.ts",
        "--host",
        HOST1,
        "--port",
        port,
      ], { stdin: true });
    const near = client(lan.ns1);
    const nearName = (await near.stdout.waitFor(/^\* welcome (guest-\d+)/))[1];
    const far = client(lan.ns2);
    const farName = (await far.stdout.waitFor(/^\* welcome (guest-\d+)/))[1];
    await server.stdout.waitFor(new RegExp(`${farName} joined from ${HOST2}:`));

    await far.write("hello from ns2\n");
    await near.stdout.waitFor(new RegExp(`^${farName}: hello from ns2$`));
    await near.write("hi from ns1\n");
    await far.stdout.waitFor(new RegExp(`^${nearName}: hi from ns1$`));

    for (const side of [far, near]) {
      await side.closeStdin();
      assertEquals((await side.exited()).code, 0, side.stderr.text);
    }
  },
});

Deno.test({
  name:
    "sandbox/client.ts --connect-timeout 2 towards the dropping address gives up after about 2 s, saying it timed out",
  ignore,
  async fn() {
    await using lan = await Lan.create();
    const started = performance.now();
    const client = lan.deno(lan.ns2, [
      "run",
      "--allow-net",
      "sandbox/client.ts",
      "--host",
      DROPPING,
      "--port",
      "5003",
      "--connect-timeout",
      "2",
    ]);
    const status = await client.exited(30_000);
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `  gave up after ${seconds.toFixed(2)} s (process start included)`,
    );
    assertEquals(status.code, 1);
    assertStringIncludes(
      client.stderr.text,
      `cannot connect to ${DROPPING}:5003: timed out after 2 s (--connect-timeout), no answer`,
    );
    // At least the timeout; generous above it for Deno's start on a busy machine.
    assert(seconds >= 1.95 && seconds < 12, `${seconds} s`);
  },
});

/**
 * `deno eval` code for ns1: the generated certificate (made here, inside
 * ns1, in `directory`), and a TLS echo of one line on 10.200.0.1.
 */
function tlsEcho(directory: string): string {
  return `
    import { serverCertificate } from "./lib/certificate.ts";
    import { acceptHandshake, listenTls } from "./lib/tls.ts";
    const certificate = await serverCertificate({ directory: ${
    JSON.stringify(directory)
  } });
    console.log("names " + (await import("./lib/certificate.ts")).certificateNames().join(" "));
    console.log("fingerprint " + certificate.fingerprint);
    const listener = listenTls({ host: ${
    JSON.stringify(HOST1)
  }, port: 0 }, certificate);
    console.log("listening " + listener.addr.port);
    const conn = await listener.accept();
    console.log("handshake " + (await acceptHandshake(conn) ?? "ok"));
    const buffer = new Uint8Array(1024);
    const n = await conn.read(buffer);
    await conn.write(buffer.subarray(0, n ?? 0));
    conn.close();
    listener.close();
  `;
}

/** `deno eval` code for ns2: connectTls with `options`, one line there and back. */
function tlsClient(port: number, options: Record<string, string>): string {
  return `
    import { connectTls } from "./lib/tls.ts";
    const conn = await connectTls(
      { host: ${JSON.stringify(HOST1)}, port: ${port} },
      { ...${JSON.stringify(options)}, signal: AbortSignal.timeout(10_000) },
    );
    await conn.write(new TextEncoder().encode("secret ping\\n"));
    const buffer = new Uint8Array(1024);
    const n = await conn.read(buffer);
    console.log("got " + new TextDecoder().decode(buffer.subarray(0, n ?? 0)).trim());
    conn.close();
  `;
}

for (const verify of ["fingerprint", "ca"] as const) {
  Deno.test({
    name:
      `TLS across the LAN: an echo in ns1 with the certificate made there (covering 10.200.0.1) is reached from ns2 with --${verify}`,
    ignore,
    async fn() {
      await using lan = await Lan.create();
      const directory = await Deno.makeTempDir({ prefix: "netns_tls_" });
      try {
        const server = lan.deno(lan.ns1, ["eval", tlsEcho(directory)]);
        const port = await portOf(server);
        const names = (await server.stdout.waitFor(/^names (.*)/))[1].split(
          " ",
        );
        assert(names.includes(HOST1), `${names}`);
        const fingerprint =
          (await server.stdout.waitFor(/^fingerprint (.*)/))[1];
        const options: Record<string, string> = verify === "fingerprint"
          ? { fingerprint }
          : { ca: `${directory}/server-cert.pem` };
        const client = await lan.run(lan.ns2, [
          Deno.execPath(),
          "eval",
          tlsClient(port, options),
        ]);
        assertEquals(client.stdout.trim(), "got secret ping", client.stderr);
        await server.stdout.waitFor(/^handshake ok$/);
        assertEquals((await server.exited()).code, 0, server.stderr.text);
      } finally {
        await Deno.remove(directory, { recursive: true });
      }
    },
  });
}

Deno.test({
  name:
    "LAN walkthrough with TLS: the server in ns1 prints its fingerprint; a client in ns2 joins with it; a wrong one is refused",
  ignore,
  async fn() {
    await using lan = await Lan.create();
    const config = await Deno.makeTempDir({ prefix: "socket-lan-tls-" });
    try {
      // As `deno task sandbox:lan` does: every interface, TLS, a kept certificate.
      const server = lan.deno(lan.ns1, [
        "run",
        "-A",
        "sandbox/server.ts",
        "--host",
        "0.0.0.0",
        "--port",
        "0",
        "--tls",
      ], { env: { XDG_CONFIG_HOME: config } });
      const port = String(
        await portOf(server, /listening on 0\.0\.0\.0:(\d+) \(TLS\)/),
      );
      const fingerprint = (await server.stdout.waitFor(
        /TLS: SHA-256 fingerprint (\S+)/,
      ))[1];
      await server.stdout.waitFor(
        new RegExp(`other machines can connect to ${HOST1}:${port}`),
      );
      const far = lan.deno(lan.ns2, [
        "run",
        "--allow-net",
        "sandbox/client.ts",
        "--host",
        HOST1,
        "--port",
        port,
        "--tls",
        "--fingerprint",
        fingerprint,
      ], { stdin: true });
      await far.stdout.waitFor(/^\* welcome guest-\d+/);
      await far.write("/who\n");
      await far.stdout.waitFor(/^\* 1 here: guest-\d+$/);
      await far.closeStdin();
      assertEquals((await far.exited()).code, 0, far.stderr.text);

      const wrong = await lan.run(lan.ns2, [
        Deno.execPath(),
        "run",
        "--allow-net",
        "sandbox/client.ts",
        "--host",
        HOST1,
        "--port",
        port,
        "--tls",
        "--fingerprint",
        "AB".repeat(32),
      ], "never sent\n");
      assertEquals(wrong.code, 1);
      assertStringIncludes(wrong.stderr, "so nothing was sent");
      assertStringIncludes(wrong.stderr, fingerprint); // what it presented
    } finally {
      await Deno.remove(config, { recursive: true });
    }
  },
});

for (const migrate of [1, 0]) {
  Deno.test({
    name:
      `threaded server, net.ipv4.tcp_migrate_req=${migrate}: the log says what happens to a crashed worker's waiting connections; bursts during crash drills are served, none reset`,
    ignore: ignore || Deno.build.os !== "linux",
    async fn() {
      await using lan = await Lan.create();
      await lan.sysctl(lan.ns1, "net.ipv4.tcp_migrate_req", migrate);
      const server = lan.deno(lan.ns1, [
        "run",
        "-A",
        "multiclientsusingthreading/server.ts",
        "--host",
        HOST1,
        "--port",
        "0",
        "--workers",
        "2",
        "--stats-interval",
        "0",
      ]);
      const port = await portOf(server, /listening on [\d.]+:(\d+)/);
      await server.stdout.waitFor(
        migrate
          ? /move to the others \(net\.ipv4\.tcp_migrate_req is 1\)/
          : /are reset: `sysctl -w net\.ipv4\.tcp_migrate_req=1`/,
      );
      // Bursts of connections from ns2 while a worker crashes (the drill),
      // five times: every connection is served (or told), none reset.
      let resets = 0;
      let served = 0;
      for (let drill = 1; drill <= 5; drill++) {
        const burst = lan.run(lan.ns2, [
          "python3",
          "-c",
          BURST,
          HOST1,
          String(port),
          "200",
        ]);
        server.process.kill("SIGUSR2");
        const output = await burst;
        const [ok, reset] = output.stdout.trim().split(" ").map(Number);
        served += ok;
        resets += reset;
        await server.stdout.waitFor(new RegExp(`worker \\d replaced`));
      }
      console.log(`  ${served} served, ${resets} reset, over 5 drills`);
      assertEquals(resets, 0);
      assert(served > 0);
    },
  });
}

/** Python: `count` connections at once to HOST PORT; prints "served reset". */
const BURST = `
import socket, sys, selectors
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
conns = []
for _ in range(count):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex((host, port))
    conns.append(s)
served = reset = 0
for s in conns:
    s.setblocking(True)
    s.settimeout(10)
    try:
        data = s.recv(100)
        if data: served += 1
        else: reset += 1
    except (ConnectionResetError, ConnectionRefusedError, OSError):
        reset += 1
    s.close()
print(served, reset)
`;
