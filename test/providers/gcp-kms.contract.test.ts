import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KeystrataError } from '../../src/errors.js';
import { CmkProviderError } from '../../src/providers/provider.js';
import { ProviderRegistry } from '../../src/providers/registry.js';
import { createGcpKmsProviderFactory, gcpKmsProviderFactory } from '../../src/providers/gcp-kms/gcp-kms-provider.js';
import { GcpKmsEmulator, PERMISSIONS } from '../emulators/gcp-kms/gcp-kms-emulator.js';
import { newServiceAccountKey } from '../emulators/gcp-kms/service-accounts.js';
import { CONTRACT_IDENTITY, providerContract } from './contract/provider-contract.js';

/**
 * The gcp-kms provider — the official @google-cloud/kms client (REST transport) — against a local
 * emulator of the Cloud KMS REST API (test/emulators/gcp-kms). The factory under test is the
 * production one with the endpoint policy opened to http://127.0.0.1 (the only difference).
 */

const PROJECT = 'keystrata-test';
const RING = `projects/${PROJECT}/locations/europe-west1/keyRings/keystrata`;
const KEY = `${RING}/cryptoKeys/cmk`;
const OTHER_KEY = `${RING}/cryptoKeys/other-cmk`;
const ACCOUNT = `keystrata@${PROJECT}.iam.gserviceaccount.com`;
const USE = [PERMISSIONS[0], PERMISSIONS[1]];

const factory = createGcpKmsProviderFactory({ insecureTestEndpoints: true });
let emulator: GcpKmsEmulator;

providerContract({
  name: 'gcp-kms',
  async setup() {
    emulator = await GcpKmsEmulator.start();
    const keyFile = emulator.addServiceAccount(ACCOUNT, PROJECT);
    emulator.keys.create(KEY);
    emulator.keys.create(OTHER_KEY);
    // The same account, signing with a key Google does not have (deleted, or never uploaded).
    const deletedKey = newServiceAccountKey(ACCOUNT, PROJECT).file;
    const config = { keyName: KEY, apiEndpoint: emulator.endpoint, credentials: JSON.stringify(keyFile) };
    const move = emulator.transition.bind(emulator, KEY);
    return {
      factory,
      config,
      otherKeyConfig: { ...config, keyName: OTHER_KEY },
      badCredentialsConfig: { ...config, credentials: { ...deletedKey } },
      missingKeyConfig: { ...config, keyName: `${RING}/cryptoKeys/no-such-key` },
      controls: {
        disableKey: async () => move(['ENABLED'], 'DISABLED'),
        enableKey: async () => move(['DISABLED'], 'ENABLED'),
        scheduleDeletion: async () => move(['ENABLED', 'DISABLED'], 'DESTROY_SCHEDULED'),
        // RestoreCryptoKeyVersion puts a version back to DISABLED; the contract then enables it.
        cancelDeletion: async () => move(['DESTROY_SCHEDULED'], 'DISABLED'),
        purgeKey: async () => move(['ENABLED', 'DISABLED', 'DESTROY_SCHEDULED'], 'DESTROYED'),
        denyPermission: async () => emulator.setPermissions(USE, false),
        restorePermission: async () => emulator.setPermissions(USE, true),
        throttle: async (on) => emulator.throttle(on),
        slow: async (ms) => emulator.slow(ms),
        unreachable: (on) => emulator.unreachable(on),
        rotateKey: async () => emulator.keys.rotate(KEY),
      },
      serviceCalls: () => emulator.serviceCalls,
      async reset() {
        await emulator.unreachable(false);
        emulator.reset();
        move(['DESTROY_SCHEDULED'], 'DISABLED');
        move(['DISABLED'], 'ENABLED');
      },
      async teardown() {
        await emulator.stop();
      },
    };
  },
});

