import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeystrataError } from '../../src/errors.js';
import { createAzureKeyVaultProviderFactory } from '../../src/providers/azure-keyvault/azure-keyvault-provider.js';
import { CmkProviderError, type CmkProvider, type CmkProviderFactory } from '../../src/providers/provider.js';
import { AzureKeyVaultEmulator } from '../emulators/azure-keyvault/azure-keyvault-emulator.js';
import { CONTRACT_IDENTITY, providerContract } from './contract/provider-contract.js';

/**
 * Azure Key Vault through @azure/identity + @azure/keyvault-keys, against the emulator in
 * test/emulators/azure-keyvault (Entra ID token endpoint + Key Vault data plane, HTTPS on
 * 127.0.0.1). The contract runs on an RSA-HSM key (a Key Vault Premium key); the oct-HSM
 * (Managed HSM, A256KW) path and the Azure-specific states follow below the contract.
 */

const KEY = 'keystrata-cmk';
const OTHER_KEY = 'other-cmk';
let emulator: AzureKeyVaultEmulator | undefined;

function config(em: AzureKeyVaultEmulator, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { keyId: em.keyId(KEY), tenantId: em.tenantId, clientId: em.clientId, clientSecret: em.clientSecret, authorityHost: em.authorityHost, ...overrides };
}

providerContract({
  name: 'azure-keyvault',
  async setup() {
    const em = await AzureKeyVaultEmulator.start();
    emulator = em;
    em.vault.createKey(KEY, 'RSA-HSM');
    em.vault.createKey(OTHER_KEY, 'RSA-HSM');
    const host = new URL(em.vaultUrl).host;
    const factory = createAzureKeyVaultProviderFactory({
      extraVaultHosts: [host],
      extraAuthorityHosts: [new URL(em.authorityHost).host],
      ca: em.ca,
      disableChallengeResourceVerification: true,
    });
    return {
      factory,
      config: config(em),
      otherKeyConfig: config(em, { keyId: em.keyId(OTHER_KEY) }),
      badCredentialsConfig: config(em, { clientSecret: `${em.clientSecret}-old` }),
      missingKeyConfig: config(em, { keyId: em.keyId('no-such-key') }),
      serviceCalls: () => em.requests(),
      controls: {
        disableKey: async () => em.vault.setEnabled(KEY, false),
        enableKey: async () => em.vault.setEnabled(KEY, true),
        scheduleDeletion: async () => em.vault.deleteKey(KEY),
        cancelDeletion: async () => em.vault.recoverKey(KEY),
        purgeKey: async () => {
          em.vault.deleteKey(KEY);
          em.vault.purgeKey(KEY);
        },
        denyPermission: async () => {
          em.vault.denied.add('wrapKey');
          em.vault.denied.add('unwrapKey');
        },
        restorePermission: async () => em.vault.denied.clear(),
        throttle: async (on) => {
          em.vault.throttled = on;
        },
        slow: async (ms) => em.slow(ms),
        unreachable: async (on) => em.unreachable(on),
        rotateKey: async () => em.vault.rotateKey(KEY),
      },
      async reset() {
        if (em.vault.has(KEY)) {
          em.vault.recoverKey(KEY);
          em.vault.setEnabled(KEY, true);
        }
        em.vault.denied.clear();
        em.vault.throttled = false;
        em.slow(0);
        await em.unreachable(false);
      },
      async teardown() {
        await emulator?.close();
      },
    };
  },
});

/**
 * What the contract cannot see: the Managed HSM (oct-HSM, A256KW) path, Key Vault's expiry rules,
 * pinned versions, which URLs are called, the host allowlist, and that no error carries the secret.
 */
