import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throw-away TLS certificate for 127.0.0.1 (P-256, valid one day), made with the openssl CLI
 * because node:crypto cannot issue X.509 certificates. The emulators speak HTTPS because MSAL
 * refuses an http authority and the Key Vault client should run exactly as in production; the
 * provider trusts this certificate through its deployment option `ca`.
 */
export interface TestCertificate {
  readonly cert: string;
  readonly key: string;
}

export function makeSelfSignedCert(): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'ks-azure-tls-'));
  try {
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
      { stdio: 'ignore' },
    );
    return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
