import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "./_assert.ts";
import {
  canonicalIp,
  CertificateError,
  certificateNames,
  configDirectory,
  fingerprint,
  formatFingerprint,
  serverCertificate,
} from "../lib/certificate.ts";
import { installed } from "../tools/server_process.ts";

const HAVE_OPENSSL = await installed("openssl", ["version"]);
const WINDOWS = Deno.build.os === "windows";
if (!HAVE_OPENSSL) {
  console.log("  openssl checks skipped: openssl is not installed");
}

/** A temporary directory, removed on dispose. */
async function tempDir(): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix: "certificate_test_" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

/** Runs openssl with `args`; its stdout. */
async function openssl(args: string[]): Promise<string> {
  const output = await new Deno.Command("openssl", { args }).output();
  assert(output.success, new TextDecoder().decode(output.stderr));
  return new TextDecoder().decode(output.stdout);
}

/** The SAN entries of a PEM certificate, as the library reads them. */
function sans(pem: string): string[] {
  const san = new x509.X509Certificate(pem).getExtension(
    x509.SubjectAlternativeNameExtension,
  );
  return (san?.names.items ?? []).map((n) =>
    n.type === "ip" ? canonicalIp(n.value) ?? n.value : n.value
  );
}

const ECDSA = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** A self-signed certificate for `names`, valid between the two dates. */
async function makeCertificate(
  notBefore: Date,
  notAfter: Date,
): Promise<{ cert: string; key: string }> {
  const keys = await crypto.subtle.generateKey(ECDSA, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: "CN=test",
    notBefore,
    notAfter,
    signingAlgorithm: ECDSA,
    keys,
    extensions: [
      new x509.SubjectAlternativeNameExtension(
        certificateNames().map((n) =>
          canonicalIp(n) === null
            ? { type: "dns" as const, value: n }
            : { type: "ip" as const, value: n }
        ),
      ),
    ],
  });
  const key = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return {
    cert: cert.toString("pem"),
    key: x509.PemConverter.encode(key, "PRIVATE KEY"),
  };
}

/** Writes `files` as the saved certificate in `directory`. */
async function plant(
  directory: string,
  files: { cert: string; key: string },
): Promise<void> {
  await Deno.writeTextFile(`${directory}/server-cert.pem`, files.cert);
  await Deno.writeTextFile(`${directory}/server-key.pem`, files.key, {
    mode: 0o600,
  });
}

const DAY = 24 * 3600 * 1000;

Deno.test("serverCertificate: the first call makes a self-signed leaf for localhost, the host name, 127.0.0.1, ::1 and the LAN addresses", async () => {
  await using dir = await tempDir();
  const started = performance.now();
  const made = await serverCertificate({ directory: dir.path });
  console.log(`  generated in ${Math.round(performance.now() - started)} ms`);
  assertEquals(made.created, true);
  assertStringIncludes(made.reason ?? "", "there was none in");
  assertEquals(made.path, `${dir.path}/server-cert.pem`);
  assertEquals(await Deno.readTextFile(made.path), made.cert);
  const names = sans(made.cert);
  for (const name of ["localhost", "127.0.0.1", "::1", ...certificateNames()]) {
    assert(names.includes(name), `${name} missing from ${names}`);
  }
  const cert = new x509.X509Certificate(made.cert);
  assertEquals(cert.subject, cert.issuer); // self-signed
  assert(await cert.verify({ signatureOnly: true }), "signed by its own key");
  const constraints = cert.getExtension(x509.BasicConstraintsExtension);
  assertEquals(constraints?.ca, false);
  assertMatch(made.key, /^-----BEGIN PRIVATE KEY-----\n/);
});

