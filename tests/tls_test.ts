import { looksLikeTls } from "../lib/framing.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "./_assert.ts";
import {
  type ServerCertificate,
  serverCertificate,
} from "../lib/certificate.ts";
import {
  acceptHandshake,
  connectTls,
  explainHandshakeError,
  listenTls,
  parseFingerprint,
  type StreamConn,
  TlsError,
} from "../lib/tls.ts";
import { CertificateError } from "../lib/certificate.ts";
import { closeQuietly, writeAll } from "../lib/io.ts";
import { installed } from "../tools/server_process.ts";
import { runScript, within } from "./_helpers.ts";
import { tlsClientProblem } from "../lib/tls_options.ts";

// One generated certificate for the whole file, kept in memory only.
const CERT: ServerCertificate = await (async () => {
  const directory = await Deno.makeTempDir({ prefix: "tls_test_" });
  try {
    return await serverCertificate({ directory });
  } finally {
    await Deno.remove(directory, { recursive: true });
  }
})();

const HAVE_OPENSSL = await installed("openssl", ["version"]);
const HAVE_NCAT = await installed("ncat", ["--version"]);
const LINUX = Deno.build.os === "linux";

const utf8 = new TextDecoder();
const encode = (text: string) => new TextEncoder().encode(text);

/** What a test server saw of one connection. */
interface Served {
  /** `acceptHandshake`'s phrase, or null when the handshake completed. */
  failure: string | null;
  /** Every byte the client sent after the handshake, as text. */
  received: string;
}

/**
 * A TLS echo made with `Deno.listenTls`: runs each connection's handshake
 * (acceptHandshake), then sends back every byte; with `closeAfterLine`,
 * closes once a whole line went back.
 */
class TlsEcho implements AsyncDisposable {
  readonly listener: Deno.TlsListener;
  readonly #slots: PromiseWithResolvers<Served>[] = [];
  readonly #tasks: Promise<void>[] = [];
  readonly #loop: Promise<void>;
  /** Connections accepted so far. */
  accepted = 0;

  constructor(
    certificate: ServerCertificate,
    options: { host?: string; closeAfterLine?: boolean; handshakeMs?: number } =
      {},
  ) {
    const listener = listenTls(
      { host: options.host ?? "127.0.0.1", port: 0 },
      certificate,
    );
    this.listener = listener;
    this.#loop = (async () => {
      let index = 0;
      for await (const conn of listener) {
        this.accepted++;
        const slot = this.#slot(index++); // in the order of accept()
        this.#tasks.push(this.#serve(conn, options).then(slot.resolve));
      }
    })();
  }

  get port(): number {
    return this.listener.addr.port;
  }

  /** What the `index`-th connection saw, once it is over. */
  served(index: number): Promise<Served> {
    return within(this.#slot(index).promise, 10_000, `no connection ${index}`);
  }

  #slot(index: number): PromiseWithResolvers<Served> {
    while (this.#slots.length <= index) {
      this.#slots.push(Promise.withResolvers<Served>());
    }
    return this.#slots[index];
  }

  async #serve(
    conn: Deno.TlsConn,
    options: { closeAfterLine?: boolean; handshakeMs?: number },
  ): Promise<Served> {
    const failure = await acceptHandshake(conn, {
      timeoutMs: options.handshakeMs,
    });
    if (failure !== null) return { failure, received: "" };
    let received = "";
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (
        let n = await conn.read(buffer);
        n !== null;
        n = await conn.read(buffer)
      ) {
        received += utf8.decode(buffer.subarray(0, n), { stream: true });
        await writeAll(conn, buffer.subarray(0, n));
        if (options.closeAfterLine && received.includes("\n")) break;
      }
    } catch {
      // the client went away without close_notify: what it sent is recorded
    }
    try {
      conn.close();
    } catch {
      // closed already
    }
    return { failure: null, received };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    closeQuietly(this.listener);
    await this.#loop;
    await Promise.all(this.#tasks);
  }
}

/** A plain TCP server: greets first (`greeting`), or echoes. */
class PlainServer implements AsyncDisposable {
  readonly listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  /** The first bytes of each connection. */
  readonly first: PromiseWithResolvers<Uint8Array> = Promise.withResolvers();
  readonly #tasks: Promise<void>[] = [];
  readonly #conns: Deno.Conn[] = [];
  readonly #loop: Promise<void>;
  /** Connections accepted so far. */
  accepted = 0;

