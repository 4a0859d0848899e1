import { openSqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';

export interface OpenStoreOptions {
  /** postgres://… → PostgreSQL; unset → embedded SQLite at `sqlitePath`. */
  readonly databaseUrl?: string | undefined;
  readonly sqlitePath: string;
  /** PostgreSQL schema (created if missing); tests use one per file to run in parallel. */
  readonly postgresSchema?: string | undefined;
  /** PostgreSQL connections per node. */
  readonly postgresPoolSize?: number | undefined;
}

/** Opens (and migrates) the configured store. */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  if (options.databaseUrl === undefined) return openSqliteStore({ path: options.sqlitePath });
  // Loaded only when configured, so an SQLite deployment never loads pg.
  const { openPostgresStore } = await import('./postgres/postgres-store.js');
  return openPostgresStore({ url: options.databaseUrl, schema: options.postgresSchema, poolSize: options.postgresPoolSize });
}
