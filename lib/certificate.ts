/**
 * The server's TLS certificate: the user's own PEM files (`--cert`,
 * `--key`), or a self-signed one made on first use and kept in a per-user
 * config directory, so its fingerprint stays the same from one start to the
 * next and clients can pin it.
 *
 * A generated certificate is a leaf (CA:FALSE: rustls refuses a CA
 * certificate as a server's own), ECDSA P-256, for `localhost`, this
 * machine's host name, `127.0.0.1`, `::1` and every LAN address the server
 * would print. It is made with WebCrypto and `@peculiar/x509`, not openssl,
 * which Windows users lack.
 *
 * Permissions: `--allow-read` and `--allow-write` for the config directory,
 * `--allow-env=XDG_CONFIG_HOME,HOME,APPDATA` and
 * `--allow-sys=hostname,networkInterfaces`.
 *
 * @example
 * ```ts ignore
 * import { serverCertificate } from "./certificate.ts";
 * const certificate = await serverCertificate();
 * console.log(`certificate ${certificate.path}`);
 * console.log(`SHA-256 fingerprint ${certificate.fingerprint}`);
 * ```
 *
 * @module
 */

import { createPrivateKey, X509Certificate } from "node:crypto";

/** Options of {@linkcode serverCertificate}. */
export interface ServerCertificateOptions {
  /** The user's PEM certificate file (`--cert`); needs `keyFile` too. */
  certFile?: string;
  /** The user's PEM private key file (`--key`); needs `certFile` too. */
  keyFile?: string;
  /**
   * Where a generated certificate is kept (default:
   * {@linkcode configDirectory}). Tests give a temporary directory.
   */
  directory?: string;
  /**
   * Names or addresses it must cover besides {@linkcode certificateNames}'
   * defaults, e.g. a `--host` the user gave. Wildcards (`0.0.0.0`, `::`)
   * are ignored.
   */
  hosts?: readonly string[];
}

/** A certificate and key for `Deno.listenTls`, with what to tell users. */
export interface ServerCertificate {
  /** The certificate chain, PEM. */
  cert: string;
  /** The private key, PEM. */
  key: string;
  /** SHA-256 of the leaf certificate, `AB:CD:…` as openssl prints it. */
  fingerprint: string;
  /** The certificate file: what a client copies for `--ca`. */
  path: string;
  /** Whether it was generated just now. */
  created: boolean;
  /** Why a new one was generated (only when `created`), for the log. */
  reason?: string;
}

/**
 * A certificate that cannot be read, saved or used; the message says what
 * and what to do.
 */
export class CertificateError extends Error {
  /** Always `"CertificateError"`. */
  override name = "CertificateError";
}

/** File names in the config directory. */
const CERT_FILE = "server-cert.pem";
const KEY_FILE = "server-key.pem";
const DAY_MS = 24 * 3600 * 1000;
/** A new certificate's validity. */
const VALID_DAYS = 365;
/** A saved one is replaced when it expires within this many days. */
const RENEW_DAYS = 7;
/** Back-dated by a day: another machine's clock may be a little behind. */
const BACKDATE_MS = DAY_MS;
/** Names kept from an earlier certificate, up to this many in all. */
const MAX_NAMES = 32;

const ECDSA_P256 = {
  name: "ECDSA",
  namedCurve: "P-256",
  hash: "SHA-256",
} as const;

/**
 * The server's certificate: with `certFile` and `keyFile`, those PEM files;
 * without, the generated one in `directory`, made on first use (or when the
 * saved one no longer covers {@linkcode certificateNames}, is near its end,
 * or unreadable: `reason` says which). Throws a
 * {@linkcode CertificateError} whose message says what to do.
 *
 * @example
 * ```ts ignore
 * import { serverCertificate } from "./certificate.ts";
 * const { cert, key, fingerprint, created, reason } = await serverCertificate({
 *   hosts: ["192.168.1.23"],
 * });
 * if (created) console.log(`new certificate: ${reason}`);
 * Deno.listenTls({ hostname: "0.0.0.0", port: 5003, cert, key }).close();
 * ```
 */