  constructor(mode: { greeting?: string; echo?: boolean }) {
    this.#loop = (async () => {
      for await (const conn of this.listener) {
        this.#conns.push(conn);
        this.#tasks.push((async () => {
          const buffer = new Uint8Array(4096);
          try {
            if (mode.greeting) await writeAll(conn, encode(mode.greeting));
            let first = true;
            for (
              let n = await conn.read(buffer);
              n !== null;
              n = await conn.read(buffer)
            ) {
              if (first) this.first.resolve(buffer.slice(0, n));
              first = false;
              if (mode.echo) await writeAll(conn, buffer.subarray(0, n));
            }
          } catch {
            // reset by the TLS client that gave up, or closed by dispose
          }
          closeQuietly(conn);
        })());
      }
    })();
  }

  get port(): number {
    return this.listener.addr.port;
  }

  /** Closes the listener and every connection (a TLS client that gave up
   * mid-handshake may leave its socket open: see connectTls). */
  async [Symbol.asyncDispose](): Promise<void> {
    closeQuietly(this.listener);
    await this.#loop;
    this.#conns.forEach(closeQuietly);
    await Promise.all(this.#tasks);
  }
}

/** Sends `line`, reads until it came back whole, closes. */
async function roundTrip(conn: StreamConn, line: string): Promise<string> {
  try {
    await writeAll(conn, encode(line));
    let back = "";
    const buffer = new Uint8Array(1024);
    while (back.length < line.length) {
      const n = await conn.read(buffer);
      if (n === null) break;
      back += utf8.decode(buffer.subarray(0, n));
    }
    return back;
  } finally {
    conn.close();
  }
}

/** A fingerprint that is not CERT's: CERT's with its last pair changed. */
const WRONG_PIN = CERT.fingerprint.slice(0, -2) +
  (CERT.fingerprint.endsWith("00") ? "01" : "00");

Deno.test("connectTls --ca FILE: the generated certificate verifies, and a line goes there and back", async () => {
  await using echo = new TlsEcho(CERT);
  const file = await Deno.makeTempFile({ suffix: ".pem" });
  try {
    await Deno.writeTextFile(file, CERT.cert);
    const conn = await connectTls({ host: "127.0.0.1", port: echo.port }, {
      ca: file,
    });
    assertEquals(await roundTrip(conn, "hello over tls\n"), "hello over tls\n");
  } finally {
    await Deno.remove(file);
  }
  assertEquals((await echo.served(0)).received, "hello over tls\n");
});

Deno.test("connectTls --ca PEM text: verifies by host name (localhost) too", async () => {
  await using echo = new TlsEcho(CERT);
  const conn = await connectTls({ host: "localhost", port: echo.port }, {
    ca: CERT.cert,
  });
  assertEquals(await roundTrip(conn, "by name\n"), "by name\n");
  await echo.served(0);
});

Deno.test("connectTls --fingerprint: the right one (any case, colons optional) is accepted", async () => {
  await using echo = new TlsEcho(CERT);
  const pin = CERT.fingerprint.replaceAll(":", "").toLowerCase();
  const conn = await connectTls({ host: "127.0.0.1", port: echo.port }, {
    fingerprint: pin,
  });
  assertEquals(conn.remoteAddr, {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: echo.port,
  });
  assertEquals(await roundTrip(conn, "pinned\n"), "pinned\n");
  assertEquals((await echo.served(0)).received, "pinned\n");
});

Deno.test("connectTls --fingerprint: a wrong one is refused before any byte is sent, with both fingerprints", async () => {
  await using echo = new TlsEcho(CERT);
  const error = await assertRejects(
    () =>
      connectTls({ host: "127.0.0.1", port: echo.port }, {
        fingerprint: WRONG_PIN,
      }),
    TlsError,
  );
  assertEquals(error.failure, "pin-mismatch");
  assertStringIncludes(error.message, CERT.fingerprint);
  assertStringIncludes(error.message, WRONG_PIN);
  assertEquals(error.presented, CERT.fingerprint);
  // The handshake completed (that is how the certificate was seen), and
  // not one byte of application data followed.
  assertEquals(await echo.served(0), { failure: null, received: "" });
});

Deno.test("connectTls with neither --ca nor --fingerprint: a self-signed certificate is refused, naming both, on one connection", async () => {
  await using echo = new TlsEcho(CERT);
  const error = await assertRejects(
    () => connectTls({ host: "127.0.0.1", port: echo.port }),
    TlsError,
  );
  assertEquals(error.failure, "untrusted");
  assertStringIncludes(error.message, "self-signed");
  assertStringIncludes(
    error.message,
    "--fingerprint FINGERPRINT as the server printed it",
  );
  assertStringIncludes(error.message, "--ca FILE");
  assertMatch(error.message, /--insecure/);
  assert(
    error.message.indexOf("--insecure") > error.message.indexOf("--ca"),
    "--insecure comes last",
  );
  // The refused connection saw no data, and there was no other: a second
  // connection (to read the certificate) would have joined a chat.
  const first = await echo.served(0);
  assertEquals(first.received, "");
  assertStringIncludes(first.failure ?? "", "does not trust");
  assertEquals(echo.accepted, 1);
});

