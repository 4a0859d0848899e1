import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeystrataError } from '../../../src/errors.js';
import { publicConfig, sealSecrets } from '../../../src/providers/config-secrets.js';
import { CmkProviderError, type CmkFailureReason, type CmkProvider, type CmkProviderFactory, type ProviderIdentity } from '../../../src/providers/provider.js';
import { ProviderRegistry } from '../../../src/providers/registry.js';

/**
 * THE provider contract: every CMK provider runs this suite (one test file per provider,
 * test/providers/<name>.contract.test.ts, calling providerContract with its fixture).
 *
 * A fixture sets up the real component (SoftHSM2 token, PyKMIP server) or the emulator of a cloud
 * KMS (test/emulators/), and exposes controls to put the key into each state. A control the
 * provider's service cannot have (an uploaded key cannot be "throttled") is left out: its cases are
 * then not generated at all, and the fixture says why in `notApplicable` (checked by a case of its
 * own, never reported as a pass, a skip or a todo).
 *
 * Every call goes through a ProviderRegistry, as in production: the deadline, error wrapping and
 * secret sealing are part of what is tested.
 */

export interface ProviderControls {
  /** Disable the key at the KMS (reversible). */
  disableKey(): Promise<void>;
  enableKey(): Promise<void>;
  /** Schedule deletion (restorable at the KMS). */
  scheduleDeletion(): Promise<void>;
  cancelDeletion(): Promise<void>;
  /** Destroy the key for good. */
  purgeKey(): Promise<void>;
  /** Keep the credentials valid but take away wrap/unwrap (encrypt/decrypt) permission. */
  denyPermission(): Promise<void>;
  restorePermission(): Promise<void>;
  /** Answer every request with the service's throttling error until turned off. */
  throttle(on: boolean): Promise<void>;
  /** Delay every answer by `ms` (0 = off). */
  slow(ms: number): Promise<void>;
  /** Stop answering / refuse connections until turned back on. */
  unreachable(on: boolean): Promise<void>;
  /** Make a new key version the primary one (KMS auto-rotation); returns its version string. */
  rotateKey(): Promise<string>;
}

export interface ProviderUnderTest {
  readonly factory: CmkProviderFactory;
  /** A working config for the key under test (secret fields in clear, as a customer sends them). */
  readonly config: Readonly<Record<string, unknown>>;
  /** A working config naming ANOTHER key of the same kind (the wrong-key case). */
  readonly otherKeyConfig: Readonly<Record<string, unknown>>;
  /** The same key with credentials the service rejects; omit if the provider has no credentials. */
  readonly badCredentialsConfig?: Readonly<Record<string, unknown>>;
  /** A config naming a key that does not exist. Omit if the provider has no key names. */
  readonly missingKeyConfig?: Readonly<Record<string, unknown>>;
  readonly controls: Partial<ProviderControls>;
  /** wrap/unwrap/describe calls the backing service has seen (the emulators count them). */
  readonly serviceCalls?: () => number;
  /** Undo control changes between cases (enable, restore, stop throttling …). */
  reset(): Promise<void>;
  teardown(): Promise<void>;
}

/** The CMK the suite opens providers for (a fixture may need it to make a config, e.g. platform). */
export const CONTRACT_IDENTITY: ProviderIdentity = { cmkId: '7d6f3b1e-0000-4000-8000-00000000c0de', environmentId: '7d6f3b1e-0000-4000-8000-0000000e0e0e' };

export interface ProviderFixture {
  /** Registry name of the provider. */
  readonly name: string;
  /** Cases of the contract that cannot apply to this provider, and why (shown in the test titles). */
  readonly notApplicable?: Readonly<Partial<Record<keyof ProviderControls | 'badCredentials' | 'missingKey', string>>>;
  setup(): Promise<ProviderUnderTest>;
}

/** The deadline the suite gives providers: short, so the slow case is quick. */
const CALL_TIMEOUT_MS = 1500;