Deno.test({
  name:
    "serverCertificate: openssl reads the certificate as a leaf (CA:FALSE) for server authentication with the expected names",
  ignore: !HAVE_OPENSSL,
  async fn() {
    await using dir = await tempDir();
    const made = await serverCertificate({ directory: dir.path });
    const text = await openssl(["x509", "-in", made.path, "-noout", "-text"]);
    assertMatch(text, /Basic Constraints: critical\s+CA:FALSE/);
    assertMatch(text, /Key Usage: critical\s+Digital Signature\n/);
    assertMatch(text, /Extended Key Usage:\s+TLS Web Server Authentication/);
    assertMatch(text, /Public Key Algorithm: id-ecPublicKey/);
    assertMatch(text, /NIST CURVE: P-256/);
    assertMatch(text, /Signature Algorithm: ecdsa-with-SHA256/);
    assertStringIncludes(text, "DNS:localhost");
    assertStringIncludes(text, `DNS:${Deno.hostname().toLowerCase()}`);
    assertStringIncludes(text, "IP Address:127.0.0.1");
    assertStringIncludes(text, "IP Address:0:0:0:0:0:0:0:1");
    // About a year, starting a day back (clocks of other machines).
    const [from, to] = [/Not Before: (.*)/, /Not After : (.*)/].map((r) =>
      Date.parse(text.match(r)![1])
    );
    assert(Math.abs(Date.now() - DAY - from) < 60_000, `not before ${from}`);
    assert(Math.abs(to - Date.now() - 365 * DAY) < 60_000, `not after ${to}`);
    // The key is the certificate's: openssl derives the same public key.
    const keyFile = `${dir.path}/server-key.pem`;
    assertEquals(
      await openssl(["pkey", "-in", keyFile, "-pubout"]),
      await openssl(["x509", "-in", made.path, "-noout", "-pubkey"]),
    );
  },
});

