/**
 * The TLS flags of the chat servers and clients, and what a server says
 * about its certificate when it starts.
 *
 * A server started with `--tls` serves the same bytes inside TLS, with the
 * certificate given (`--cert`, `--key`) or one made for it and kept (see
 * `certificate.ts`). It prints the certificate's SHA-256 fingerprint: a
 * client checks it with `--fingerprint`, or with `--ca` and a copy of the
 * certificate file, so nobody between the two can read or change the chat.
 *
 * @example
 * ```ts ignore
 * import { serverTlsOrExit, TLS_SERVER_FLAGS } from "./tls_options.ts";
 * const certificate = await serverTlsOrExit({ tls: true, host: "0.0.0.0" });
 * ```
 *
 * @module
 */

import {
  CertificateError,
  type ServerCertificate,
  serverCertificate,
} from "./certificate.ts";
import { exitWithError, explainNetError } from "./errors.ts";
import { log } from "./log.ts";
import type { Endpoint } from "./net.ts";
import { listenTls, parseFingerprint } from "./tls.ts";

/**
 * `--tls`, `--cert FILE`, `--key FILE`, for a server's flags.
 *
 * @example
 * ```ts
 * import { TLS_SERVER_FLAGS } from "./tls_options.ts";
 * const FLAGS = { ...TLS_SERVER_FLAGS } as const;
 * ```
 */
export const TLS_SERVER_FLAGS = {
  tls: {
    type: "boolean",
    description: "speak TLS (a certificate is made and kept for you, or " +
      "give --cert and --key); prints its fingerprint for the clients",
  },
  cert: {
    type: "string",
    description: "with --tls: the certificate to serve (PEM)",
    placeholder: "FILE",
  },
  key: {
    type: "string",
    description: "with --tls: its private key (PEM)",
    placeholder: "FILE",
  },
} as const;

/**
 * `--tls`, `--ca FILE`, `--fingerprint SHA256`, `--insecure`, for a
 * client's flags.
 *
 * @example
 * ```ts
 * import { TLS_CLIENT_FLAGS } from "./tls_options.ts";
 * const FLAGS = { ...TLS_CLIENT_FLAGS } as const;
 * ```
 */
export const TLS_CLIENT_FLAGS = {
  tls: {
    type: "boolean",
    description: "speak TLS; the server's certificate is verified against " +
      "the trusted roots, or --ca, or --fingerprint",
  },
  ca: {
    type: "string",
    description: "with --tls: trust this certificate (a copy of the " +
      "server's, as it printed its path)",
    placeholder: "FILE",
  },
  fingerprint: {
    type: "string",
    description: "with --tls: trust exactly the certificate with this " +
      "SHA-256 fingerprint (as the server printed it)",
    placeholder: "SHA256",
  },
  insecure: {
    type: "boolean",
    description: "with --tls: do not verify the server at all (anyone on " +
      "the network could read and change the chat)",
  },
} as const;

/**
 * What is wrong with a client's TLS flags on the command line (`null`:
 * nothing), for `CliSpec.check`: a bad `--fingerprint` is a usage error.
 *
 * @example
 * ```ts
 * import { tlsClientProblem } from "./tls_options.ts";
 * tlsClientProblem({ fingerprint: "8C:41" }); // "--fingerprint \"8C:41\" is not a SHA-256 fingerprint: …"
 * tlsClientProblem({}); // null
 * ```
 */
export function tlsClientProblem(
  options: { fingerprint?: string },
): string | null {
  if (options.fingerprint === undefined) return null;
  try {
    parseFingerprint(options.fingerprint);
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

/** What {@linkcode serverTlsOrExit} reads of a server's options. */
export interface ServerTlsOptions {
  /** `--tls`. */
  tls: boolean;
  /** `--cert`. */
  cert?: string;
  /** `--key`. */
  key?: string;
  /** `--host`: covered by a made certificate too. */
  host: string;
}

/**
 * With `--tls`, the certificate to serve, said in the log (its file, its
 * fingerprint, how clients connect); without, `undefined`. Exits with one
 * sentence when the files given cannot be used, or `--cert`/`--key` came
 * without `--tls`.
 *
 * @example
 * ```ts ignore
 * import { serverTlsOrExit } from "./tls_options.ts";
 * const certificate = await serverTlsOrExit(options);
 * ```
 */
export async function serverTlsOrExit(
  options: ServerTlsOptions,
): Promise<ServerCertificate | undefined> {
  if (!options.tls) {
    if (options.cert !== undefined || options.key !== undefined) {
      exitWithError("--cert and --key are for TLS: add --tls.", 2);
    }
    return undefined;
  }
  let certificate: ServerCertificate;
  try {
    certificate = await serverCertificate({
      certFile: options.cert,
      keyFile: options.key,
      hosts: [options.host],
    });
  } catch (error) {
    if (error instanceof CertificateError) exitWithError(error.message);
    throw error;
  }
  if (certificate.created) {
    log(`TLS: made a new certificate (${certificate.reason})`);
  }
  log(`TLS: certificate ${certificate.path}`);
  log(`TLS: SHA-256 fingerprint ${certificate.fingerprint}`);
  log(
    `TLS: clients join with --tls --fingerprint ${certificate.fingerprint}`,
  );
  return certificate;
}

/**
 * Warns, on stderr, that a client does not verify the server.
 *
 * @example
 * ```ts ignore
 * import { warnInsecure } from "./tls_options.ts";
 * if (options.insecure) warnInsecure();
 * ```
 */
export function warnInsecure(): void {
  console.error(
    "-- warning: --insecure: this server is not verified; anyone on the " +
      "network between us can read and change this chat.",
  );
}

/**
 * `socket() → bind() → listen()` for TLS: as `listenOrExit` in `net.ts`
 * (no `listening on` line: the caller says it), serving `certificate`.
 *
 * @example
 * ```ts ignore
 * import { listenTlsOrExit, serverTlsOrExit } from "./tls_options.ts";
 * const certificate = (await serverTlsOrExit(options))!;
 * const listener = listenTlsOrExit(options, certificate);
 * ```
 */
export function listenTlsOrExit(
  endpoint: Endpoint,
  certificate: ServerCertificate,
  options: { reusePort?: boolean } = {},
): Deno.TlsListener {
  try {
    return listenTls(endpoint, certificate, options);
  } catch (error) {
    if (error instanceof CertificateError) exitWithError(error.message);
    exitWithError(explainNetError(error, { action: "listen", ...endpoint }));
  }
}