async function expectFailure(call: Promise<unknown>, reasons: readonly CmkFailureReason[]): Promise<CmkProviderError> {
  const error = await call.then(
    () => {
      throw new Error(`expected a CmkProviderError (${reasons.join(' | ')}), but the call succeeded`);
    },
    (e: unknown) => e,
  );
  expect(error, String(error)).toBeInstanceOf(CmkProviderError);
  expect(reasons, `reason ${(error as CmkProviderError).reason}: ${(error as Error).message}`).toContain((error as CmkProviderError).reason);
  return error as CmkProviderError;
}

export function providerContract(fixture: ProviderFixture): void {
  describe(`provider contract: ${fixture.name}`, () => {
    let under: ProviderUnderTest;
    let registry: ProviderRegistry;
    const identity = CONTRACT_IDENTITY;
    const secretsKey = randomBytes(32);
    const aad = Buffer.from('keystrata ek\0env\0ek-id\0cmk-id');
    const opened: CmkProvider[] = [];

    /** A provider for `config`, the way the service opens a stored CMK (secrets sealed, then unsealed). */
    const provider = (config: Readonly<Record<string, unknown>> = under.config): CmkProvider => {
      // Each call opens a fresh provider, as another node (or a restart) would.
      const stored = sealSecrets(config, under.factory.secretFields, secretsKey, identity);
      const p = registry.openConfig(fixture.name, stored, identity, true);
      opened.push(p);
      return p;
    };

    beforeAll(async () => {
      under = await fixture.setup();
      expect(under.factory.name).toBe(fixture.name);
      registry = new ProviderRegistry([under.factory], { callTimeoutMs: CALL_TIMEOUT_MS, secretsKey });
    }, 120_000);
    afterAll(async () => {
      await Promise.all(opened.map((p) => p.close().catch(() => undefined)));
      await registry?.close();
      await under?.teardown();
    }, 60_000);

    const reset = async () => under.reset();

    it('wraps and unwraps a 256-bit key, reporting a key version; the ciphertext is not the key', async () => {
      const key = randomBytes(32);
      const p = provider();
      const wrapped = await p.wrap(key, aad);
      expect(typeof wrapped.keyVersion).toBe('string');
      expect(wrapped.keyVersion.length).toBeGreaterThan(0);
      expect(wrapped.ciphertext.includes(key)).toBe(false);
      expect(await p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion)).toEqual(key);
      // A second provider opened from the same config (another node) unwraps it too.
      expect(await provider().unwrap(wrapped.ciphertext, aad, wrapped.keyVersion)).toEqual(key);
      // Two wraps of one key differ (randomised), both open.
      const again = await p.wrap(key, aad);
      expect(again.ciphertext.equals(wrapped.ciphertext)).toBe(false);
    });

    it('binds the AAD: another AAD, or a tampered ciphertext, is invalid_ciphertext', async () => {
      const p = provider();
      const wrapped = await p.wrap(randomBytes(32), aad);
      await expectFailure(p.unwrap(wrapped.ciphertext, Buffer.from('another environment'), wrapped.keyVersion), ['invalid_ciphertext']);
      const tampered = Buffer.from(wrapped.ciphertext);
      tampered[tampered.length - 1]! ^= 0x01;
      await expectFailure(p.unwrap(tampered, aad, wrapped.keyVersion), ['invalid_ciphertext']);
    });

    it('another key cannot unwrap it (invalid_ciphertext)', async () => {
      const wrapped = await provider().wrap(randomBytes(32), aad);
      await expectFailure(provider(under.otherKeyConfig).unwrap(wrapped.ciphertext, aad, wrapped.keyVersion), ['invalid_ciphertext']);
    });

    it('describes a working key as healthy, with its current version', async () => {
      const p = provider();
      const description = await p.describe();
      expect(description.state).toBe('healthy');
      const wrapped = await p.wrap(randomBytes(32), aad);
      expect(description.currentVersion).toBe(wrapped.keyVersion);
    });

    it('validates its config with its own schema, keeps secrets out of the public config, and opens without network calls', async () => {
      const before = under.serviceCalls?.();
      expect(() => under.factory.open({ ...under.config, unexpectedField: 1 }, identity)).toThrow(KeystrataError);
      expect(() => under.factory.open({}, identity)).toThrow(KeystrataError);
      const p = under.factory.open(under.config, identity);
      await p.close();
      if (before !== undefined) expect(under.serviceCalls!()).toBe(before);
      const shown = JSON.stringify(publicConfig(sealSecrets(under.config, under.factory.secretFields, secretsKey, identity), under.factory.secretFields));
      for (const field of under.factory.secretFields) {
        const value = under.config[field];
        if (typeof value === 'string') expect(shown).not.toContain(value);
        expect(shown).not.toContain(`"${field}"`);
      }
      // Sealed secrets are not the secret either.
      const stored = JSON.stringify(sealSecrets(under.config, under.factory.secretFields, secretsKey, identity));
      for (const field of under.factory.secretFields) {
        const value = under.config[field];
        if (typeof value === 'string' && value.length >= 4) expect(stored).not.toContain(value);
      }
    });

    const na = fixture.notApplicable ?? {};
    const CONTROLS: readonly (keyof ProviderControls)[] = [
      'disableKey',
      'enableKey',
      'scheduleDeletion',
      'cancelDeletion',
      'purgeKey',
      'denyPermission',
      'restorePermission',
      'throttle',
      'slow',
      'unreachable',
      'rotateKey',
    ];
    // Cases a key store cannot have are not generated at all (never reported as skipped or todo);
    // this case holds the fixture to its word: a reason for each, and no control it says it lacks.
    it('declares exactly the cases it cannot have, each with a reason', () => {
      for (const [name, reason] of Object.entries(na)) expect(reason, name).toMatch(/\w{3,}.*\w{3,}/);
      for (const control of CONTROLS) {
        expect({ control, provided: under.controls[control] !== undefined }).toEqual({ control, provided: na[control] === undefined });
      }
      expect({ badCredentialsConfig: under.badCredentialsConfig !== undefined }).toEqual({ badCredentialsConfig: na.badCredentials === undefined });
      expect({ missingKeyConfig: under.missingKeyConfig !== undefined }).toEqual({ missingKeyConfig: na.missingKey === undefined });
    });

    const when = (control: keyof ProviderControls, title: string, body: () => Promise<void>) => {
      if (na[control] !== undefined) return;
      it(title, async () => {
        const run = under.controls[control];
        if (run === undefined) throw new Error(`fixture ${fixture.name} has no control ${control} and does not say why`);
        try {
          await body();
        } finally {
          await reset();
        }
      }, 60_000);
    };

    when('disableKey', 'a disabled key refuses wrap and unwrap (key_disabled), describes as key_disabled, and works again once enabled', async () => {
      const p = provider();
      const wrapped = await p.wrap(randomBytes(32), aad);
      await under.controls.disableKey!();
      await expectFailure(p.wrap(randomBytes(32), aad), ['key_disabled']);
      await expectFailure(p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion), ['key_disabled']);
      expect((await p.describe()).state).toBe('key_disabled');
      await under.controls.enableKey!();
      expect((await p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion)).length).toBe(32);
      expect((await p.describe()).state).toBe('healthy');
    });

    when('scheduleDeletion', 'a key pending deletion refuses use (key_pending_deletion or key_disabled), describes as key_pending_deletion, and is restorable', async () => {
      const p = provider();
      const wrapped = await p.wrap(randomBytes(32), aad);
      await under.controls.scheduleDeletion!();
      await expectFailure(p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion), ['key_pending_deletion', 'key_disabled']);
      expect((await p.describe()).state).toBe('key_pending_deletion');
      await under.controls.cancelDeletion!();
      await under.controls.enableKey?.();
      expect((await p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion)).length).toBe(32);
    });

    when('denyPermission', 'credentials without wrap/unwrap permission are permission_denied', async () => {
      const p = provider();
      const wrapped = await p.wrap(randomBytes(32), aad);
      await under.controls.denyPermission!();
      await expectFailure(p.wrap(randomBytes(32), aad), ['permission_denied']);
      await expectFailure(p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion), ['permission_denied']);
      await under.controls.restorePermission!();
      expect((await p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion)).length).toBe(32);
    });

    when('throttle', 'a throttling service gives throttled, and works again afterwards', async () => {
      const p = provider();
      await under.controls.throttle!(true);
      await expectFailure(p.wrap(randomBytes(32), aad), ['throttled']);
      await under.controls.throttle!(false);
      expect((await p.wrap(randomBytes(32), aad)).ciphertext.length).toBeGreaterThan(0);
    });

    when('slow', 'a service slower than the deadline fails with timeout, in about the deadline', async () => {
      const p = provider();
      await under.controls.slow!(CALL_TIMEOUT_MS * 4);
      const started = Date.now();
      await expectFailure(p.wrap(randomBytes(32), aad), ['timeout']);
      expect(Date.now() - started).toBeLessThan(CALL_TIMEOUT_MS * 3);
      await under.controls.slow!(0);
    });

    when('unreachable', 'an unreachable service fails fast with unreachable (or timeout), and works again when back', async () => {
      const p = provider();
      await under.controls.unreachable!(true);
      const started = Date.now();
      await expectFailure(p.wrap(randomBytes(32), aad), ['unreachable', 'timeout']);
      expect(Date.now() - started).toBeLessThan(CALL_TIMEOUT_MS * 3);
      const description = await p.describe().catch((e: unknown) => e);
      if (!(description instanceof CmkProviderError)) expect((description as { state: string }).state).toBe('unreachable');
      await under.controls.unreachable!(false);
      expect((await p.wrap(randomBytes(32), aad)).ciphertext.length).toBeGreaterThan(0);
    });

    when('rotateKey', 'after the KMS rotates the key, wraps report the new version; the old version still unwraps', async () => {
      const p = provider();
      const key = randomBytes(32);
      const before = await p.wrap(key, aad);
      const newVersion = await under.controls.rotateKey!();
      expect(newVersion).not.toBe(before.keyVersion);
      const after = await p.wrap(key, aad);
      expect(after.keyVersion).toBe(newVersion);
      expect((await p.describe()).currentVersion).toBe(newVersion);
      expect(await p.unwrap(before.ciphertext, aad, before.keyVersion)).toEqual(key);
      expect(await p.unwrap(after.ciphertext, aad, after.keyVersion)).toEqual(key);
    });

    // Destructive: last.
    when('purgeKey', 'a destroyed key is key_destroyed for unwrap, and describes as key_deleted', async () => {
      const p = provider();
      const wrapped = await p.wrap(randomBytes(32), aad);
      await under.controls.purgeKey!();
      await expectFailure(p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion), ['key_destroyed']);
      expect((await p.describe()).state).toBe('key_deleted');
    });

    if (na.badCredentials === undefined) {
      it('rejected credentials are credentials_rejected (and describe says credentials_expired)', async () => {
        if (under.badCredentialsConfig === undefined) throw new Error(`fixture ${fixture.name} has no badCredentialsConfig and does not say why`);
        const p = provider(under.badCredentialsConfig);
        await expectFailure(p.wrap(randomBytes(32), aad), ['credentials_rejected']);
        const description = await p.describe().catch((e: unknown) => e);
        if (description instanceof CmkProviderError) expect(description.reason).toBe('credentials_rejected');
        else expect((description as { state: string }).state).toBe('credentials_expired');
      });
    }

    if (na.missingKey === undefined) {
      it('a key that does not exist is key_not_found', async () => {
        if (under.missingKeyConfig === undefined) throw new Error(`fixture ${fixture.name} has no missingKeyConfig and does not say why`);
        await expectFailure(provider(under.missingKeyConfig).wrap(randomBytes(32), aad), ['key_not_found']);
      });
    }
  });
}
