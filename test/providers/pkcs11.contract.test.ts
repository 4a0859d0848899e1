import { randomBytes } from 'node:crypto';
import { symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeystrataError } from '../../src/errors.js';
import { CmkProviderError, type CmkProvider } from '../../src/providers/provider.js';
import * as constants from '../../src/providers/pkcs11/cryptoki-constants.js';
import { CryptokiError } from '../../src/providers/pkcs11/cryptoki-host.js';
import { providerErrorOf } from '../../src/providers/pkcs11/pkcs11-errors.js';
import { pkcs11ProviderFactory } from '../../src/providers/pkcs11/pkcs11-provider.js';
import { startSoftHsm, type SoftHsm } from '../support/softhsm.js';
import { CONTRACT_IDENTITY, providerContract } from './contract/provider-contract.js';

/**
 * The PKCS#11 provider against a real SoftHSM2 token. One token serves the whole file; the
 * contract's key is KEY (versions 01, 02, … as the "HSM administrator" process rotates it), the
 * wrong-key case uses OTHER, which has the same CKA_ID 01 (so it is the GCM tag that refuses it,
 * not a missing version).
 */

const KEY = 'keystrata-cmk';
const OTHER = 'keystrata-other-cmk';

let hsmStarted: Promise<SoftHsm> | null = null;
const softHsm = () => (hsmStarted ??= startSoftHsm());
afterAll(async () => (await hsmStarted)?.dispose(), 30_000);

const aad = Buffer.from('keystrata ek\0env\0ek-id\0cmk-id');

describe('pkcs11 provider: PKCS#11 specifics', () => {
  let hsm: SoftHsm;
  const opened: CmkProvider[] = [];
  const open = (config: Record<string, unknown>, allowed = [hsm.modulePath]) => {
    const provider = pkcs11ProviderFactory({ allowedModules: allowed }).open(config, CONTRACT_IDENTITY);
    opened.push(provider);
    return provider;
  };
  const configOf = (keyLabel: string) => ({ module: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin, keyLabel });

  beforeAll(async () => {
    hsm = await softHsm();
    await hsm.admin.generate('specifics', '01');
  }, 60_000);
  // Every host of this block is released before the contract's providers log in afresh.
  afterAll(async () => Promise.all(opened.map((p) => p.close())), 30_000);

  it('uses the PKCS#11 values pkcs11js uses', () => {
    const pkcs11js = createRequire(import.meta.url)('pkcs11js') as Record<string, unknown>;
    const expected = Object.fromEntries(Object.keys(constants).map((name) => [name, pkcs11js[name.replace(/^PKCS11JS_/, 'CK_')]]));
    expect({ ...constants }).toEqual(expected);
  });

  it('maps the return values SoftHSM2 cannot be made to give (network HSM faults, policies, limits)', () => {
    const reason = (ckr: string, decrypting = false) => providerErrorOf(new CryptokiError(ckr, ckr), 'test', decrypting).reason;
    expect(reason('CKR_DEVICE_ERROR')).toBe('unreachable');
    expect(reason('CKR_DEVICE_REMOVED')).toBe('unreachable');
    expect(reason('CKR_TOKEN_NOT_PRESENT')).toBe('unreachable');
    expect(reason('CKR_PIN_LOCKED')).toBe('credentials_rejected');
    expect(reason('CKR_PIN_EXPIRED')).toBe('credentials_rejected');
    expect(reason('CKR_SESSION_COUNT')).toBe('throttled');
    expect(reason('CKR_MECHANISM_PARAM_INVALID')).toBe('permission_denied');
    expect(reason('CKR_ENCRYPTED_DATA_INVALID', true)).toBe('invalid_ciphertext');
    // A general error is a wrong GCM tag only while decrypting (SoftHSM2's answer to one).
    expect(reason('CKR_GENERAL_ERROR', true)).toBe('invalid_ciphertext');
    expect(reason('CKR_GENERAL_ERROR')).toBe('unreachable');
  });

  it('refuses a module the operator did not allow, when opened', () => {
    expect(() => open(configOf('specifics'), [])).toThrow(KeystrataError);
  });

  it('a wrong PIN is credentials_rejected, and is not sent to the token again', async () => {
    const provider = open({ ...configOf('specifics'), pin: 'not-the-pin' });
    const first = await provider.wrap(randomBytes(32), aad).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(CmkProviderError);
    expect((first as CmkProviderError).reason).toBe('credentials_rejected');
    expect((first as Error).message).toContain('CKR_PIN_INCORRECT');
    const second = await provider.wrap(randomBytes(32), aad).catch((e: unknown) => e);
    expect((second as CmkProviderError).reason).toBe('credentials_rejected');
    expect((second as Error).message).toContain('not sent again');
    expect((await provider.describe()).state).toBe('credentials_expired');
    for (const error of [first, second]) expect(String((error as Error).message)).not.toContain(hsm.pin);
  });

  it('a module that cannot be loaded is unreachable (open() does not load it), and works once it is there', async () => {
    const path = join(hsm.dir, 'late-libsofthsm2.so');
    const provider = open({ ...configOf('specifics'), module: path }, [path]);
    const started = Date.now();
    const error = await provider.wrap(randomBytes(32), aad).catch((e: unknown) => e);
    expect((error as CmkProviderError).reason).toBe('unreachable');
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(provider.describe()).rejects.toMatchObject({ reason: 'unreachable' });
    // The same library under another path is the same module (one C_Initialize per process):
    // letting go of it under one path must not finalize it under the other.
    const direct = open(configOf('specifics'));
    await direct.wrap(randomBytes(32), aad);
    symlinkSync(hsm.modulePath, path);
    const wrapped = await provider.wrap(randomBytes(32), aad);
    expect(wrapped.keyVersion).toBe('01');
    await provider.close();
    expect(await direct.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion)).toHaveLength(32);
  });

  it('a token label that is not in the module is unreachable', async () => {
    const error = await open({ ...configOf('specifics'), tokenLabel: 'no-such-token' }).wrap(randomBytes(32), aad).catch((e: unknown) => e);
    expect((error as CmkProviderError).reason).toBe('unreachable');
    expect((error as Error).message).toContain('no-such-token');
  });

  it('concurrent calls on one provider take turns on its session', async () => {
    const provider = open(configOf('specifics'));
    const keys = Array.from({ length: 25 }, () => randomBytes(32));
    const wrapped = await Promise.all(keys.map((key) => provider.wrap(key, aad)));
    const unwrapped = await Promise.all(wrapped.map((w) => provider.unwrap(w.ciphertext, aad, w.keyVersion)));
    unwrapped.forEach((key, i) => expect(key).toEqual(keys[i]));
    // Several CMKs on one token share its login.
    const other = open(configOf('specifics'));
    expect(await other.unwrap(wrapped[0]!.ciphertext, aad, wrapped[0]!.keyVersion)).toEqual(keys[0]);
  });

  it('a wrapped key of the wrong length or an unknown version is refused without a token call', async () => {
    const provider = open(configOf('specifics'));
    await expect(provider.unwrap(randomBytes(59), aad, '01')).rejects.toMatchObject({ reason: 'invalid_ciphertext' });
    await expect(provider.unwrap(randomBytes(60), aad, 'v1')).rejects.toMatchObject({ reason: 'key_not_found' });
  });
});

