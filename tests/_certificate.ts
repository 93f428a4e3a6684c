/**
 * A throwaway certificate for tests of TLS servers: `bench/make_certificate.ts`
 * in a temporary folder (a self-signed leaf for 127.0.0.1 among others).
 *
 * @module
 */

import { benchCertificate, type CertificateFiles } from "../bench/run.ts";

/** A temporary folder with a test certificate, removed on dispose. */
export async function certificateDir(): Promise<
  CertificateFiles & AsyncDisposable & { dir: string }
> {
  const dir = await Deno.makeTempDir();
  return {
    dir,
    ...await benchCertificate(dir),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** `--tls --cert FILE --key FILE` for `files`. */
export function tlsFlags(files: CertificateFiles): string[] {
  return ["--tls", "--cert", files.cert, "--key", files.key];
}