Deno.test({
  name:
    "connectTls --ca: a certificate not made for the address is refused as such",
  ignore: !LINUX, // 127.0.0.2 is loopback on Linux only
  async fn() {
    await using echo = new TlsEcho(CERT, { host: "127.0.0.2" });
    const error = await assertRejects(
      () =>
        connectTls({ host: "127.0.0.2", port: echo.port }, { ca: CERT.cert }),
      TlsError,
    );
    assertEquals(error.failure, "untrusted");
    assertStringIncludes(error.message, "not made for the name 127.0.0.2");
    assertStringIncludes(error.message, "--fingerprint FINGERPRINT");
    await echo.served(0);
    assertEquals(echo.accepted, 1);
  },
});

Deno.test("connectTls --insecure: any certificate is accepted", async () => {
  await using echo = new TlsEcho(CERT);
  const conn = await connectTls({ host: "127.0.0.1", port: echo.port }, {
    insecure: true,
  });
  assertEquals(await roundTrip(conn, "unverified\n"), "unverified\n");
  await echo.served(0);
});

Deno.test("connectTls: a plain server that greets first is named as plain TCP (drop --tls)", async () => {
  for (const options of [{}, { insecure: true }]) {
    await using plain = new PlainServer({ greeting: "* welcome guest-1\n" });
    const error = await assertRejects(
      () => connectTls({ host: "127.0.0.1", port: plain.port }, options),
      TlsError,
    );
    assertEquals(error.failure, "plain-server", error.message);
    assertStringIncludes(error.message, "connect without --tls");
  }
});

Deno.test("connectTls: a plain echo server (our hello comes back) is named as plain TCP", async () => {
  for (const options of [{}, { insecure: true }]) {
    await using plain = new PlainServer({ echo: true });
    const error = await assertRejects(
      () => connectTls({ host: "127.0.0.1", port: plain.port }, options),
      TlsError,
    );
    assertEquals(error.failure, "plain-server", error.message);
  }
});

Deno.test("looksLikeTls: a TLS client's first bytes are a handshake record; text is not", async () => {
  for (const options of [{ ca: CERT.cert }, { insecure: true }]) {
    await using plain = new PlainServer({});
    const giveUp = new AbortController();
    const client = connectTls(
      { host: "127.0.0.1", port: plain.port },
      { ...options, signal: giveUp.signal },
    );
    const first = await plain.first.promise;
    assert(looksLikeTls(first), `first bytes: ${first.subarray(0, 8)}`);
    giveUp.abort();
    await assertRejects(() => client, DOMException);
  }
  assertEquals(looksLikeTls(encode("hello\n")), false);
  assertEquals(looksLikeTls(encode("\x16\x03")), false); // too short to tell
  assertEquals(looksLikeTls(Uint8Array.of(0x16, 0x03, 0x05)), false);
  assertEquals(looksLikeTls(Uint8Array.of(0x16, 0x03, 0x01)), true);
});

Deno.test("StreamConn: a Deno.Conn is one (the type checker checks)", () => {
  const asStream = (conn: Deno.Conn): StreamConn => conn;
  assertEquals(typeof asStream, "function");
});

Deno.test("connectTls: --ca, --fingerprint and --insecure are one choice", async () => {
  const error = await assertRejects(
    () =>
      connectTls({ host: "127.0.0.1", port: 1 }, {
        ca: CERT.cert,
        insecure: true,
      }),
    TlsError,
  );
  assertEquals(error.failure, "options");
  assertStringIncludes(error.message, "--ca and --insecure cannot go together");
});