describe('azure-keyvault beyond the contract', () => {
  let em: AzureKeyVaultEmulator;
  let factory: CmkProviderFactory;
  const aad = Buffer.from('keystrata ek\0env\0ek\0cmk');
  const messages: string[] = [];

  const open = (overrides: Record<string, unknown> = {}): CmkProvider => factory.open(config(em, overrides), CONTRACT_IDENTITY);
  const failure = async (call: Promise<unknown>): Promise<CmkProviderError> => {
    const error = await call.then(
      () => new Error('expected a failure'),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CmkProviderError);
    messages.push((error as Error).message);
    return error as CmkProviderError;
  };

  beforeAll(async () => {
    em = await AzureKeyVaultEmulator.start();
    em.vault.createKey(KEY, 'RSA-HSM');
    em.vault.createKey('hsm-key', 'oct-HSM');
    em.vault.createKey('dated', 'RSA-HSM');
    factory = createAzureKeyVaultProviderFactory({
      extraVaultHosts: [new URL(em.vaultUrl).host],
      extraAuthorityHosts: [new URL(em.authorityHost).host],
      ca: em.ca,
      disableChallengeResourceVerification: true,
    });
  }, 60_000);
  afterAll(async () => {
    // No message any failure produced holds the client secret.
    for (const message of messages) expect(message).not.toContain(em.clientSecret);
    await em?.close();
  });

  it('wraps with A256KW on an oct-HSM (Managed HSM) key; an RSA key cannot unwrap it', async () => {
    const p = open({ keyId: em.keyId('hsm-key') });
    const key = randomBytes(32);
    const wrapped = await p.wrap(key, aad);
    expect(em.vault.calls.at(-1)).toBe(`POST /keys/hsm-key/${wrapped.keyVersion}/wrapkey`);
    expect(wrapped.ciphertext[0]).toBe(2);
    // 1 algorithm byte + 40 bytes of RFC 3394 output + 32-byte AAD tag.
    expect(wrapped.ciphertext.length).toBe(1 + 40 + 32);
    expect(await p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion)).toEqual(key);
    expect((await failure(open().unwrap(wrapped.ciphertext, aad, wrapped.keyVersion))).reason).toBe('invalid_ciphertext');
  });

  it('unwraps with one POST to the version that wrapped (no key read), and reports that version', async () => {
    const p = open();
    const wrapped = await p.wrap(randomBytes(32), aad);
    expect(em.vault.calls.slice(-2)).toEqual([`GET /keys/${KEY}/`, `POST /keys/${KEY}/${wrapped.keyVersion}/wrapkey`]);
    const before = em.vault.operations;
    await p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion);
    expect(em.vault.operations - before).toBe(1);
    expect(em.vault.calls.at(-1)).toBe(`POST /keys/${KEY}/${wrapped.keyVersion}/unwrapkey`);
  });

  it('a tampered algorithm byte or a malformed version is invalid_ciphertext, without calling the vault', async () => {
    const p = open();
    const wrapped = await p.wrap(randomBytes(32), aad);
    const before = em.vault.operations;
    const other = Buffer.from(wrapped.ciphertext);
    other[0] = 9;
    expect((await failure(p.unwrap(other, aad, wrapped.keyVersion))).reason).toBe('invalid_ciphertext');
    expect((await failure(p.unwrap(wrapped.ciphertext, aad, '../../deletedkeys/x'))).reason).toBe('invalid_ciphertext');
    expect(em.vault.operations).toBe(before);
  });

  it('expiry: key_expiring within 30 days; once expired, wraps are refused (key_expired) but old wraps still unwrap', async () => {
    const p = open({ keyId: em.keyId('dated') });
    const key = randomBytes(32);
    const wrapped = await p.wrap(key, aad);
    const soon = new Date(Date.now() + 10 * 86_400_000);
    em.vault.setDates('dated', { expiresOn: soon });
    const expiring = await p.describe();
    expect(expiring.state).toBe('key_expiring');
    expect(expiring.expiresAt?.getTime()).toBe(Math.floor(soon.getTime() / 1000) * 1000);
    em.vault.setDates('dated', { expiresOn: new Date(Date.now() - 1000) });
    const expired = await p.describe();
    expect(expired.state).toBe('key_expired');
    expect(expired.expiresAt).toBeInstanceOf(Date);
    expect((await failure(p.wrap(randomBytes(32), aad))).reason).toBe('key_expired');
    // Key Vault lets an expired key unwrap ("date-time controlled operations"): data stays readable.
    expect(await p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion)).toEqual(key);
    em.vault.setDates('dated', { expiresOn: null, notBefore: new Date(Date.now() + 86_400_000) });
    expect((await p.describe()).state).toBe('key_disabled');
    expect((await failure(p.wrap(randomBytes(32), aad))).reason).toBe('key_disabled');
    em.vault.setDates('dated', { notBefore: null });
    expect((await p.describe()).state).toBe('healthy');
  });

  it('a pinned version keeps wrapping with that version after a rotation', async () => {
    const pinned = em.vault.rotateKey(KEY);
    const p = open({ keyId: em.keyId(KEY, pinned) });
    em.vault.rotateKey(KEY);
    const wrapped = await p.wrap(randomBytes(32), aad);
    expect(wrapped.keyVersion).toBe(pinned);
    expect((await p.describe()).currentVersion).toBe(pinned);
  });

  it('an expired client secret is credentials_rejected, and describe says credentials_expired with Entra ID’s reason', async () => {
    em.identity.expireSecret(em.clientId, true);
    try {
      const p = open();
      const error = await failure(p.wrap(randomBytes(32), aad));
      expect(error.reason).toBe('credentials_rejected');
      expect(error.message).toContain('AADSTS7000222');
      const description = await p.describe();
      expect(description.state).toBe('credentials_expired');
      expect(description.detail).toContain('AADSTS7000222');
    } finally {
      em.identity.expireSecret(em.clientId, false);
    }
  });

  it('a tenant other than the vault’s, or an unknown application, is credentials_rejected', async () => {
    expect((await failure(open({ tenantId: randomUUID() }).wrap(randomBytes(32), aad))).reason).toBe('credentials_rejected');
    const unknownApp = await failure(open({ clientId: randomUUID() }).wrap(randomBytes(32), aad));
    expect(unknownApp.reason).toBe('credentials_rejected');
    expect(unknownApp.message).toContain('AADSTS700016');
  });

  it('without permission to read the key, describe cannot tell the state (permission_denied)', async () => {
    em.vault.denied.add('get');
    try {
      expect((await failure(open().describe())).reason).toBe('permission_denied');
    } finally {
      em.vault.denied.clear();
    }
  });

  it('an unreachable identity endpoint is unreachable, not a credentials problem', async () => {
    const closed = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const p = createAzureKeyVaultProviderFactory({
      extraVaultHosts: [new URL(em.vaultUrl).host],
      extraAuthorityHosts: [`127.0.0.1:${closed}`],
      ca: em.ca,
      disableChallengeResourceVerification: true,
    }).open(config(em, { authorityHost: `https://127.0.0.1:${closed}` }), CONTRACT_IDENTITY);
    expect((await failure(p.wrap(randomBytes(32), aad))).reason).toBe('unreachable');
  });

  it('only Azure hosts are accepted by default; sovereign clouds get their own Entra ID host', () => {
    const azure = createAzureKeyVaultProviderFactory();
    const base = { tenantId: em.tenantId, clientId: em.clientId, clientSecret: em.clientSecret };
    const refused = (config: Record<string, unknown>, field: string) => {
      const error = (() => {
        try {
          azure.open(config, CONTRACT_IDENTITY);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(KeystrataError);
      expect((error as KeystrataError).field).toBe(field);
      expect((error as KeystrataError).message).not.toContain(em.clientSecret);
    };
    refused({ ...base, keyId: em.keyId(KEY) }, 'keyId');
    refused({ ...base, keyId: 'https://169.254.169.254/keys/k' }, 'keyId');
    refused({ ...base, keyId: 'https://contoso.vault.azure.net/keys/k', authorityHost: 'https://login.evil.example' }, 'authorityHost');
    refused({ ...base, keyId: 'http://contoso.vault.azure.net/keys/k' }, 'keyId');
    refused({ ...base, keyId: 'https://contoso.vault.azure.net/secrets/k' }, 'keyId');
    refused({ ...base, keyId: 'https://contoso.vault.azure.net/keys/k', clientId: 'not-a-guid' }, 'clientId');
    for (const keyId of ['https://contoso.vault.azure.net/keys/k', 'https://contoso.managedhsm.azure.net/keys/k/0123456789abcdef0123456789abcdef', 'https://contoso.vault.azure.cn/keys/k', 'https://contoso.vault.usgovcloudapi.net/keys/k/']) {
      const before = em.requests();
      expect(() => azure.open({ ...base, keyId }, CONTRACT_IDENTITY)).not.toThrow();
      expect(em.requests()).toBe(before);
    }
  });
});