export async function serverCertificate(
  options: ServerCertificateOptions = {},
): Promise<ServerCertificate> {
  if (options.certFile !== undefined || options.keyFile !== undefined) {
    return await userCertificate(options.certFile, options.keyFile);
  }
  const directory = options.directory ?? configDirectory();
  const certPath = joinPath(directory, CERT_FILE);
  const keyPath = joinPath(directory, KEY_FILE);
  const needed = certificateNames(options.hosts);

  const saved = await readSaved(certPath, keyPath);
  const problem = saved.problem ??
    savedProblem(saved.cert, saved.key, needed);
  if (problem === undefined) {
    await restrictKeyFile(keyPath);
    return {
      cert: saved.cert,
      key: saved.key,
      fingerprint: await fingerprint(saved.cert),
      path: certPath,
      created: false,
    };
  }

  // Names of the earlier certificate are kept (up to MAX_NAMES): a laptop
  // that moves between two networks then settles on one certificate.
  const earlier = saved.problem === undefined ? earlierNames(saved.cert) : [];
  const names = [...new Set([...needed, ...earlier])].slice(
    0,
    Math.max(MAX_NAMES, needed.length),
  );
  const made = await generateCertificate(names);
  await save(directory, certPath, keyPath, made);
  return {
    ...made,
    fingerprint: await fingerprint(made.cert),
    path: certPath,
    created: true,
    reason: problem,
  };
}

/**
 * The SHA-256 fingerprint of the first certificate in `pem`, as
 * colon-separated upper-case hex pairs, exactly as
 * `openssl x509 -noout -fingerprint -sha256` prints it.
 *
 * @example
 * ```ts ignore
 * import { fingerprint } from "./certificate.ts";
 * await fingerprint(await Deno.readTextFile("server-cert.pem"));
 * // "86:62:1E:08:…:6F:82"
 * ```
 */
export async function fingerprint(pem: string): Promise<string> {
  const der = pemBlocks(pem, "CERTIFICATE")[0];
  if (der === undefined) {
    throw new CertificateError(
      "no PEM certificate (-----BEGIN CERTIFICATE-----) found to fingerprint.",
    );
  }
  return formatFingerprint(await crypto.subtle.digest("SHA-256", der));
}

/**
 * Bytes as colon-separated upper-case hex pairs: `0A:FF:…`.
 *
 * @example
 * ```ts
 * import { formatFingerprint } from "./certificate.ts";
 * formatFingerprint(Uint8Array.of(10, 255)); // "0A:FF"
 * ```
 */
export function formatFingerprint(digest: ArrayBuffer | Uint8Array): string {
  return Array.from(
    new Uint8Array(digest),
    (byte) => byte.toString(16).toUpperCase().padStart(2, "0"),
  ).join(":");
}

/**
 * Where a generated certificate is kept:
 * `$XDG_CONFIG_HOME/socket_programming` or `~/.config/socket_programming`
 * on Linux and macOS, `%APPDATA%\socket_programming` on Windows.
 *
 * @example
 * ```ts ignore
 * import { configDirectory } from "./certificate.ts";
 * configDirectory(); // "/home/ada/.config/socket_programming"
 * ```
 */
export function configDirectory(): string {
  const env = (name: string): string | undefined => {
    try {
      return Deno.env.get(name) || undefined;
    } catch (error) {
      throw new CertificateError(
        `cannot find the config directory: Deno may not read the ` +
          `environment variable ${name} (${errorText(error)}). Run it with ` +
          `--allow-env=XDG_CONFIG_HOME,HOME,APPDATA (or -A).`,
      );
    }
  };
  if (Deno.build.os === "windows") {
    const appData = env("APPDATA");
    if (appData) return `${appData}\\socket_programming`;
  } else {
    const xdg = env("XDG_CONFIG_HOME");
    if (xdg) return `${xdg}/socket_programming`;
    const home = env("HOME");
    if (home) return `${home}/.config/socket_programming`;
  }
  throw new CertificateError(
    `cannot find the config directory: neither ${
      Deno.build.os === "windows" ? "APPDATA" : "XDG_CONFIG_HOME nor HOME"
    } is set. Set it, or give your own certificate with --cert and --key.`,
  );
}

/**
 * The names and addresses a generated certificate covers: `localhost`, the
 * host name (and `NAME.local`), `127.0.0.1`, `::1`, each non-loopback
 * address of this machine (IPv4, and IPv6 but link-local), then `hosts`.
 * Addresses as {@linkcode canonicalIp} writes them, names in lower case.
 *
 * @example
 * ```ts ignore
 * import { certificateNames } from "./certificate.ts";
 * certificateNames();
 * // ["localhost", "laptop", "laptop.local", "127.0.0.1", "::1", "192.168.1.23"]
 * ```
 */
