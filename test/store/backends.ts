/**
 * The store backends the contract suite runs against. Each test location is isolated: a fresh
 * SQLite file in a temporary directory, or a fresh PostgreSQL schema dropped afterwards.
 *
 * KEYSTRATA_TEST_STORES=sqlite,postgres selects backends (default: both). PostgreSQL is at
 * KEYSTRATA_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test); when it is not
 * reachable its tests fail — leaving it out is a decision the user makes with the variable above.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { openStore } from '../../src/store/open-store.js';
import { POSTGRES_MIGRATIONS } from '../../src/store/postgres/migrations.js';
import { SQLITE_MIGRATIONS } from '../../src/store/sqlite/migrations.js';
import type { Store } from '../../src/store/store.js';
import { TEST_DATABASE_URL, testStores } from '../support/test-keystrata.js';

export interface StoreLocation {
  /** Opens (and migrates) a store on this location; may be called several times. */
  open(): Promise<Store>;
  /** The versions recorded in schema_migrations, read directly from the database. */
  appliedMigrations(): Promise<number[]>;
  /** Applies only the first `count` migrations to the empty location, as an older build would have. */
  migrateOnly(count: number): Promise<void>;
  destroy(): Promise<void>;
  /** PostgreSQL: the location's schema, for tests that open their own session on it. */
  readonly schema?: string;
}

export interface StoreBackend {
  readonly name: 'sqlite' | 'postgres';
  newLocation(): Promise<StoreLocation>;
}

export { TEST_DATABASE_URL };

const sqlite: StoreBackend = {
  name: 'sqlite',
  async newLocation() {
    const dir = await mkdtemp(join(tmpdir(), 'keystrata-store-'));
    // A directory that does not exist yet: opening must create it.
    const path = join(dir, 'data', 'keystrata.db');
    return {
      open: () => openStore({ sqlitePath: path }),
      async appliedMigrations() {
        const db = new Database(path, { readonly: true });
        try {
          return db.prepare<[], { version: number }>('SELECT version FROM schema_migrations ORDER BY version').all().map((r) => r.version);
        } finally {
          db.close();
        }
      },
      async migrateOnly(count) {
        await mkdir(dirname(path), { recursive: true });
        const db = new Database(path);
        try {
          db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT');
          for (const m of SQLITE_MIGRATIONS.slice(0, count)) {
            db.exec(m.sql);
            db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(m.version, Date.now());
          }
        } finally {
          db.close();
        }
      },
      destroy: () => rm(dir, { recursive: true, force: true }),
    };
  },
};

async function withClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const postgres: StoreBackend = {
  name: 'postgres',
  async newLocation() {
    const schema = `keystrata_test_${randomBytes(6).toString('hex')}`;
    return {
      schema,
      open: () => openStore({ databaseUrl: TEST_DATABASE_URL, sqlitePath: '/nonexistent/unused.db', postgresSchema: schema }),
      appliedMigrations: () =>
        withClient(async (client) => {
          const result = await client.query<{ version: number }>(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`);
          return result.rows.map((r) => r.version);
        }),
      migrateOnly: (count) =>
        withClient(async (client) => {
          await client.query(`CREATE SCHEMA "${schema}"`);
          await client.query(`SET search_path = "${schema}"`);
          await client.query('CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)');
          for (const m of POSTGRES_MIGRATIONS.slice(0, count)) {
            await client.query(m.sql);
            await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())', [m.version]);
          }
        }),
      destroy: () => withClient(async (client) => void (await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`))),
    };
  },
};

const ALL: readonly StoreBackend[] = [sqlite, postgres];

/** The backends KEYSTRATA_TEST_STORES selects (testStores: one reading of it, refused in CI if partial). */
export const BACKENDS: readonly StoreBackend[] = ALL.filter((backend) => testStores().includes(backend.name));
