import { zeroize } from '../core/bytes.js';
import { ekWrapAad } from '../core/wrapped-key.js';
import { isCmkProviderError, type CmkDescription, type CmkFailureReason, type CmkHealthState } from '../providers/provider.js';
import type { ProviderRegistry } from '../providers/registry.js';
import { PLATFORM_PROVIDER } from '../providers/platform/platform-provider.js';
import type { CmkHealthRecord, CmkRecord, Store } from '../store/store.js';
import type { AuditLog } from './audit/audit-log.js';
import { systemChangeEntry } from './audit/system-change.js';
import type { Clock } from './clock.js';
import type { KeyHierarchy } from './key-hierarchy.js';
import type { Metrics } from './metrics.js';

/**
 * The health probe of customer-managed CMKs. Every `intervalSeconds`, each active CMK that is not
 * platform-managed is described by its provider (no wrap: a metadata read). The result is stored;
 * a state change is audited (in the same transaction) and counted. When the KMS has rotated the key
 * (its current version is not the one that wraps the EK), the EK is re-wrapped with the new
 * version — keystrata follows the customer's rotation without any action here. Old versions keep
 * decrypting: the EK row records the version that wrapped it.
 */

/** A provider failure during a probe, as a health state. */
const FAILURE_STATE: Record<CmkFailureReason, CmkHealthState> = {
  credentials_rejected: 'credentials_expired',
  permission_denied: 'permission_denied',
  key_disabled: 'key_disabled',
  key_not_found: 'key_deleted',
  key_pending_deletion: 'key_pending_deletion',
  key_destroyed: 'key_deleted',
  key_expired: 'key_expired',
  throttled: 'unreachable',
  timeout: 'unreachable',
  unreachable: 'unreachable',
  invalid_ciphertext: 'unreachable',
};

const EXPIRING_WITHIN_MS = 30 * 86_400_000;

export interface CmkHealthDeps {
  readonly store: Pick<Store, 'listActiveCmks' | 'putCmkHealth' | 'getActiveEk' | 'rewrapEk' | 'getEnvironment' | 'runExclusive'>;
  readonly providers: Pick<ProviderRegistry, 'forCmk'>;
  readonly hierarchy: Pick<KeyHierarchy, 'withKeyById'>;
  readonly audit: Pick<AuditLog, 'forChange'>;
  readonly metrics: Pick<Metrics, 'cmkHealth'>;
  readonly clock: Clock;
  readonly intervalSeconds: number;
}

export type CmkHealthMonitor = ReturnType<typeof createCmkHealthMonitor>;

export function createCmkHealthMonitor(deps: CmkHealthDeps) {
  const { store, providers, clock } = deps;
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;

  async function describe(cmk: CmkRecord): Promise<CmkDescription> {
    try {
      const described = await providers.forCmk(cmk).describe();
      // A key that still works but expires soon is a warning, not a failure.
      if (described.state === 'healthy' && described.expiresAt && described.expiresAt.getTime() - clock.now() < EXPIRING_WITHIN_MS) {
        return { ...described, state: described.expiresAt.getTime() <= clock.now() ? 'key_expired' : 'key_expiring' };
      }
      return described;
    } catch (error) {
      if (!isCmkProviderError(error)) return { state: 'unreachable', currentVersion: null, detail: 'the provider failed unexpectedly' };
      return { state: FAILURE_STATE[error.reason], currentVersion: null, detail: error.reason };
    }
  }

  function entryFor(cmk: CmkRecord, action: string, target: Record<string, string>) {
    return systemChangeEntry({ store, audit: deps.audit }, cmk.environmentId, action, { cmkId: cmk.id, provider: cmk.provider, ...target }, 'probe');
  }

  /** Re-wrap the EK when the KMS's current version is not the one that wrapped it. */
  async function followRotation(cmk: CmkRecord, currentVersion: string): Promise<void> {
    const ek = await store.getActiveEk(cmk.environmentId);
    if (!ek || ek.parentId !== cmk.id || ek.wrappingKeyVersion === currentVersion) return;
    let material: Buffer | undefined;
    try {
      material = await deps.hierarchy.withKeyById(cmk.environmentId, ek.id, (key) => Buffer.from(key.material));
      const wrapped = await providers.forCmk(cmk).wrap(material, ekWrapAad({ environmentId: cmk.environmentId, ekId: ek.id, cmkId: cmk.id }));
      if (wrapped.keyVersion === ek.wrappingKeyVersion) return;
      const entry = await entryFor(cmk, 'ek.rewrap', { ekId: ek.id, fromVersion: ek.wrappingKeyVersion ?? '', toVersion: wrapped.keyVersion });
      await store.rewrapEk(
        { environmentId: cmk.environmentId, ekId: ek.id, cmkId: cmk.id, expectedWrapped: ek.wrapped, wrapped: wrapped.ciphertext, wrappingKeyVersion: wrapped.keyVersion },
        entry,
      );
    } finally {
      zeroize(material);
    }
  }

  /** Probe one CMK now; returns the stored health. */
  async function probe(cmk: CmkRecord): Promise<CmkHealthRecord> {
    const described = await describe(cmk);
    const now = new Date(clock.now());
    const record: CmkHealthRecord = {
      cmkId: cmk.id,
      state: described.state,
      since: now,
      checkedAt: now,
      currentVersion: described.currentVersion,
      expiresAt: described.expiresAt ?? null,
      deletionAt: described.deletionAt ?? null,
      detail: described.detail ?? null,
    };
    const entry = await entryFor(cmk, 'cmk.health', { state: described.state });
    const stored = await store.putCmkHealth(record, entry);
    deps.metrics.cmkHealth(cmk.id, cmk.provider, described.state, stored.since.getTime() === now.getTime());
    const healthyEnough = described.state === 'healthy' || described.state === 'key_expiring';
    if (healthyEnough && described.currentVersion !== null) await followRotation(cmk, described.currentVersion).catch(() => undefined);
    return stored;
  }

  async function probeAll(): Promise<void> {
    let afterId: string | undefined;
    for (;;) {
      const page = await store.listActiveCmks({ excludeProviders: [PLATFORM_PROVIDER], limit: 100, afterId });
      for (const cmk of page) await probe(cmk).catch(() => undefined);
      if (page.length < 100) return;
      afterId = page[page.length - 1]!.id;
    }
  }

  return {
    probe,
    /** One full round (skipped if the previous one is still running). */
    async runOnce(): Promise<void> {
      if (running) return running;
      running = probeAll().finally(() => {
        running = undefined;
      });
      return running;
    },
    start(): void {
      if (timer) return;
      // One node probes at a time (a PostgreSQL advisory lock); the others skip this round.
      timer = setInterval(() => void store.runExclusive('cmk-health-probe', () => this.runOnce()).catch(() => undefined), deps.intervalSeconds * 1000);
      timer.unref();
    },
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = undefined;
      await running;
    },
  };
}
