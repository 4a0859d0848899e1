import { timingSafeEqual } from 'node:crypto';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { newId, randomKey, zeroize } from '../core/bytes.js';
import { ekWrapAad } from '../core/wrapped-key.js';
import { KeystrataError, type ErrorCode } from '../errors.js';
import { publicConfig, sealSecrets } from '../providers/config-secrets.js';
import { PLATFORM_PROVIDER, type PlatformConfig } from '../providers/platform/platform-provider.js';
import { isCmkProviderError, type CmkFailureReason, type CmkProvider } from '../providers/provider.js';
import type { ProviderRegistry } from '../providers/registry.js';
import { StoreConflictError, type CmkHealthRecord, type CmkRecord, type KeyRecord, type RepackRecord, type Store } from '../store/store.js';
import type { ChangeAudit } from './audit/audit-event.js';
import type { Clock } from './clock.js';
import type { KeyHierarchy } from './key-hierarchy.js';
import { repackView, type RepackView } from './repack.js';
import { reasonText } from './provider-failures.js';
import type { EnvironmentContext } from './workspaces.js';

/** What `GET …/cmk` shows: never a secret field, with the last health-probe result. */
export interface CmkView {
  readonly id: string;
  readonly provider: string;
  readonly state: CmkRecord['state'];
  readonly createdAt: Date;
  /** The provider config without its secret fields (empty for platform-managed CMKs). */
  readonly config: Readonly<Record<string, unknown>>;
  /** Names of the secret fields that are set (their values are never shown). */
  readonly secretFields: readonly string[];
  /** The CMK version that wraps the environment key now. */
  readonly keyVersion: string | null;
  readonly health: Omit<CmkHealthRecord, 'cmkId'> | null;
  /** The environment's unfinished repack, else its last one, else null. */
  readonly repack: RepackView | null;
}

export interface CmkChange {
  readonly provider: string;
  readonly config?: Readonly<Record<string, unknown>> | undefined;
  /**
   * Also replace the environment key: a new EK under the new CMK, and every key under the old EK
   * re-wrapped under it by a background repack (src/service/repack.ts).
   */
  readonly rotateEnvironmentKey?: boolean | undefined;
}

/** Test-and-save failures: what the customer must fix (422) or retry (503). */
const TEST_FAILURE_CODE: Record<CmkFailureReason, ErrorCode> = {
  credentials_rejected: 'cmk_credentials_rejected',
  permission_denied: 'cmk_permission_denied',
  key_disabled: 'cmk_key_disabled',
  key_not_found: 'cmk_key_not_found',
  key_pending_deletion: 'cmk_key_pending_deletion',
  key_destroyed: 'cmk_key_not_found',
  key_expired: 'cmk_key_expired',
  throttled: 'cmk_throttled',
  timeout: 'cmk_unreachable',
  unreachable: 'cmk_unreachable',
  invalid_ciphertext: 'cmk_test_failed',
};

export interface CmkServiceDeps {
  readonly store: Pick<Store, 'getActiveCmk' | 'getCmk' | 'getActiveEk' | 'getCmkHealth' | 'replaceCmk' | 'rotateEnvironmentKey' | 'getRepack'>;
  readonly listActiveCmks: Store['listActiveCmks'];
  readonly appendAudit: Store['appendAudit'];
  /** How long a customer-managed CMK must stay before it can be replaced (0 = no limit). */
  readonly replaceIntervalHours: number;
  readonly providers: Pick<ProviderRegistry, 'factory' | 'names' | 'openConfig' | 'evict'>;
  readonly hierarchy: Pick<KeyHierarchy, 'withKeyById' | 'forgetEnvironmentKey' | 'adoptEnvironmentKey'>;
  readonly platform: { provision(identity: { cmkId: string; environmentId: string }): PlatformConfig };
  readonly secretsKey: Buffer;
  readonly clock: Clock;
  /** Probe a CMK right after it was saved, so `GET …/cmk` shows its health at once. */
  readonly probe?: (cmk: CmkRecord) => Promise<unknown>;
  /** Start the repack of a rotation now on this node (not awaited; the scheduler would find it anyway). */
  readonly startRepack?: () => void;
}

export type CmkService = ReturnType<typeof createCmkService>;

