/**
 * Makes the bench's test certificate: `lib/certificate.ts`'s self-signed
 * leaf (ECDSA P-256, for 127.0.0.1 among others) and its key, in the
 * folder given, and prints their paths as JSON. `bench/run.ts` runs it as
 * a child process: listing the names a certificate covers needs
 * `--allow-sys`, which the bench itself does without.
 *
 *   deno run --allow-read=DIR --allow-write=DIR \
 *     --allow-sys=hostname,networkInterfaces bench/make_certificate.ts DIR
 *   # {"cert":"DIR/server-cert.pem","key":"DIR/server-key.pem"}
 *
 * @module
 */

import { CertificateError, serverCertificate } from "../lib/certificate.ts";
import { exitWithError } from "../lib/errors.ts";

const [directory] = Deno.args;
if (directory === undefined) {
  exitWithError("give the folder to make the certificate in.", 2);
}
const certificate = await serverCertificate({ directory }).catch((error) => {
  if (error instanceof CertificateError) exitWithError(error.message);
  throw error;
});
// the key sits beside the certificate, as serverCertificate saves them
const key = certificate.path.replace(/server-cert\.pem$/, "server-key.pem");
console.log(JSON.stringify({ cert: certificate.path, key }));
