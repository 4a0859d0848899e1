import type { Config } from '../config.js';
import { zeroize } from '../core/bytes.js';
import { ensureAdminToken } from './admin-token.js';
import { openConfiguredStore } from './keystrata.js';
import { prepareRootKey } from './root-key.js';

/**
 * `keystrata init`: create the data directory, root key and admin token without serving. Safe to
 * run again: an initialised data directory is left as it is.
 */
export async function initializeDataDir(config: Config): Promise<{ adminToken?: string; created: boolean }> {
  const store = await openConfiguredStore(config);
  try {
    const root = await prepareRootKey(config, store);
    zeroize(root.platformWrapKey);
    const admin = await ensureAdminToken(store, config.adminToken);
    const created = root.created || admin.generatedToken !== undefined;
    return admin.generatedToken === undefined ? { created } : { adminToken: admin.generatedToken, created };
  } finally {
    await store.close();
  }
}