Deno.test({
  name: "fingerprint: the same as openssl x509 -noout -fingerprint -sha256",
  ignore: !HAVE_OPENSSL,
  async fn() {
    await using dir = await tempDir();
    const made = await serverCertificate({ directory: dir.path });
    const line = await openssl([
      "x509",
      "-in",
      made.path,
      "-noout",
      "-fingerprint",
      "-sha256",
    ]);
    assertEquals(line.trim(), `sha256 Fingerprint=${made.fingerprint}`);
    assertEquals(await fingerprint(made.cert), made.fingerprint);
    assertMatch(made.fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  },
});

Deno.test("formatFingerprint: upper-case hex pairs joined by colons", () => {
  assertEquals(formatFingerprint(Uint8Array.of(0, 10, 255)), "00:0A:FF");
});

Deno.test("serverCertificate: a second call reuses the saved certificate", async () => {
  await using dir = await tempDir();
  const first = await serverCertificate({ directory: dir.path });
  const started = performance.now();
  const second = await serverCertificate({ directory: dir.path });
  console.log(`  reused in ${Math.round(performance.now() - started)} ms`);
  assertEquals(second.created, false);
  assertEquals(second.reason, undefined);
  assertEquals(second.fingerprint, first.fingerprint);
  assertEquals([second.cert, second.key], [first.cert, first.key]);
});

Deno.test("serverCertificate: a name the saved one lacks makes a new one that covers it, saying which", async () => {
  await using dir = await tempDir();
  const first = await serverCertificate({
    directory: dir.path,
    hosts: ["chat.example"],
  });
  const second = await serverCertificate({
    directory: dir.path,
    hosts: ["10.20.30.40", "0.0.0.0"],
  });
  assertEquals(second.created, true);
  assertEquals(second.reason, "the saved one does not cover 10.20.30.40");
  assert(second.fingerprint !== first.fingerprint);
  const names = sans(second.cert);
  assert(names.includes("10.20.30.40"), `${names}`);
  assert(names.includes("chat.example"), "the earlier names are kept");
  assert(!names.includes("0.0.0.0"), "a wildcard is not a name");
  // Both names covered now: no new one on either side.
  for (const hosts of [["chat.example"], ["10.20.30.40"]]) {
    const again = await serverCertificate({ directory: dir.path, hosts });
    assertEquals(again.fingerprint, second.fingerprint);
  }
});

Deno.test("serverCertificate: a saved one within a week of its end is replaced, saying when it expires", async () => {
  await using dir = await tempDir();
  const expiring = await makeCertificate(
    new Date(Date.now() - 300 * DAY),
    new Date(Date.now() + 3 * DAY),
  );
  await plant(dir.path, expiring);
  const made = await serverCertificate({ directory: dir.path });
  assertEquals(made.created, true);
  assertMatch(made.reason ?? "", /^the saved one expires on \d{4}-\d\d-\d\d$/);
  assert(made.cert !== expiring.cert);
});

Deno.test("serverCertificate: an expired one is replaced", async () => {
  await using dir = await tempDir();
  await plant(
    dir.path,
    await makeCertificate(
      new Date(Date.now() - 400 * DAY),
      new Date(Date.now() - DAY),
    ),
  );
  const made = await serverCertificate({ directory: dir.path });
  assertMatch(made.reason ?? "", /^the saved one expired on /);
});

Deno.test("serverCertificate: a saved one that is still good is kept even if another program made it", async () => {
  await using dir = await tempDir();
  const good = await makeCertificate(
    new Date(Date.now() - DAY),
    new Date(Date.now() + 30 * DAY),
  );
  await plant(dir.path, good);
  const kept = await serverCertificate({ directory: dir.path });
  assertEquals(kept.created, false);
  assertEquals(kept.cert, good.cert);
});

Deno.test("serverCertificate: a saved key that does not belong to the saved certificate is replaced", async () => {
  await using dir = await tempDir();
  await using other = await tempDir();
  const first = await serverCertificate({ directory: dir.path });
  const stranger = await serverCertificate({ directory: other.path });
  await plant(dir.path, { cert: first.cert, key: stranger.key });
  const made = await serverCertificate({ directory: dir.path });
  assertEquals(
    made.reason,
    "the saved key does not belong to the saved certificate",
  );
});

Deno.test("serverCertificate: a damaged saved certificate is replaced, saying so", async () => {
  await using dir = await tempDir();
  const first = await serverCertificate({ directory: dir.path });
  await plant(dir.path, { cert: "garbage\n", key: first.key });
  const made = await serverCertificate({ directory: dir.path });
  assertMatch(made.reason ?? "", /^the saved one could not be read/);
});

Deno.test({
  name:
    "serverCertificate: the key file is mode 0600 and its directory 0700; a key opened to others is set back",
  ignore: WINDOWS,
  async fn() {
    await using dir = await tempDir();
    const directory = `${dir.path}/config/socket_programming`;
    await serverCertificate({ directory });
    const keyFile = `${directory}/server-key.pem`;
    assertEquals((await Deno.stat(keyFile)).mode! & 0o777, 0o600);
    assertEquals((await Deno.stat(directory)).mode! & 0o777, 0o700);
    assertEquals(
      (await Deno.stat(`${directory}/server-cert.pem`)).mode! & 0o777,
      0o644,
    );
    await Deno.chmod(keyFile, 0o644);
    assertEquals((await serverCertificate({ directory })).created, false);
    assertEquals((await Deno.stat(keyFile)).mode! & 0o777, 0o600);
    // No temporary files are left behind.
    const files = [];
    for await (const entry of Deno.readDir(directory)) files.push(entry.name);
    assertEquals(files.sort(), ["server-cert.pem", "server-key.pem"]);
  },
});

Deno.test("serverCertificate --cert/--key: the user's files are used as they are", async () => {
  await using dir = await tempDir();
  const made = await serverCertificate({ directory: dir.path });
  const given = await serverCertificate({
    certFile: made.path,
    keyFile: `${dir.path}/server-key.pem`,
  });
  assertEquals(given, {
    cert: made.cert,
    key: made.key,
    fingerprint: made.fingerprint,
    path: made.path,
    created: false,
  });
});

Deno.test("serverCertificate --cert/--key: a missing file says which and what to do", async () => {
  await using dir = await tempDir();
  const made = await serverCertificate({ directory: dir.path });
  const error = await assertRejects(
    () =>
      serverCertificate({ certFile: made.path, keyFile: "no/such/key.pem" }),
    CertificateError,
  );
  assertEquals(
    error.message,
    "the private key file no/such/key.pem does not exist. Check the path " +
      "given with --key, or leave --cert and --key out for a generated " +
      "certificate.",
  );
});

Deno.test("serverCertificate --cert/--key: files that are not PEM, or swapped, are explained", async () => {
  await using dir = await tempDir();
  const made = await serverCertificate({ directory: dir.path });
  const keyFile = `${dir.path}/server-key.pem`;
  const der = `${dir.path}/cert.der`;
  await Deno.writeFile(der, Uint8Array.of(0x30, 0x82, 0x01, 0x00));
  const notPem = await assertRejects(
    () => serverCertificate({ certFile: der, keyFile }),
    CertificateError,
  );
  assertStringIncludes(notPem.message, `${der} is not a PEM certificate`);
  assertStringIncludes(notPem.message, "openssl x509 -inform der");
  const swapped = await assertRejects(
    () => serverCertificate({ certFile: keyFile, keyFile: made.path }),
    CertificateError,
  );
  assertStringIncludes(swapped.message, "is not a PEM certificate");
  const keyIsCert = await assertRejects(
    () => serverCertificate({ certFile: made.path, keyFile: made.path }),
    CertificateError,
  );
  assertStringIncludes(keyIsCert.message, "are --cert and --key swapped?");
});

Deno.test("serverCertificate --cert/--key: an encrypted key, or only one of the two, is explained", async () => {
  await using dir = await tempDir();
  const made = await serverCertificate({ directory: dir.path });
  const encrypted = `${dir.path}/encrypted.pem`;
  await Deno.writeTextFile(
    encrypted,
    "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
  );
  const error = await assertRejects(
    () => serverCertificate({ certFile: made.path, keyFile: encrypted }),
    CertificateError,
  );
  assertStringIncludes(error.message, "is encrypted with a passphrase");
  const alone = await assertRejects(
    () => serverCertificate({ certFile: made.path }),
    CertificateError,
  );
  assertStringIncludes(alone.message, "--cert and --key go together");
});

Deno.test("configDirectory: $XDG_CONFIG_HOME first, else ~/.config", () => {
  if (WINDOWS) {
    assertMatch(configDirectory(), /\\socket_programming$/);
    return;
  }
  const saved = Deno.env.get("XDG_CONFIG_HOME");
  try {
    Deno.env.set("XDG_CONFIG_HOME", "/tmp/xdg");
    assertEquals(configDirectory(), "/tmp/xdg/socket_programming");
    Deno.env.delete("XDG_CONFIG_HOME");
    assertEquals(
      configDirectory(),
      `${Deno.env.get("HOME")}/.config/socket_programming`,
    );
  } finally {
    if (saved === undefined) Deno.env.delete("XDG_CONFIG_HOME");
    else Deno.env.set("XDG_CONFIG_HOME", saved);
  }
});

Deno.test("certificateNames: this machine's addresses, not loopback twice, link-local or wildcards", () => {
  const names = certificateNames(["0.0.0.0", "::", "Chat.Example", "[::1]"]);
  assertEquals(names.slice(0, 2), ["localhost", Deno.hostname().toLowerCase()]);
  assert(names.includes("127.0.0.1") && names.includes("::1"));
  assert(names.includes("chat.example"));
  assertEquals(names.filter((n) => n === "::1").length, 1);
  for (const i of Deno.networkInterfaces()) {
    const address = canonicalIp(i.address)!;
    if (address === "127.0.0.1" || address === "::1") continue; // named above
    const lan = !address.startsWith("127.") && !/^fe[89ab]/.test(address);
    assertEquals(names.includes(address), lan, address);
  }
  assert(!names.includes("0.0.0.0") && !names.includes("::"));
});

Deno.test("canonicalIp: one spelling per address (RFC 5952), null for names", () => {
  const cases: [string, string | null][] = [
    ["127.0.0.1", "127.0.0.1"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["[FE80::0:1%eth0]", "fe80::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["::ffff:10.0.0.1", "::ffff:a00:1"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["1:2:3:4:5:6:7", null],
    ["1::2::3", null],
    ["10.0.0.256", null],
    ["localhost", null],
  ];
  for (const [input, expected] of cases) {
    assertEquals(canonicalIp(input), expected, input);
  }
});