providerContract({
  name: 'pkcs11',
  notApplicable: {
    scheduleDeletion: 'PKCS#11 has no deletion schedule: C_DestroyObject destroys a key at once (that is the purgeKey case)',
    cancelDeletion: 'PKCS#11 has no deletion schedule to cancel',
    denyPermission:
      'a PKCS#11 token has one user: once logged in, it may use every key whose CKA_ENCRYPT/CKA_DECRYPT allow it, and turning those off is the disableKey case (key_disabled)',
    restorePermission: 'see denyPermission',
    throttle: 'a PKCS#11 module does not rate-limit calls (CKR_SESSION_COUNT maps to throttled, but SoftHSM2 has no session limit to reach)',
  },
  async setup() {
    const hsm = await softHsm();
    await hsm.admin.generate(KEY, '01');
    await hsm.admin.generate(OTHER, '01');
    let nextVersion = 2;
    const config = { module: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin, keyLabel: KEY };
    return {
      factory: pkcs11ProviderFactory({ allowedModules: [hsm.modulePath] }),
      config,
      otherKeyConfig: { ...config, keyLabel: OTHER },
      badCredentialsConfig: { ...config, pin: `x${hsm.pin}` },
      missingKeyConfig: { ...config, keyLabel: 'no-such-key' },
      controls: {
        disableKey: () => hsm.admin.setUsage(KEY, false),
        enableKey: () => hsm.admin.setUsage(KEY, true),
        purgeKey: () => hsm.admin.destroy(KEY),
        // Both are a token that does not answer (another process holds its files' locks): how a
        // stalled or cut-off network HSM looks to its PKCS#11 library's caller.
        slow: (ms: number) => (ms > 0 ? hsm.holdLocks(ms) : hsm.releaseLocks()),
        unreachable: (on: boolean) => (on ? hsm.holdLocks() : hsm.releaseLocks()),
        async rotateKey() {
          const version = (nextVersion++).toString(16).padStart(2, '0');
          await hsm.admin.generate(KEY, version);
          return version;
        },
      },
      async reset() {
        await hsm.releaseLocks();
        await hsm.admin.setUsage(KEY, true);
      },
      // The token outlives the contract: the file's afterAll disposes of it.
      async teardown() {},
    };
  },
});
