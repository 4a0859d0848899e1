import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeystrataError } from '../../src/errors.js';
import { CmkProviderError, type CmkFailureReason, type CmkProvider } from '../../src/providers/provider.js';
import { vaultTransitProviderFactory } from '../../src/providers/vault-transit/vault-transit-provider.js';
import { VaultTransitEmulator } from '../emulators/vault-transit/vault-transit-emulator.js';
import { keystrataPolicy } from '../emulators/vault-transit/vault-acl.js';
import { CONTRACT_IDENTITY, providerContract } from './contract/provider-contract.js';

/**
 * The Vault transit provider against the transit emulator (test/emulators/vault-transit), with the
 * least-privilege policy docs/byok.md gives customers: update on encrypt/decrypt, read on the key.
 * Key administration (rotate, delete) goes over the emulator's HTTP API with the root token, as an
 * operator would with the vault CLI. After the contract, the cases only transit has: retired and
 * trimmed versions, a key re-created under its name, key types that cannot bind associated data,
 * tokens that expire or may not look themselves up, a sealed Vault, namespaces, a private CA.
 */

const KEY = 'keystrata-cmk';
const OTHER_KEY = 'other-cmk';
const MISSING_KEY = 'missing-cmk';

const NO_SUCH_STATE = 'Vault transit keys have no';

providerContract({
  name: 'vault-transit',
  notApplicable: {
    disableKey: `${NO_SUCH_STATE} disabled state (min_decryption_version cannot exceed latest_version, so encryption never stops); the reversible cut-offs are the policy (denyPermission) and the token (badCredentials). A version retired by min_decryption_version is reported as key_disabled (provider test)`,
    enableKey: `${NO_SUCH_STATE} disabled state`,
    scheduleDeletion: `${NO_SUCH_STATE} scheduled deletion: DELETE (allowed by deletion_allowed=true) removes the key at once; see purgeKey`,
    cancelDeletion: `${NO_SUCH_STATE} scheduled deletion to cancel`,
  },
  async setup() {
    const vault = await VaultTransitEmulator.start();
    for (const name of [KEY, OTHER_KEY]) {
      const created = await vault.admin('POST', `transit/keys/${name}`, { type: 'aes256-gcm96' });
      if (created.status !== 200) throw new Error(`creating ${name}: HTTP ${created.status}`);
    }
    const policy = keystrataPolicy(KEY, OTHER_KEY, MISSING_KEY);
    vault.acl.writePolicy('keystrata', policy);
    const token = vault.acl.createToken({ policies: ['keystrata'] });
    const config = { address: vault.address, token, keyName: KEY };
    const latest = async (): Promise<string> => {
      const read = await vault.admin('GET', `transit/keys/${KEY}`);
      return String((read.body as { data: { latest_version: number } }).data.latest_version);
    };
    return {
      factory: vaultTransitProviderFactory,
      config,
      otherKeyConfig: { ...config, keyName: OTHER_KEY },
      badCredentialsConfig: { ...config, token: 'hvs.CAESIThisTokenWasNeverIssuedByThisVault' },
      missingKeyConfig: { ...config, keyName: MISSING_KEY },
      serviceCalls: () => vault.calls,
      controls: {
        // `vault policy write keystrata -` with nothing in it, then the original back.
        async denyPermission() {
          vault.acl.writePolicy('keystrata', {});
        },
        async restorePermission() {
          vault.acl.writePolicy('keystrata', policy);
        },
        async throttle(on) {
          vault.throttle(on);
        },
        async slow(ms) {
          vault.slow(ms);
        },
        async unreachable(on) {
          await vault.unreachable(on);
        },
        async rotateKey() {
          const rotated = await vault.admin('POST', `transit/keys/${KEY}/rotate`);
          if (rotated.status !== 200) throw new Error(`rotate: HTTP ${rotated.status}`);
          return latest();
        },
        // Transit's only destruction: allow deletion, then delete.
        async purgeKey() {
          await vault.admin('POST', `transit/keys/${KEY}/config`, { deletion_allowed: true });
          const deleted = await vault.admin('DELETE', `transit/keys/${KEY}`);
          if (deleted.status !== 204) throw new Error(`delete: HTTP ${deleted.status}`);
        },
      },
      async reset() {
        vault.throttle(false);
        vault.slow(0);
        await vault.unreachable(false);
        vault.acl.writePolicy('keystrata', policy);
      },
      async teardown() {
        await vault.close();
      },
    };
  },
});

/** The provider's failure for `call`, checked to be a CmkProviderError with `reason`. */
async function failure(call: Promise<unknown>, reason: CmkFailureReason): Promise<CmkProviderError> {
  const error = await call.then(
    () => new Error('expected a failure'),
    (e: unknown) => e,
  );
  expect(error, String(error)).toBeInstanceOf(CmkProviderError);
  expect((error as CmkProviderError).reason, (error as Error).message).toBe(reason);
  return error as CmkProviderError;
}