Deno.test("connectTls --ca: a missing or non-PEM file is explained", async () => {
  const missing = await assertRejects(
    () => connectTls({ host: "127.0.0.1", port: 1 }, { ca: "no/such.pem" }),
    TlsError,
  );
  assertStringIncludes(
    missing.message,
    "the --ca file no/such.pem does not exist",
  );
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, "not a certificate\n");
    const notPem = await assertRejects(
      () => connectTls({ host: "127.0.0.1", port: 1 }, { ca: file }),
      TlsError,
    );
    assertStringIncludes(notPem.message, "is not a PEM certificate");
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("parseFingerprint: openssl's line, any case, colons optional; anything else refused", () => {
  assertEquals(
    parseFingerprint(`sha256 Fingerprint=${CERT.fingerprint}`),
    CERT.fingerprint,
  );
  assertEquals(
    parseFingerprint(CERT.fingerprint.toLowerCase().replaceAll(":", "")),
    CERT.fingerprint,
  );
  for (const bad of ["", "AB:CD", CERT.fingerprint + ":00", "zz".repeat(32)]) {
    let error: unknown;
    try {
      parseFingerprint(bad);
    } catch (e) {
      error = e;
    }
    assert(error instanceof TlsError, bad);
    assertStringIncludes(error.message, "is not a SHA-256 fingerprint");
  }
});

Deno.test("tlsClientProblem: a bad --fingerprint is a usage error: exit 2, saying what one looks like", async () => {
  assertEquals(tlsClientProblem({}), null);
  assertEquals(tlsClientProblem({ fingerprint: CERT.fingerprint }), null);
  assertStringIncludes(
    tlsClientProblem({ fingerprint: "8C:41" }) ?? "",
    "is not a SHA-256 fingerprint",
  );
  for (
    const script of [
      "sandbox/client.ts",
      "multiclientsusingthreading/client.ts",
    ]
  ) {
    const result = await runScript(script, ["--tls", "--fingerprint", "8C:41"]);
    assertEquals(result.code, 2, script);
    assertMatch(
      result.stderr,
      /^error: --fingerprint "8C:41" is not a SHA-256 fingerprint/,
    );
    assertStringIncludes(result.stderr, "the 32 hex pairs the server printed");
    assertStringIncludes(result.stderr, "Run it with --help for every option.");
  }
});

Deno.test("connectTls: the signal ends a handshake the server never answers", async () => {
  for (
    const options of [{ ca: CERT.cert }, { fingerprint: CERT.fingerprint }]
  ) {
    await using silent = new PlainServer({}); // accepts, reads, says nothing
    const started = Date.now();
    const error = await assertRejects(
      () =>
        connectTls({ host: "127.0.0.1", port: silent.port }, {
          ...options,
          signal: AbortSignal.timeout(300),
        }),
      DOMException,
    );
    assertEquals(error.name, "TimeoutError");
    assert(Date.now() - started >= 290, "not before the timeout");
  }
});

Deno.test("connectTls --fingerprint: 4 MiB there and back arrive whole and in order (bounded reads)", async () => {
  await using echo = new TlsEcho(CERT);
  const conn = await connectTls({ host: "127.0.0.1", port: echo.port }, {
    fingerprint: CERT.fingerprint,
  });
  const data = new Uint8Array(4 * 1024 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 12)) & 0xff;
  const back = new Uint8Array(data.length);
  const reading = (async () => {
    let filled = 0;
    const buffer = new Uint8Array(10_000); // smaller than the chunks: split reads
    while (filled < back.length) {
      const n = await conn.read(buffer);
      if (n === null) break;
      back.set(buffer.subarray(0, n), filled);
      filled += n;
    }
    return filled;
  })();
  await writeAll(conn, data);
  await conn.closeWrite(); // half-close: the echo still answers
  assertEquals(await reading, data.length);
  assertEquals(back, data);
  assertEquals(await conn.read(new Uint8Array(1)), null);
  conn.close();
  assertEquals((await echo.served(0)).received.length > 0, true);
});

Deno.test("connectTls --fingerprint: close() interrupts a pending read, then reads are refused", async () => {
  await using echo = new TlsEcho(CERT);
  const conn = await connectTls({ host: "127.0.0.1", port: echo.port }, {
    fingerprint: CERT.fingerprint,
  });
  const pending = conn.read(new Uint8Array(10));
  conn.close();
  await assertRejects(() => pending, Deno.errors.Interrupted);
  await assertRejects(
    () => conn.read(new Uint8Array(1)),
    Deno.errors.BadResource,
  );
  await echo.served(0);
});

Deno.test("connectTls: nothing listening is a ConnectionRefused, for explainNetError", async () => {
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = closed.addr.port;
  closed.close();
  for (const options of [{}, { fingerprint: CERT.fingerprint }]) {
    await assertRejects(
      () => connectTls({ host: "127.0.0.1", port }, options),
      Deno.errors.ConnectionRefused,
    );
  }
});

