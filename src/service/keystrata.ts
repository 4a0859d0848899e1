import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.js';
import { newId, zeroize } from '../core/bytes.js';
import { platformProviderFactory } from '../providers/platform/platform-provider.js';
import { providerFactories } from '../providers/factories.js';
import { ProviderRegistry } from '../providers/registry.js';
import { openStore } from '../store/open-store.js';
import { EVERY_ENVIRONMENT, type AuditAppend, type Store } from '../store/store.js';
import { ensureAdminToken } from './admin-token.js';
import { systemClock, type Clock } from './clock.js';
import { KeyCache } from './key-cache.js';
import { createKeyHierarchy, type KeyMeta } from './key-hierarchy.js';
import { createKeyStatusService } from './key-status.js';
import { createAuthenticator, type Authenticator } from './access/authenticator.js';
import { createClientService, type ClientService } from './access/clients.js';
import { createRateLimiter, type RateLimiter } from './access/rate-limiter.js';
import { createUsageTracker, type UsageTracker } from './access/usage-tracker.js';
import { SYSTEM_ACTOR, type ChangeAudit } from './audit/audit-event.js';
import { createAuditKeys } from './audit/audit-keys.js';
import { createAuditLog, type AuditLog } from './audit/audit-log.js';
import { systemChangeEntry } from './audit/system-change.js';
import { createCmkHealthMonitor, type CmkHealthMonitor } from './cmk-health.js';
import { createCmkService, type CmkService } from './cmks.js';
import { createKeyLifecycle, type KeyLifecycle } from './key-lifecycle.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createRepacker, type Repacker } from './repack.js';
import { prepareRootKey } from './root-key.js';
import { createScopedCrypto } from './scoped-crypto.js';
import { createVaultObjects } from './vault-objects.js';
import { createWorkspaceService } from './workspaces.js';

/**
 * The service-side composition root: config → store → root key → providers → key cache →
 * hierarchy → use cases. The HTTP app (src/http/app.ts) and the CLI sit on top of this object.
 */
export interface Keystrata {
  readonly store: Store;
  readonly clock: Clock;
  readonly workspaces: ReturnType<typeof createWorkspaceService>;
  readonly crypto: ReturnType<typeof createScopedCrypto>;
  readonly objects: ReturnType<typeof createVaultObjects>;
  readonly keyStatus: ReturnType<typeof createKeyStatusService>;
  readonly cache: KeyCache<KeyMeta>;
  readonly clients: ClientService;
  /** Disable, enable, destroy keys; crypto-shred contexts and environments. */
  readonly lifecycle: KeyLifecycle;
  /** Run the automatic platform CMK rotation now (the scheduler does it hourly). */
  rotatePlatformCmks(): Promise<number>;
  /** Customer-managed CMKs: view, test-and-save. */
  readonly cmks: CmkService;
  readonly cmkHealth: CmkHealthMonitor;
  /** Environment key rotations in progress (repack). */
  readonly repacks: Repacker;
  /** Work on unfinished repacks now, if no other node is (what the scheduler does every few seconds). */
  runRepacks(): Promise<number | undefined>;
  readonly providers: ProviderRegistry;
  readonly authenticator: Authenticator;
  readonly audit: AuditLog;
  readonly usage: UsageTracker;
  /** Per-client request rates and per-address authentication failures. */
  readonly rateLimiter: RateLimiter;
  readonly metrics: Metrics;
  /** SHA-256 hashes of the tokens that grant admin access. */
  readonly adminTokenHashes: readonly string[];
  /** Present only on the start that created it: print it once, then forget it. */
  readonly generatedAdminToken: string | undefined;
  readonly rootKeyCreated: boolean;
  close(): Promise<void>;
}

export interface OpenOptions {
  readonly clock?: Clock;
  /** Use this store instead of opening one from the config (tests). Closed by close(). */
  readonly store?: Store;
  /** Process metrics (event loop, memory …) in /metrics; tests that open many instances turn them off. */
  readonly defaultMetrics?: boolean;
  /** Run the periodic CMK health probe (default true; tests drive ks.cmkHealth.runOnce() themselves). */
  readonly probeCmks?: boolean;
  /** Look for unfinished repacks every KEYSTRATA_REPACK_INTERVAL_SECONDS and start one at once after a rotation (default true). */
  readonly scheduleRepacks?: boolean;
}

export function sqlitePath(config: Pick<Config, 'dataDir'>): string {
  return join(config.dataDir, 'keystrata.db');
}

