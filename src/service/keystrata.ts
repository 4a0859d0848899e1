import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.js';
import { zeroize } from '../core/bytes.js';
import { platformProviderFactory } from '../providers/platform/platform-provider.js';
import { ProviderRegistry } from '../providers/registry.js';
import { openStore } from '../store/open-store.js';
import type { Store } from '../store/store.js';
import { ensureAdminToken } from './admin-token.js';
import { systemClock, type Clock } from './clock.js';
import { KeyCache } from './key-cache.js';
import { createKeyHierarchy, type KeyMeta } from './key-hierarchy.js';
import { createKeyStatusService } from './key-status.js';
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
}

export function sqlitePath(config: Pick<Config, 'dataDir'>): string {
  return join(config.dataDir, 'keystrata.db');
}

export async function openConfiguredStore(config: Config): Promise<Store> {
  if (config.databaseUrl === undefined) mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  return openStore({ databaseUrl: config.databaseUrl, sqlitePath: sqlitePath(config) });
}

export async function openKeystrata(config: Config, options: OpenOptions = {}): Promise<Keystrata> {
  const clock = options.clock ?? systemClock;
  const store = options.store ?? (await openConfiguredStore(config));
  try {
    const root = await prepareRootKey(config, store);
    const admin = await ensureAdminToken(store, config.adminToken);
    const platform = platformProviderFactory(root.platformWrapKey);
    const providers = new ProviderRegistry([platform]);
    const cache = new KeyCache<KeyMeta>({ maxEntries: config.keyCacheMaxEntries, ttlMs: config.keyCacheTtlSeconds * 1000, clock });
    // Expired keys are zeroed within half a TTL (at most 30 s) even if nobody looks them up again.
    const sweeper = setInterval(() => cache.sweep(), Math.min(config.keyCacheTtlSeconds * 500, 30_000));
    sweeper.unref();
    const hierarchy = createKeyHierarchy({
      store,
      cache,
      providers,
      clock,
      hourlyPeriodSeconds: config.hourlyKeyPeriodSeconds,
      scopeIndexSize: config.keyCacheMaxEntries * 4,
    });
    return {
      store,
      clock,
      cache,
      workspaces: createWorkspaceService({ store, platform, clock }),
      crypto: createScopedCrypto({ hierarchy }),
      objects: createVaultObjects({ store, hierarchy, clock }),
      keyStatus: createKeyStatusService({
        store,
        clock,
        currentHourStart: hierarchy.currentHourStart,
        cacheStats: () => cache.stats(),
        hourlyPeriodSeconds: config.hourlyKeyPeriodSeconds,
      }),
      adminTokenHashes: admin.acceptedHashes,
      generatedAdminToken: admin.generatedToken,
      rootKeyCreated: root.created,
      async close() {
        clearInterval(sweeper);
        cache.clear();
        await providers.close();
        zeroize(root.platformWrapKey);
        await store.close();
      },
    };
  } catch (error) {
    await store.close();
    throw error;
  }
}