describe('gcp-kms specifics', () => {
  const aad = Buffer.from('keystrata ek\0env\0ek-id\0cmk-id');
  let local: GcpKmsEmulator;
  let keyFile: ReturnType<GcpKmsEmulator['addServiceAccount']>;
  beforeAll(async () => {
    local = await GcpKmsEmulator.start();
    keyFile = local.addServiceAccount(ACCOUNT, PROJECT);
    local.keys.create(KEY);
  });
  afterAll(async () => {
    await local.stop();
  });

  it('refuses a ciphertext damaged in transit (CRC32C) instead of returning it', async () => {
    const p = factory.open({ keyName: KEY, apiEndpoint: local.endpoint, credentials: { ...keyFile } }, CONTRACT_IDENTITY);
    local.corruptCiphertexts(true);
    try {
      const error = await p.wrap(randomBytes(32), aad).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CmkProviderError);
      expect((error as CmkProviderError).reason).toBe('unreachable');
      expect((error as Error).message).toMatch(/CRC32C/);
    } finally {
      local.corruptCiphertexts(false);
      await p.close();
    }
  });

  it('a call abandoned at the deadline closes its HTTP request', async () => {
    const registry = new ProviderRegistry([factory], { callTimeoutMs: 300, secretsKey: randomBytes(32) });
    const p = registry.openConfig('gcp-kms', { keyName: KEY, apiEndpoint: local.endpoint, credentials: { ...keyFile } }, CONTRACT_IDENTITY);
    try {
      await p.describe();
      local.slow(5_000);
      const before = local.abandoned;
      const error = await p.wrap(randomBytes(32), aad).catch((e: unknown) => e);
      expect((error as CmkProviderError).reason).toBe('timeout');
      await vi.waitFor(() => expect(local.abandoned).toBe(before + 1), { timeout: 2_000 });
    } finally {
      local.slow(0);
      await registry.close();
      await p.close();
    }
  });

  it('without credentials, uses application default credentials (GOOGLE_APPLICATION_CREDENTIALS)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gcp-adc-'));
    const file = join(dir, 'adc.json');
    writeFileSync(file, JSON.stringify(keyFile), { mode: 0o600 });
    const previous = process.env.GOOGLE_APPLICATION_CREDENTIALS;
    process.env.GOOGLE_APPLICATION_CREDENTIALS = file;
    const p = factory.open({ keyName: KEY, apiEndpoint: local.endpoint }, CONTRACT_IDENTITY);
    try {
      const key = randomBytes(32);
      const wrapped = await p.wrap(key, aad);
      expect(await p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion)).toEqual(key);
    } finally {
      await p.close();
      if (previous === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
      else process.env.GOOGLE_APPLICATION_CREDENTIALS = previous;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('in production, accepts only HTTPS googleapis.com endpoints and service_account keys', () => {
    const open = (config: Record<string, unknown>) => () => gcpKmsProviderFactory.open(config, CONTRACT_IDENTITY);
    expect(open({ keyName: KEY, apiEndpoint: 'cloudkms.europe-west1.rep.googleapis.com', credentials: keyFile })).not.toThrow();
    for (const apiEndpoint of [local.endpoint, 'kms.attacker.example', 'http://cloudkms.googleapis.com', '169.254.169.254']) {
      expect(open({ keyName: KEY, apiEndpoint, credentials: keyFile }), apiEndpoint).toThrow(KeystrataError);
    }
    const externalAccount = { type: 'external_account', audience: 'x', subject_token_type: 'x', token_url: 'https://sts.example', credential_source: { file: '/etc/passwd' } };
    expect(open({ keyName: KEY, credentials: externalAccount })).toThrow(KeystrataError);
    expect(open({ keyName: KEY, credentials: JSON.stringify(externalAccount) })).toThrow(KeystrataError);
    expect(open({ keyName: KEY, credentials: '{not json' })).toThrow(KeystrataError);
    expect(open({ keyName: `${KEY}/cryptoKeyVersions/1` })).toThrow(KeystrataError);
    // The message names the field, never the key.
    const error = (() => {
      try {
        open({ keyName: KEY, credentials: { ...keyFile, private_key: `${keyFile.private_key.slice(0, 200)}x` } })();
      } catch (e) {
        return e as Error;
      }
      return null;
    })();
    expect(error?.message).toMatch(/credentials/);
    expect(error?.message).not.toContain('PRIVATE KEY');
  });

  it('can refuse application default credentials (multi-tenant deployments)', () => {
    const strict = createGcpKmsProviderFactory({ applicationDefaultCredentials: false });
    expect(() => strict.open({ keyName: KEY }, CONTRACT_IDENTITY)).toThrow(KeystrataError);
    expect(() => strict.open({ keyName: KEY, credentials: keyFile }, CONTRACT_IDENTITY)).not.toThrow();
  });
});