export async function openConfiguredStore(config: Config): Promise<Store> {
  if (config.databaseUrl === undefined) mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  return openStore({ databaseUrl: config.databaseUrl, postgresSchema: config.databaseSchema, sqlitePath: sqlitePath(config) });
}

export async function openKeystrata(config: Config, options: OpenOptions = {}): Promise<Keystrata> {
  const clock = options.clock ?? systemClock;
  const store = options.store ?? (await openConfiguredStore(config));
  try {
    const root = await prepareRootKey(config, store);
    const admin = await ensureAdminToken(store, config.adminToken);
    const platform = platformProviderFactory(root.platformWrapKey);
    const cache = new KeyCache<KeyMeta>({ maxEntries: config.keyCacheMaxEntries, ttlMs: config.keyCacheTtlSeconds * 1000, clock });
    const metrics = createMetrics({ cache, defaultMetrics: options.defaultMetrics ?? true });
    const providers = new ProviderRegistry(providerFactories(platform, { pkcs11Modules: config.pkcs11Modules }), {
      callTimeoutMs: config.cmkCallTimeoutMs,
      secretsKey: root.cmkSecretsKey,
      observe: metrics.observeProviderCall,
    });
    // Expired keys are zeroed within half a TTL (at most 30 s) even if nobody looks them up again.
    const sweeper = setInterval(() => cache.sweep(), Math.min(config.keyCacheTtlSeconds * 500, 30_000));
    sweeper.unref();
    // Bound once the audit log exists (it is built on the hierarchy): a log key's retirement is audited.
    let logKeyRetirementAudit: (environmentId: string, keyId: string) => Promise<AuditAppend | undefined> = async () => undefined;
    const hierarchy = createKeyHierarchy({
      store,
      cache,
      providers,
      clock,
      hourlyPeriodSeconds: config.hourlyKeyPeriodSeconds,
      scopeIndexSize: config.keyCacheMaxEntries * 4,
      logKeyRotationMs: config.logKeyRotationDays * 86_400_000,
      logKeyRetirementAudit: (environmentId, keyId) => logKeyRetirementAudit(environmentId, keyId),
    });
    // Every node forgets which EK is active when a key of the environment is retired or re-enabled (a
    // rotation on another node announces the old EK's retirement as decrypt-only), so new keys are
    // not even tried under a retired EK. A disabled or destroyed EK stays remembered: its own state
    // is then the answer (423, 410). Missed notices (EVERY_ENVIRONMENT) forget everything.
    const forgetEks = store.watchKeyStates((event) => {
      if (event.environmentId === EVERY_ENVIRONMENT || event.state === 'decrypt-only' || event.state === 'active') {
        hierarchy.forgetEnvironmentKey(event.environmentId);
      }
    });
    const crypto = createScopedCrypto({ hierarchy });
    const auditKeys = createAuditKeys(root.auditSecret);
    const audit = createAuditLog({ store, crypto, keys: auditKeys, clock });
    // Sealed under the workspace audit key (no environment context): sealing under the log key being
    // retired would recurse into the rotation.
    logKeyRetirementAudit = (environmentId, keyId) => systemChangeEntry({ store, audit }, environmentId, 'key.rotate', { keyId, kind: 'log' }, 'rotation');
    const usage = createUsageTracker({ store, flushIntervalMs: 2000 });
    const authenticator = createAuthenticator({
      store,
      clock,
      adminTokenHashes: admin.acceptedHashes,
      jwtKey: root.jwtKey,
      jwt: { defaultTtlSeconds: config.jwtTtlSeconds, maxLifetimeSeconds: config.jwtMaxLifetimeSeconds, clockSkewSeconds: config.jwtClockSkewSeconds },
    });
    const clients = createClientService({
      store,
      clock,
      defaults: { tokenTtlSeconds: config.tokenTtlSeconds, rotationGraceSeconds: config.tokenRotationGraceSeconds },
      onChange: (clientId) => authenticator.invalidateClient(clientId),
      pendingUsage: (clientId) => usage.pending(clientId),
    });
    const cmkHealth = createCmkHealthMonitor({
      store,
      providers,
      hierarchy,
      audit,
      metrics,
      clock,
      intervalSeconds: config.cmkProbeIntervalSeconds,
    });
    if (options.probeCmks ?? true) cmkHealth.start();
    const lifecycle = createKeyLifecycle({
      store,
      cache,
      audit,
      clock,
      hourlyPeriodSeconds: config.hourlyKeyPeriodSeconds,
      defaultWaitingDays: config.destructionWaitingDays,
    });
    // Scheduled destructions are carried out within a minute of their time, by one node at a time
    // (runExclusive: a PostgreSQL advisory lock); each destruction is also a compare-and-set.
    const destroyer = setInterval(() => void store.runExclusive('key-destruction', () => lifecycle.destroyDue()).catch(() => undefined), 60_000);
    destroyer.unref();
    const repacks = createRepacker({
      store,
      hierarchy,
      audit,
      clock,
      batchSize: config.repackBatchSize,
      batchPauseMs: config.repackBatchPauseMs,
      metrics,
    });
    // One node at a time works on repacks (advisory lock); each batch is a compare-and-set anyway.
    const runRepacks = () => store.runExclusive('repack', () => repacks.runOnce());
    const scheduleRepacks = options.scheduleRepacks ?? true;
    const repackTicker = scheduleRepacks ? setInterval(() => void runRepacks().catch(() => undefined), config.repackIntervalSeconds * 1000) : undefined;
    repackTicker?.unref();
    const cmks = createCmkService({
      store,
      listActiveCmks: (options) => store.listActiveCmks(options),
      appendAudit: (append) => store.appendAudit(append),
      replaceIntervalHours: config.cmkReplaceIntervalHours,
      providers,
      hierarchy,
      platform,
      secretsKey: root.cmkSecretsKey,
      clock,
      probe: (cmk) => cmkHealth.probe(cmk),
      ...(scheduleRepacks ? { startRepack: () => void runRepacks().catch(() => undefined) } : {}),
    });
    const workspaces = createWorkspaceService({ store, platform, clock });
    /** The environment and a ChangeAudit for work keystrata does on its own (actor `system`). */
    const systemChange = (action: string) => async (environmentId: string) => {
      const record = await store.getEnvironment(environmentId);
      if (!record) return undefined;
      const env = await workspaces.resolveEnvironment(record.workspaceId, record.name);
      const change: ChangeAudit = (details) =>
        audit.forChange(
          {
            workspaceId: record.workspaceId,
            environmentId: record.id,
            actor: SYSTEM_ACTOR,
            action,
            target: { ...details.target },
            sourceIp: 'keystrata',
            requestId: `scheduler-${newId()}`,
            outcome: 'success',
          },
          details.environment,
        );
      return { env, audit: change };
    };
    // Platform-managed CMKs are rotated when older than KEYSTRATA_PLATFORM_CMK_ROTATION_DAYS (checked
    // hourly by one node at a time; the store's compare-and-set also lets only one rotation win).
    const rotator = setInterval(
      () =>
        void store
          .runExclusive('platform-cmk-rotation', () => cmks.rotateAgedPlatformCmks(config.platformCmkRotationDays, systemChange('cmk.rotate')))
          .catch(() => undefined),
      3_600_000,
    );
    rotator.unref();
    return {
      store,
      clock,
      cache,
      clients,
      cmks,
      lifecycle,
      cmkHealth,
      repacks,
      runRepacks,
      providers,
      authenticator,
      audit,
      usage,
      rateLimiter: createRateLimiter({ clock, maxKeys: 100_000 }),
      metrics,
      workspaces,
      rotatePlatformCmks: () => cmks.rotateAgedPlatformCmks(config.platformCmkRotationDays, systemChange('cmk.rotate')),
      crypto,
      objects: createVaultObjects({ store, hierarchy, clock }),
      keyStatus: createKeyStatusService({
        store,
        clock,
        currentHourStart: hierarchy.currentHourStart,
        hourlyPeriodSeconds: config.hourlyKeyPeriodSeconds,
      }),
      adminTokenHashes: admin.acceptedHashes,
      generatedAdminToken: admin.generatedToken,
      rootKeyCreated: root.created,
      async close() {
        clearInterval(sweeper);
        clearInterval(destroyer);
        clearInterval(rotator);
        clearInterval(repackTicker);
        forgetEks();
        await repacks.stop();
        lifecycle.close();
        await cmkHealth.stop();
        // Pending audit entries and usage counts go to the store before it closes.
        await audit.flush();
        await usage.close();
        cache.clear();
        await providers.close();
        zeroize(root.platformWrapKey);
        zeroize(root.jwtKey);
        zeroize(root.cmkSecretsKey);
        auditKeys.close();
        await store.close();
      },
    };
  } catch (error) {
    await store.close();
    throw error;
  }
}