describe('vault-transit: what only transit has', () => {
  let vault: VaultTransitEmulator;
  let token: string;
  const aad = Buffer.from('keystrata ek\0env\0ek-id\0cmk-id');
  const opened: CmkProvider[] = [];
  const messages: string[] = [];
  const open = (config: Record<string, unknown>): CmkProvider => {
    const provider = vaultTransitProviderFactory.open(config, CONTRACT_IDENTITY);
    opened.push(provider);
    return provider;
  };
  const config = (keyName: string, extra: Record<string, unknown> = {}) => ({ address: vault.address, token, keyName, ...extra });
  const admin = async (method: string, path: string, body?: unknown) => {
    const answer = await vault.admin(method, path, body);
    if (answer.status >= 300) throw new Error(`${method} ${path}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
  };
  const newKey = async (name: string, body: Record<string, unknown> = { type: 'aes256-gcm96' }) => {
    await admin('POST', `transit/keys/${name}`, body);
    vault.acl.writePolicy(name, keystrataPolicy(name));
    return name;
  };
  const record = <T extends Error>(error: T): T => {
    messages.push(error.message);
    return error;
  };

  beforeAll(async () => {
    vault = await VaultTransitEmulator.start({ legacyTokenErrors: true });
    token = vault.acl.createToken({ policies: ['key-a', 'key-b', 'key-rsa', 'key-derived', 'key-gone', 'key-retired'] });
  });
  afterAll(async () => {
    await Promise.all(opened.map((p) => p.close()));
    await vault.close();
  });

  it('a version below min_decryption_version is key_disabled until the floor is lowered; a trimmed version is key_destroyed', async () => {
    const p = open(config(await newKey('key-retired')));
    const key = randomBytes(32);
    const v1 = await p.wrap(key, aad);
    await admin('POST', 'transit/keys/key-retired/rotate');
    await admin('POST', 'transit/keys/key-retired/config', { min_decryption_version: 2 });
    const retired = record(await failure(p.unwrap(v1.ciphertext, aad, v1.keyVersion), 'key_disabled'));
    expect(retired.message).toContain('min_decryption_version');
    expect((await p.describe()).state).toBe('healthy');
    await admin('POST', 'transit/keys/key-retired/config', { min_decryption_version: 1 });
    expect(await p.unwrap(v1.ciphertext, aad, v1.keyVersion)).toEqual(key);
    await admin('POST', 'transit/keys/key-retired/config', { min_decryption_version: 2 });
    await admin('POST', 'transit/keys/key-retired/trim', { min_available_version: 2 });
    record(await failure(p.unwrap(v1.ciphertext, aad, v1.keyVersion), 'key_destroyed'));
  });

  it('a key deleted and re-created under its name: versions it never had are key_destroyed, the rest do not open', async () => {
    const p = open(config(await newKey('key-gone')));
    const v1 = await p.wrap(randomBytes(32), aad);
    await admin('POST', 'transit/keys/key-gone/rotate');
    const v2 = await p.wrap(randomBytes(32), aad);
    await admin('POST', 'transit/keys/key-gone/config', { deletion_allowed: true });
    await admin('DELETE', 'transit/keys/key-gone');
    record(await failure(p.unwrap(v1.ciphertext, aad, v1.keyVersion), 'key_destroyed'));
    await newKey('key-gone');
    record(await failure(p.unwrap(v2.ciphertext, aad, v2.keyVersion), 'key_destroyed'));
    // Version 1 exists again, as another key: indistinguishable from a swapped ciphertext.
    record(await failure(p.unwrap(v1.ciphertext, aad, v1.keyVersion), 'invalid_ciphertext'));
  });

  it('a key type that cannot bind associated data, or a derived key, is refused at test-and-save with the reason', async () => {
    for (const [name, body, words] of [
      ['key-rsa', { type: 'rsa-2048' }, 'rsa-2048'],
      ['key-derived', { type: 'aes256-gcm96', derived: true }, 'derived'],
    ] as const) {
      const p = open(config(await newKey(name, body)));
      const error = await p.wrap(randomBytes(32), aad).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KeystrataError);
      expect((error as KeystrataError).code).toBe('cmk_test_failed');
      expect((error as KeystrataError).message).toMatch(name === 'key-rsa' ? /cannot bind associated data/ : /derived/);
      expect((await p.describe()).detail).toContain(words === 'rsa-2048' ? 'type rsa-2048; this type cannot bind' : 'a derived key');
    }
  });

  it('a stored key version that disagrees with the ciphertext, or a blob that is no transit ciphertext, is invalid_ciphertext without a call', async () => {
    const p = open(config(await newKey('key-a')));
    const wrapped = await p.wrap(randomBytes(32), aad);
    const before = vault.calls;
    await failure(p.unwrap(wrapped.ciphertext, aad, '7'), 'invalid_ciphertext');
    await failure(p.unwrap(randomBytes(60), aad, wrapped.keyVersion), 'invalid_ciphertext');
    expect(vault.calls).toBe(before);
  });

  it('an expired token (Vault < 1.17 says only "permission denied") is credentials_rejected, told apart by lookup-self; describe says credentials_expired', async () => {
    const shortLived = vault.acl.createToken({ policies: ['key-a'], ttlSeconds: 0.2 });
    const p = open({ ...config('key-a'), token: shortLived });
    const wrapped = await p.wrap(randomBytes(32), aad);
    await new Promise((resolve) => setTimeout(resolve, 300));
    record(await failure(p.wrap(randomBytes(32), aad), 'credentials_rejected'));
    record(await failure(p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion), 'credentials_rejected'));
    expect((await p.describe()).state).toBe('credentials_expired');
  });

  it('describe warns about a token expiring within 30 days and a key whose deletion is allowed', async () => {
    const expiring = vault.acl.createToken({ policies: ['key-b'], ttlSeconds: 86_400 });
    await newKey('key-b');
    await admin('POST', 'transit/keys/key-b/config', { deletion_allowed: true });
    const description = await open({ ...config('key-b'), token: expiring }).describe();
    expect(description.state).toBe('healthy');
    expect(description.currentVersion).toBe('1');
    expect(description.detail).toContain('deletion_allowed is true');
    expect(description.detail).toContain('token expires at');
  });

  it('a policy without read on the key still wraps and unwraps; describe is permission_denied', async () => {
    vault.acl.writePolicy('no-read', { 'transit/encrypt/key-a': ['update'], 'transit/decrypt/key-a': ['update'] });
    const p = open({ ...config('key-a'), token: vault.acl.createToken({ policies: ['no-read'] }) });
    const wrapped = await p.wrap(randomBytes(32), aad);
    expect((await p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion)).length).toBe(32);
    record(await failure(p.describe(), 'permission_denied'));
  });

  it('a sealed Vault is unreachable for every call', async () => {
    const p = open(config('key-a'));
    vault.seal(true);
    try {
      record(await failure(p.wrap(randomBytes(32), aad), 'unreachable'));
      record(await failure(p.describe(), 'unreachable'));
    } finally {
      vault.seal(false);
    }
  });

  it('the config: http only to loopback, a PEM caCert, a mount path; the token never shows in a message', async () => {
    const base = { token, keyName: 'key-a' };
    expect(() => vaultTransitProviderFactory.open({ ...base, address: 'http://vault.example.com:8200' }, CONTRACT_IDENTITY)).toThrow(/https is required/);
    expect(() => vaultTransitProviderFactory.open({ ...base, address: 'https://vault.example.com', caCert: '-----BEGIN CERTIFICATE-----\nnot a cert' }, CONTRACT_IDENTITY)).toThrow(/caCert/);
    expect(() => vaultTransitProviderFactory.open({ ...base, address: 'https://vault.example.com', mount: '../sys' }, CONTRACT_IDENTITY)).toThrow(KeystrataError);
    expect(() => vaultTransitProviderFactory.open({ ...base, address: 'https://vault.example.com', keyName: 'a/b' }, CONTRACT_IDENTITY)).toThrow(KeystrataError);
    await vaultTransitProviderFactory.open({ ...base, address: 'https://vault.example.com:8200/', namespace: 'admin/team-a' }, CONTRACT_IDENTITY).close();
    expect(vaultTransitProviderFactory.secretFields).toEqual(['token']);
    expect(messages.length).toBeGreaterThan(5);
    for (const message of messages) expect(message).not.toContain(token);
  });
});

describe('vault-transit: mount, namespace and TLS with a private CA', () => {
  let vault: VaultTransitEmulator;
  let dir: string;
  let cert: string;
  const aad = Buffer.from('aad');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vault-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=vault-test', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    vault = await VaultTransitEmulator.start({ mount: 'kms/transit', namespace: 'admin/team-a', tls: { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert } });
    const created = await vault.admin('POST', 'kms/transit/keys/k', { type: 'aes256-gcm96' });
    expect(created.status).toBe(200);
  });
  afterAll(async () => {
    await vault?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('wraps through HTTPS with caCert, in the namespace, at the mount; without the CA it is unreachable; without the namespace there is no such mount', async () => {
    const config = { address: vault.address, token: vault.rootToken, keyName: 'k', mount: 'kms/transit', namespace: 'admin/team-a', caCert: cert };
    const p = vaultTransitProviderFactory.open(config, CONTRACT_IDENTITY);
    const key = randomBytes(32);
    const wrapped = await p.wrap(key, aad);
    expect(await p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion)).toEqual(key);
    expect((await p.describe()).currentVersion).toBe('1');
    await p.close();

    const { caCert: _ca, ...untrusted } = config;
    const noCa = vaultTransitProviderFactory.open(untrusted, CONTRACT_IDENTITY);
    expect((await failure(noCa.wrap(key, aad), 'unreachable')).message).toMatch(/TLS .*caCert/);
    await noCa.close();

    const { namespace: _ns, ...rootNamespace } = config;
    const elsewhere = vaultTransitProviderFactory.open(rootNamespace, CONTRACT_IDENTITY);
    expect((await failure(elsewhere.wrap(key, aad), 'key_not_found')).message).toContain('nothing mounted');
    expect((await elsewhere.describe()).state).toBe('key_deleted');
    await elsewhere.close();
  });
});
