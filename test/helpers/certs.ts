import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Certificates made with the openssl command line for a test: a root (what clients trust), an
 * intermediate, and leaf certificates for 127.0.0.1 / localhost signed by the intermediate, as a
 * public CA issues them. Nothing here disables verification: clients are given the root.
 */
export interface Pki {
  readonly dir: string;
  /** PEM of the root; pass as `ca` or NODE_EXTRA_CA_CERTS. */
  readonly rootPem: string;
  readonly rootFile: string;
  /** The intermediate alone (for tlsCa). */
  readonly intermediateFile: string;
  /** A new leaf certificate and key (an encrypted key when `passphrase` is given). */
  issue(name: string, passphrase?: string): Leaf;
}

export interface Leaf {
  readonly certFile: string;
  readonly keyFile: string;
  /** SHA-256 fingerprint, as tls.TLSSocket#getPeerCertificate().fingerprint256 gives it. */
  readonly fingerprint: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export function makePki(dir: string): Pki {
  openssl(['req', '-x509', ...EC, '-keyout', 'root.key', '-out', 'root.pem', '-days', '2', '-subj', '/CN=Switchboard Test Root'], dir);
  writeFileSync(join(dir, 'ca.ext'), '[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  writeFileSync(join(dir, 'leaf.ext'), '[v3]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(['req', ...EC, '-keyout', 'int.key', '-out', 'int.csr', '-subj', '/CN=Switchboard Test Intermediate'], dir);
  openssl(['x509', '-req', '-in', 'int.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-CAcreateserial', '-days', '2', '-out', 'int.pem', '-extfile', 'ca.ext', '-extensions', 'v3'], dir);
  return {
    dir,
    rootPem: readFileSync(join(dir, 'root.pem'), 'utf8'),
    rootFile: join(dir, 'root.pem'),
    intermediateFile: join(dir, 'int.pem'),
    issue(name, passphrase) {
      openssl(['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'int.pem', '-CAkey', 'int.key', '-CAcreateserial', '-days', '2', '-out', `${name}.pem`, '-extfile', 'leaf.ext', '-extensions', 'v3'], dir);
      if (passphrase !== undefined) {
        openssl(['pkey', '-in', `${name}.key`, '-aes256', '-passout', `pass:${passphrase}`, '-out', `${name}.enc.key`], dir);
      }
      const certFile = join(dir, `${name}.pem`);
      return {
        certFile,
        keyFile: join(dir, passphrase === undefined ? `${name}.key` : `${name}.enc.key`),
        fingerprint: new X509Certificate(readFileSync(certFile)).fingerprint256,
      };
    },
  };
}