export function certificateNames(hosts: readonly string[] = []): string[] {
  const names = ["localhost"];
  const host = sys("hostname", () => Deno.hostname()).toLowerCase();
  if (isDnsName(host)) {
    names.push(host);
    if (!host.includes(".")) names.push(`${host}.local`);
  }
  names.push("127.0.0.1", "::1");
  for (const i of sys("networkInterfaces", () => Deno.networkInterfaces())) {
    const address = canonicalIp(i.address);
    if (
      address !== null && !address.startsWith("127.") &&
      address !== "::1" && !/^fe[89ab]/.test(address)
    ) names.push(address);
  }
  for (const given of hosts) {
    const address = canonicalIp(given);
    if (address === "0.0.0.0" || address === "::") continue;
    if (address !== null) names.push(address);
    else if (isDnsName(given.toLowerCase())) names.push(given.toLowerCase());
  }
  return [...new Set(names)];
}

/**
 * An IP address in one spelling per address, or `null` for anything else:
 * IPv4 dotted, IPv6 as RFC 5952 writes it (lower case, the longest run of
 * zero groups as `::`, no zone, no dotted tail).
 *
 * @example
 * ```ts
 * import { canonicalIp } from "./certificate.ts";
 * canonicalIp("::1"); // "::1"
 * canonicalIp("[FE80::0:1%eth0]"); // "fe80::1"
 * canonicalIp("localhost"); // null
 * ```
 */
export function canonicalIp(text: string): string | null {
  const ipv4 = text.match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/);
  if (ipv4) {
    const parts = ipv4.slice(1).map(Number);
    return parts.every((p) => p <= 255) ? parts.join(".") : null;
  }
  const groups = ipv6Groups(
    text.replace(/^\[(.*)\]$/, "$1").replace(/%.*$/, ""),
  );
  if (groups === null) return null;
  // RFC 5952: the longest run of two or more zero groups (the first of
  // equals) becomes "::".
  let [start, length] = [-1, 1];
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > length) [start, length] = [i, j - i];
  }
  const text16 = groups.map((g) => g.toString(16));
  return start < 0
    ? text16.join(":")
    : `${text16.slice(0, start).join(":")}::${
      text16.slice(start + length).join(":")
    }`;
}