export function createCmkService(deps: CmkServiceDeps) {
  const { store, providers, hierarchy, clock } = deps;

  async function activeCmk(environmentId: string): Promise<CmkRecord> {
    const cmk = await store.getActiveCmk(environmentId);
    // The active CMK is the one the active EK hangs from: none means the EK itself is disabled,
    // scheduled for destruction or destroyed (docs/operations.md), which the caller can act on.
    if (!cmk) {
      throw new KeystrataError('key_disabled', 'The environment key is not active (disabled, scheduled for destruction or destroyed); its CMK cannot be changed or shown now.');
    }
    return cmk;
  }

  async function view(cmk: CmkRecord): Promise<CmkView> {
    const secretFields = providers.factory(cmk.provider)?.secretFields ?? [];
    const [health, ek, repack] = await Promise.all([store.getCmkHealth(cmk.id), store.getActiveEk(cmk.environmentId), store.getRepack(cmk.environmentId)]);
    const shown = cmk.provider === PLATFORM_PROVIDER ? {} : publicConfig(cmk.config, secretFields);
    const { cmkId: _id, ...healthView } = health ?? { cmkId: '' };
    return {
      id: cmk.id,
      provider: cmk.provider,
      state: cmk.state,
      createdAt: cmk.createdAt,
      config: shown,
      secretFields: secretFields.filter((field) => cmk.config[field] !== undefined),
      keyVersion: ek?.wrappingKeyVersion ?? null,
      health: health ? (healthView as Omit<CmkHealthRecord, 'cmkId'>) : null,
      repack: repack ? repackView(repack) : null,
    };
  }

  /** The config checked against the provider's own schema; the first bad field named, never a value. */
  function checkedConfig(schema: TSchema, config: unknown): Readonly<Record<string, unknown>> {
    if (Value.Check(schema, config)) return config as Readonly<Record<string, unknown>>;
    const first = Value.Errors(schema, config).First();
    const path = first?.path.replace(/^\//, '').replace(/\//g, '.') ?? '';
    const field = path === '' ? 'config' : `config.${path}`;
    throw new KeystrataError('invalid_request', `${field} ${first?.message ?? 'is invalid'}.`, { field });
  }

  /**
   * The live round trip that gates every save: wrap a random key with the new CMK, unwrap it, and
   * compare. Any failure is reported as what the customer has to fix; nothing is saved.
   */
  async function testRoundTrip(provider: CmkProvider, cmkId: string): Promise<void> {
    const probe = randomKey();
    const aad = Buffer.from(`keystrata cmk test-and-save\0${cmkId}`, 'utf8');
    let back: Buffer | undefined;
    try {
      const wrapped = await provider.wrap(probe, aad);
      back = await provider.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion);
      if (back.length !== probe.length || !timingSafeEqual(back, probe)) {
        throw new KeystrataError('cmk_test_failed', `The ${provider.name} key store returned a different key than it was given; not saved.`);
      }
    } catch (error) {
      throw testFailure(error, provider.name);
    } finally {
      zeroize(probe);
      zeroize(back);
    }
  }

  function testFailure(error: unknown, providerName: string): KeystrataError {
    if (!isCmkProviderError(error)) {
      if (error instanceof KeystrataError) return error;
      return new KeystrataError('cmk_test_failed', `The ${providerName} key store could not be used; nothing was saved.`, { cause: error });
    }
    const code = TEST_FAILURE_CODE[error.reason];
    return new KeystrataError(code, `Test-and-save failed: ${reasonText(error.reason)} (${providerName}). Nothing was saved.`, {
      details: { reason: error.reason },
      logDetail: error.message,
      cause: error,
    });
  }

  /** A config the provider refuses at open (a module not allowed, a host outside its cloud …) is the caller's 400. */
  function openForTest(name: string, config: Readonly<Record<string, unknown>>, identity: { cmkId: string; environmentId: string }): CmkProvider {
    try {
      return providers.openConfig(name, config, identity);
    } catch (error) {
      if (error instanceof KeystrataError && (error.code === 'configuration_invalid' || error.code === 'invalid_request')) {
        const field = error.field === undefined ? 'config' : error.field.startsWith('config') ? error.field : `config.${error.field}`;
        throw new KeystrataError('invalid_request', error.message, { field });
      }
      throw error;
    }
  }

  return {
    async get(env: EnvironmentContext): Promise<CmkView> {
      // With no active EK (the new one disabled mid-repack, say) the repack's new CMK is shown, so
      // its progress and pausedReason stay visible; otherwise that is a 423 like every CMK route.
      const environmentId = env.environment.id;
      const current = await store.getActiveCmk(environmentId);
      if (current) return view(current);
      const repack = await store.getRepack(environmentId);
      const target = repack && repack.state !== 'done' ? await store.getCmk(repack.toCmkId) : undefined;
      return view(target ?? (await activeCmk(environmentId)));
    },

    /**
     * Test-and-save: the new CMK must wrap and unwrap live before anything is stored; then the EK is
     * re-wrapped under it and the environment switched over in one transaction. Data already
     * written stays readable: nothing below the EK changes.
     */
    /**
     * Test-and-save from the API. Replacing a customer-managed CMK is allowed once per
     * `replaceIntervalHours` per environment (a CMK change re-wraps the environment's keys, and a
     * compromised admin swapping keys back and forth should stand out, not blend in).
     */
    async put(env: EnvironmentContext, change: CmkChange, audit: ChangeAudit): Promise<CmkView> {
      const current = await activeCmk(env.environment.id);
      if (current.provider !== PLATFORM_PROVIDER && deps.replaceIntervalHours > 0) {
        const allowedAt = current.createdAt.getTime() + deps.replaceIntervalHours * 3_600_000;
        if (clock.now() < allowedAt) {
          const retryAfterSeconds = Math.ceil((allowedAt - clock.now()) / 1000);
          throw new KeystrataError(
            'cmk_replace_too_soon',
            `This environment's customer-managed CMK was set ${new Date(current.createdAt).toISOString()}; it can be replaced again from ${new Date(allowedAt).toISOString()}.`,
            { details: { allowedAt: new Date(allowedAt).toISOString(), retryAfterSeconds } },
          );
        }
      }
      return replace(env, change, audit);
    },

    /**
     * `POST …/cmk/rotate`. Platform-managed: a new platform CMK, the environment key re-wrapped
     * under it. Customer-managed: rotation happens at the customer's key store; this asks it for
     * its current version now and re-wraps the environment key if it moved (what the health probe
     * does on its own schedule).
     */
    async rotate(env: EnvironmentContext, audit: ChangeAudit): Promise<CmkView> {
      const current = await activeCmk(env.environment.id);
      if (current.provider === PLATFORM_PROVIDER) return replace(env, { provider: PLATFORM_PROVIDER }, audit);
      const before = await store.getActiveEk(env.environment.id);
      await deps.probe?.(current);
      const after = await store.getActiveEk(env.environment.id);
      // The request's own entry (the re-wrap itself, if any, is audited by the probe as ek.rewrap).
      await deps.appendAudit(
        await audit({
          environment: env,
          target: { cmkId: current.id, provider: current.provider, fromVersion: before?.wrappingKeyVersion ?? '', toVersion: after?.wrappingKeyVersion ?? '' },
        }),
      );
      return view(await activeCmk(env.environment.id));
    },

    /** Platform-managed CMKs older than `maxAgeDays` get a new one (the scheduler calls this daily). */
    async rotateAgedPlatformCmks(maxAgeDays: number, systemAudit: (environmentId: string) => Promise<{ env: EnvironmentContext; audit: ChangeAudit } | undefined>): Promise<number> {
      const cutoff = clock.now() - maxAgeDays * 86_400_000;
      const others = providers.names.filter((name) => name !== PLATFORM_PROVIDER);
      let rotated = 0;
      let afterId: string | undefined;
      for (;;) {
        const page = await deps.listActiveCmks({ excludeProviders: others, limit: 100, afterId });
        for (const cmk of page) {
          if (cmk.createdAt.getTime() > cutoff) continue;
          const target = await systemAudit(cmk.environmentId);
          if (!target) continue;
          // Two nodes may try at once: the store's compare-and-set lets one win; the other's
          // version_conflict is expected and ignored.
          await replace(target.env, { provider: PLATFORM_PROVIDER }, target.audit).then(
            () => rotated++,
            () => undefined,
          );
        }
        if (page.length < 100) return rotated;
        afterId = page[page.length - 1]!.id;
      }
    },
  };

  async function replace(env: EnvironmentContext, change: CmkChange, audit: ChangeAudit): Promise<CmkView> {
      const environmentId = env.environment.id;
      const factory = providers.factory(change.provider);
      if (!factory) {
        throw new KeystrataError('invalid_request', `provider must be one of: ${providers.names.join(', ')}.`, { field: 'provider' });
      }
      const cmkId = newId();
      const identity = { cmkId, environmentId };
      let clearConfig: Readonly<Record<string, unknown>>;
      let storedConfig: Record<string, unknown>;
      if (change.provider === PLATFORM_PROVIDER) {
        if (change.config !== undefined && Object.keys(change.config).length > 0) {
          throw new KeystrataError('invalid_request', 'A platform-managed CMK takes no config: keystrata generates it.', { field: 'config' });
        }
        clearConfig = { ...deps.platform.provision(identity) };
        storedConfig = { ...clearConfig };
      } else {
        clearConfig = checkedConfig(factory.configSchema, change.config ?? {});
        storedConfig = sealSecrets(clearConfig, factory.secretFields, deps.secretsKey, identity);
      }

      const current = await activeCmk(environmentId);
      const ek = await store.getActiveEk(environmentId);
      if (!ek) throw new KeystrataError('integrity_check_failed', 'The environment has no active environment key.');
      await refuseDuringRepack(environmentId);

      const provider = openForTest(change.provider, clearConfig, identity);
      let material: Buffer | undefined;
      try {
        await testRoundTrip(provider, cmkId);
        // The EK itself, unwrapped through the current CMK (or the cache), re-wrapped by the new one.
        material = await hierarchy.withKeyById(environmentId, ek.id, (key) => Buffer.from(key.material));
        const cmk: CmkRecord = { id: cmkId, environmentId, provider: change.provider, config: storedConfig, state: 'active', createdAt: new Date(clock.now()) };
        if (change.rotateEnvironmentKey === true) return await rotateEnvironmentKey(env, current, ek, provider, cmk, audit);
        const wrapped = await provider.wrap(material, ekWrapAad({ environmentId, ekId: ek.id, cmkId })).catch((error: unknown) => {
          throw testFailure(error, change.provider);
        });
        const entry = await audit({
          environment: env,
          target: { environment: env.environment.name, cmkId, provider: change.provider, previousCmkId: current.id, previousProvider: current.provider, keyVersion: wrapped.keyVersion },
        });
        const replaced = await store.replaceCmk(
          { environmentId, fromCmkId: current.id, cmk, ekId: ek.id, wrapped: wrapped.ciphertext, wrappingKeyVersion: wrapped.keyVersion },
          entry,
        );
        if (!replaced) {
          throw new KeystrataError('version_conflict', 'The environment CMK was changed by another request meanwhile; read it and retry.');
        }
        providers.evict(current.id);
        await deps.probe?.(cmk).catch(() => undefined);
        return view(cmk);
      } finally {
        zeroize(material);
        await provider.close();
      }
  }

  /** One CMK change at a time: while a repack runs, both its CMKs are needed exactly as they are. */
  async function refuseDuringRepack(environmentId: string): Promise<void> {
    const repack = await store.getRepack(environmentId);
    if (repack && repack.state !== 'done') throw repackInProgress(repack);
  }

  function repackInProgress(repack: RepackRecord): KeystrataError {
    return new KeystrataError(
      'repack_in_progress',
      `The environment key is being rotated (repack ${repack.id}, ${repack.state}, ${repack.done} of ${repack.total} keys); the CMK can be changed again when it is done.`,
      { details: { repackId: repack.id, state: repack.state, done: repack.done, total: repack.total } },
    );
  }

  /**
   * The rotation flavour of test-and-save: a new EK wrapped by the new CMK becomes active with the
   * new CMK in one transaction that also starts the repack; the old EK and CMK stay decrypt-only
   * (and required) until every key under the old EK has moved. The old EK was unwrapped just
   * before (by the caller), so the repack is known to be able to start.
   */
  async function rotateEnvironmentKey(env: EnvironmentContext, current: CmkRecord, ek: KeyRecord, provider: CmkProvider, cmk: CmkRecord, audit: ChangeAudit): Promise<CmkView> {
    const environmentId = env.environment.id;
    const ekId = newId();
    const fresh = randomKey();
    try {
      const wrapped = await provider.wrap(fresh, ekWrapAad({ environmentId, ekId, cmkId: cmk.id })).catch((error: unknown) => {
        throw testFailure(error, cmk.provider);
      });
      const repackId = newId();
      const entry = await audit({
        environment: env,
        target: {
          environment: env.environment.name,
          cmkId: cmk.id,
          provider: cmk.provider,
          previousCmkId: current.id,
          previousProvider: current.provider,
          keyVersion: wrapped.keyVersion,
          rotateEnvironmentKey: 'true',
          ekId,
          previousEkId: ek.id,
          repackId,
        },
      });
      const newEk: KeyRecord = {
        id: ekId,
        environmentId,
        kind: 'ek',
        scopeId: null,
        hourStart: null,
        parentId: cmk.id,
        wrapped: wrapped.ciphertext,
        wrappingKeyVersion: wrapped.keyVersion,
        state: 'active',
        createdAt: cmk.createdAt,
      };
      const started = await store
        .rotateEnvironmentKey({ environmentId, fromCmkId: current.id, fromEkId: ek.id, cmk, ek: newEk, repackId, startedAt: cmk.createdAt }, entry)
        .catch(async (error: unknown) => {
          if (error instanceof StoreConflictError) {
            const running = await store.getRepack(environmentId);
            if (running && running.state !== 'done') throw repackInProgress(running);
          }
          throw error;
        });
      if (!started) throw new KeystrataError('version_conflict', 'The environment CMK was changed by another request meanwhile; read it and retry.');
      hierarchy.forgetEnvironmentKey(environmentId);
      hierarchy.adoptEnvironmentKey(newEk, fresh);
      deps.startRepack?.();
      await deps.probe?.(cmk).catch(() => undefined);
      return view(cmk);
    } finally {
      zeroize(fresh);
    }
  }
}