Deno.test("acceptHandshake: a plain client is reported as one, and closed", async () => {
  await using echo = new TlsEcho(CERT);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: echo.port });
  await writeAll(conn, encode("hello\n"));
  const served = await echo.served(0);
  assertStringIncludes(served.failure ?? "", "sent plain text, not TLS");
  // What the plain client gets back is a TLS alert record (0x15), then the end.
  const buffer = new Uint8Array(100);
  const n = await conn.read(buffer);
  assertEquals(n !== null && buffer[0], 0x15);
  conn.close();
});

Deno.test("acceptHandshake: a client that sends no handshake is given up on; its connection ends when it next sends", async () => {
  await using echo = new TlsEcho(CERT, { handshakeMs: 200 });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: echo.port });
  const served = await echo.served(0);
  assertStringIncludes(
    served.failure ?? "",
    "sent no TLS handshake within 0.2 s",
  );
  // Deno keeps a socket whose handshake never began open until the client
  // sends something (rustls-tokio-stream finishes the handshake before it
  // closes): a plain client typing its first line is then told, and closed.
  await writeAll(conn, encode("hello\n"));
  const buffer = new Uint8Array(100);
  const n = await conn.read(buffer);
  assertEquals(n !== null && buffer[0], 0x15); // a TLS alert record
  assertEquals(await conn.read(buffer), null);
  conn.close();
});

Deno.test("listenTls: a key that does not belong to the certificate is explained", async () => {
  const directory = await Deno.makeTempDir();
  try {
    const other = await serverCertificate({ directory });
    const error = (() => {
      try {
        listenTls({ host: "127.0.0.1", port: 0 }, {
          cert: CERT.cert,
          key: other.key,
        })
          .close();
      } catch (e) {
        return e;
      }
    })();
    assert(error instanceof CertificateError, String(error));
    assertStringIncludes(error.message, "does not belong to the certificate");
  } finally {
    await Deno.remove(directory, { recursive: true });
  }
});

Deno.test("explainHandshakeError: an end of stream mid-handshake suggests plain TCP", () => {
  const error = explainHandshakeError(
    new Deno.errors.UnexpectedEof("unexpected end of file"),
    { host: "10.0.0.5", port: 5003 },
  );
  assertEquals(error.failure, "handshake");
  assertStringIncludes(
    error.message,
    "10.0.0.5:5003 with TLS: the server closed",
  );
  assertStringIncludes(error.message, "without --tls");
});

Deno.test({
  name:
    "interop: openssl s_client verifies the listener's generated certificate (-CAfile, return code 0) and a line goes there and back",
  ignore: !HAVE_OPENSSL,
  async fn() {
    await using echo = new TlsEcho(CERT, { closeAfterLine: true });
    const file = await Deno.makeTempFile({ suffix: ".pem" });
    try {
      await Deno.writeTextFile(file, CERT.cert);
      const output = await run("openssl", [
        "s_client",
        "-connect",
        `127.0.0.1:${echo.port}`,
        "-CAfile",
        file,
        "-verify_ip",
        "127.0.0.1",
        "-verify_return_error",
        "-ign_eof",
      ], "hello from openssl\n");
      assertStringIncludes(output.stdout, "Verify return code: 0 (ok)");
      assertStringIncludes(output.stdout, "hello from openssl");
    } finally {
      await Deno.remove(file);
    }
    assertEquals((await echo.served(0)).received, "hello from openssl\n");
  },
});
if (!HAVE_OPENSSL) {
  console.log("  openssl interop skipped: openssl is not installed");
}

Deno.test({
  name:
    "interop: ncat --ssl --ssl-verify with the certificate as trust file exchanges a line",
  ignore: !HAVE_NCAT,
  async fn() {
    await using echo = new TlsEcho(CERT, { closeAfterLine: true });
    const file = await Deno.makeTempFile({ suffix: ".pem" });
    try {
      await Deno.writeTextFile(file, CERT.cert);
      const output = await run("ncat", [
        "--ssl",
        "--ssl-verify",
        "--ssl-trustfile",
        file,
        "localhost",
        String(echo.port),
      ], "hello from ncat\n");
      assertEquals(output.code, 0, output.stderr);
      assertEquals(output.stdout, "hello from ncat\n");
    } finally {
      await Deno.remove(file);
    }
    assertEquals((await echo.served(0)).received, "hello from ncat\n");
  },
});
if (!HAVE_NCAT) console.log("  ncat interop skipped: ncat is not installed");

/** Runs a tool with `input` on stdin; its output as text. */
async function run(
  command: string,
  args: string[],
  input: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(command, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(encode(input));
  await writer.close();
  const output = await within(child.output(), 20_000, `${command} hangs`);
  return {
    code: output.code,
    stdout: utf8.decode(output.stdout),
    stderr: utf8.decode(output.stderr),
  };
}