/** The eight 16-bit groups of an IPv6 address, or `null`. */
function ipv6Groups(text: string): number[] | null {
  if (!text.includes(":") || !/^[0-9a-fA-F:.]+$/.test(text)) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const parse = (half: string): number[] | null => {
    if (half === "") return [];
    const parts = half.split(":");
    const groups: number[] = [];
    for (const [i, part] of parts.entries()) {
      if (i === parts.length - 1 && part.includes(".")) { // a dotted IPv4 tail
        const v4 = canonicalIp(part)?.split(".").map(Number);
        if (!v4) return null;
        groups.push(v4[0] * 256 + v4[1], v4[2] * 256 + v4[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
        groups.push(parseInt(part, 16));
      } else return null;
    }
    return groups;
  };
  const head = parse(halves[0]);
  const tail = halves.length === 2 ? parse(halves[1]) : [];
  if (head === null || tail === null) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  return [...head, ...Array<number>(missing).fill(0), ...tail];
}

/** Host names as certificates carry them: letters, digits, `-`, dots. */
function isDnsName(name: string): boolean {
  return name.length <= 253 &&
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/
      .test(name);
}

/** A `Deno.*` system query; a missing permission said with its flag. */
function sys<T>(what: "hostname" | "networkInterfaces", query: () => T): T {
  try {
    return query();
  } catch (error) {
    throw new CertificateError(
      `cannot list the names the certificate must cover: Deno may not ` +
        `read the ${what} (${errorText(error)}). Run it with ` +
        `--allow-sys=hostname,networkInterfaces (or -A), or give your own ` +
        `certificate with --cert and --key.`,
    );
  }
}

// ---------------------------------------------------------------------------
// The user's own files

async function userCertificate(
  certFile: string | undefined,
  keyFile: string | undefined,
): Promise<ServerCertificate> {
  if (certFile === undefined || keyFile === undefined) {
    throw new CertificateError(
      `--cert and --key go together: give both the certificate file and ` +
        `its private key file (or neither, for a generated certificate).`,
    );
  }
  const cert = await readUserFile(certFile, "certificate", "--cert");
  if (pemBlocks(cert, "CERTIFICATE").length === 0) {
    throw new CertificateError(
      `${certFile} is not a PEM certificate (no -----BEGIN CERTIFICATE----- ` +
        `line). Give a PEM file with --cert; a binary (DER) one converts with ` +
        `\`openssl x509 -inform der -in ${certFile} -out cert.pem\`.`,
    );
  }
  const key = await readUserFile(keyFile, "private key", "--key");
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(key)) {
    throw new CertificateError(
      `${keyFile} is encrypted with a passphrase, which the server cannot ` +
        `ask for. Write an unencrypted copy (\`openssl pkey -in ${keyFile} ` +
        `-out key.pem\`), keep it private (chmod 600), and give that with --key.`,
    );
  }
  if (!/-----BEGIN (EC |RSA )?PRIVATE KEY-----/.test(key)) {
    throw new CertificateError(
      `${keyFile} is not a PEM private key (no -----BEGIN PRIVATE KEY----- ` +
        `line${
          /-----BEGIN CERTIFICATE-----/.test(key)
            ? "; it holds a certificate: are --cert and --key swapped?"
            : ""
        }). Give the certificate's private key, in PEM, with --key.`,
    );
  }
  return {
    cert,
    key,
    fingerprint: await fingerprint(cert),
    path: certFile,
    created: false,
  };
}

async function readUserFile(
  path: string,
  what: string,
  flag: string,
): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new CertificateError(
        `the ${what} file ${path} does not exist. Check the path given ` +
          `with ${flag}, or leave --cert and --key out for a generated certificate.`,
      );
    }
    throw new CertificateError(
      `cannot read the ${what} file ${path}: ${
        explainFileError(error)
      } Check the path given with ${flag}.`,
    );
  }
}

// ---------------------------------------------------------------------------
// The generated certificate

interface Saved {
  cert: string;
  key: string;
  /** Why it cannot be used, if it cannot. */
  problem?: string;
}

async function readSaved(certPath: string, keyPath: string): Promise<Saved> {
  try {
    return {
      cert: await Deno.readTextFile(certPath),
      key: await Deno.readTextFile(keyPath),
    };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return { cert: "", key: "", problem: `there was none in ${certPath}` };
    }
    throw new CertificateError(
      `cannot read the saved certificate ${certPath}: ${
        explainFileError(error)
      } Or give your own with --cert and --key.`,
    );
  }
}

/** Why the saved certificate cannot be reused, or `undefined` if it can. */
function savedProblem(
  certPem: string,
  keyPem: string,
  needed: readonly string[],
): string | undefined {
  // node:crypto reads it in a few milliseconds; @peculiar/x509 takes
  // ~170 ms to load, so it is loaded only to make a certificate.
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (error) {
    return `the saved one could not be read (${errorText(error)})`;
  }
  const [from, to] = [new Date(cert.validFrom), new Date(cert.validTo)];
  const now = Date.now();
  if (from.getTime() > now) {
    return `the saved one is only valid from ${from.toISOString()}` +
      ` (is this machine's clock right?)`;
  }
  if (to.getTime() - now < RENEW_DAYS * DAY_MS) {
    return `the saved one ${to.getTime() < now ? "expired" : "expires"} on ${
      to.toISOString().slice(0, 10)
    }`;
  }
  if (!keyMatches(cert, keyPem)) {
    return "the saved key does not belong to the saved certificate";
  }
  const covered = new Set(namesOf(cert));
  const missing = needed.filter((name) => !covered.has(name));
  if (missing.length > 0) {
    return `the saved one does not cover ${missing.join(", ")}`;
  }
  return undefined;
}

/** The names of a saved certificate, or none if it cannot be read. */
function earlierNames(certPem: string): string[] {
  try {
    return namesOf(new X509Certificate(certPem));
  } catch {
    return [];
  }
}

/**
 * The DNS names and IP addresses (canonical) a certificate is for, from
 * node's text of them: `DNS:localhost, IP Address:::1`.
 */
function namesOf(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? "").split(", ").flatMap((entry) => {
    const [, type, value] = entry.match(/^(DNS|IP Address):(.*)$/) ?? [];
    if (type === "DNS") return [value.toLowerCase()];
    if (type === "IP Address") return [canonicalIp(value) ?? value];
    return [];
  });
}

/** Whether `keyPem` is the private key of `cert`. */
function keyMatches(cert: X509Certificate, keyPem: string): boolean {
  try {
    return cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/** A new self-signed leaf certificate for `names`, and its key. */
async function generateCertificate(
  names: readonly string[],
): Promise<{ cert: string; key: string }> {
  const x509 = await loadX509();
  const keys = await crypto.subtle.generateKey(ECDSA_P256, true, [
    "sign",
    "verify",
  ]);
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0] &= 0x7f; // a positive number
  const now = Date.now();
  const host = names.find((n) => n !== "localhost" && canonicalIp(n) === null);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: formatFingerprint(serial).replaceAll(":", ""),
    name: `CN=socket_programming${host ? ` on ${host}` : ""}`,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + VALID_DAYS * DAY_MS),
    signingAlgorithm: ECDSA_P256,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        names.map((n) =>
          canonicalIp(n) === null
            ? { type: "dns" as const, value: n }
            : { type: "ip" as const, value: n }
        ),
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return {
    cert: cert.toString("pem") + "\n",
    key: x509.PemConverter.encode(pkcs8, "PRIVATE KEY") + "\n",
  };
}

/** Writes key (mode 0600) then certificate, each by rename: never half a file. */
async function save(
  directory: string,
  certPath: string,
  keyPath: string,
  made: { cert: string; key: string },
): Promise<void> {
  try {
    await Deno.mkdir(directory, { recursive: true, mode: 0o700 });
    await writeByRename(keyPath, made.key, 0o600);
    await writeByRename(certPath, made.cert, 0o644);
  } catch (error) {
    throw new CertificateError(
      `cannot save the new certificate in ${directory}: ${
        explainFileError(error)
      } Or give your own with --cert and --key.`,
    );
  }
}

async function writeByRename(
  path: string,
  text: string,
  mode: number,
): Promise<void> {
  const temporary = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    await Deno.writeTextFile(temporary, text, { mode, createNew: true });
    await Deno.rename(temporary, path);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
}

/** Takes group and other permissions off a saved key that has them. */
async function restrictKeyFile(keyPath: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  const { mode } = await Deno.stat(keyPath);
  if (mode !== null && (mode & 0o077) !== 0) {
    await Deno.chmod(keyPath, mode & 0o700);
  }
}

// ---------------------------------------------------------------------------
// Small helpers

type X509Module = typeof import("@peculiar/x509");
let x509Module: Promise<X509Module> | undefined;

/**
 * `@peculiar/x509`, loaded only to make a certificate (it takes about
 * 170 ms to load; reading one uses node:crypto). `reflect-metadata` must
 * be loaded before it.
 */
function loadX509(): Promise<X509Module> {
  return x509Module ??= import("reflect-metadata").then(() =>
    import("@peculiar/x509")
  );
}

/** The DER bytes of each `-----BEGIN LABEL-----` block in `pem`. */
function pemBlocks(pem: string, label: string): Uint8Array<ArrayBuffer>[] {
  const pattern = new RegExp(
    `-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`,
    "g",
  );
  const blocks: Uint8Array<ArrayBuffer>[] = [];
  for (const match of pem.matchAll(pattern)) {
    try {
      blocks.push(
        Uint8Array.from(
          atob(match[1].replace(/\s+/g, "")),
          (c) => c.charCodeAt(0),
        ),
      );
    } catch {
      // not base64 after all: not a block
    }
  }
  return blocks;
}

function explainFileError(error: unknown): string {
  if (error instanceof Deno.errors.NotCapable) {
    return `Deno was not given permission (${
      errorText(error)
    }). Run it with --allow-read and --allow-write for that place (or -A).`;
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return `permission denied by the operating system (${errorText(error)}).`;
  }
  return `${errorText(error)}.`;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Joins a directory and a file name with this system's separator. */
function joinPath(directory: string, name: string): string {
  const separator = Deno.build.os === "windows" ? "\\" : "/";
  return directory.endsWith(separator) || directory.endsWith("/")
    ? directory + name
    : directory + separator + name;
}
