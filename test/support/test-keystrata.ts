import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig, type Config } from '../../src/config.js';
import { buildApp } from '../../src/http/app.js';
import type { App } from '../../src/http/types.js';
import type { Clock } from '../../src/service/clock.js';
import { openKeystrata, sqlitePath, type Keystrata } from '../../src/service/keystrata.js';
import { openStore } from '../../src/store/open-store.js';
import type { Store } from '../../src/store/store.js';

/**
 * One way for every test to get a keystrata: a fresh data directory, a fresh store (SQLite file or
 * a private PostgreSQL schema), the HTTP app for inject(), and a known admin token.
 */

export type StoreKind = 'sqlite' | 'postgres';

export const TEST_DATABASE_URL = process.env.KEYSTRATA_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const ALL_STORES: readonly StoreKind[] = ['sqlite', 'postgres'];

/**
 * Backends to run store-dependent suites on: KEYSTRATA_TEST_STORES=sqlite,postgres (default both).
 * The one place the variable is read. Under CI every backend runs: a run that left PostgreSQL out
 * must not look green.
 */
export function testStores(): readonly StoreKind[] {
  const raw = process.env.KEYSTRATA_TEST_STORES;
  if (raw === undefined || raw.trim() === '') return ALL_STORES;
  const names = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const unknown = names.filter((n) => !(ALL_STORES as readonly string[]).includes(n));
  if (unknown.length > 0) throw new Error(`KEYSTRATA_TEST_STORES names unknown store(s): ${unknown.join(', ')} (known: sqlite, postgres)`);
  const ci = process.env.CI === 'true' || process.env.CI === '1';
  if (ci && ALL_STORES.some((kind) => !names.includes(kind))) {
    throw new Error('KEYSTRATA_TEST_STORES leaves a store out, which CI does not allow: every backend runs in CI.');
  }
  return ALL_STORES.filter((kind) => names.includes(kind));
}

export const TEST_ADMIN_TOKEN = 'test-admin-token-' + 'a'.repeat(32);

export interface TestStoreHandle {
  readonly kind: StoreKind;
  readonly dataDir: string;
  /** Set for postgres: the private schema. */
  readonly schema: string | undefined;
  open(): Promise<Store>;
  /** Remove the data directory and drop the schema. */
  destroy(): Promise<void>;
}

/** A place for a store that can be opened (and reopened, to test restarts) several times. */
export function testStoreHandle(kind: StoreKind): TestStoreHandle {
  const dataDir = mkdtempSync(join(tmpdir(), 'keystrata-test-'));
  const schema = kind === 'postgres' ? `ks_test_${randomBytes(6).toString('hex')}` : undefined;
  return {
    kind,
    dataDir,
    schema,
    open: () =>
      openStore(
        kind === 'postgres'
          ? { databaseUrl: TEST_DATABASE_URL, sqlitePath: '', postgresSchema: schema }
          : { sqlitePath: sqlitePath({ dataDir }) },
      ),
    async destroy() {
      rmSync(dataDir, { recursive: true, force: true });
      if (schema !== undefined) {
        const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
        await client.connect();
        try {
          await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        } finally {
          await client.end();
        }
      }
    },
  };
}

export interface TestKeystrata {
  readonly ks: Keystrata;
  readonly app: App;
  readonly config: Config;
  readonly handle: TestStoreHandle;
  readonly token: string;
  /** Authorization header for inject(). */
  readonly auth: { readonly authorization: string };
  /** Close app and keystrata (the data stays: reopen with openTestKeystrata({ handle })). */
  close(): Promise<void>;
  /** Close and delete everything. */
  destroy(): Promise<void>;
}

export interface TestKeystrataOptions {
  readonly store?: StoreKind;
  /** Reuse an existing data directory / schema (restart tests). */
  readonly handle?: TestStoreHandle;
  readonly clock?: Clock;
  /** Extra environment variables for loadConfig. */
  readonly env?: Readonly<Record<string, string>>;
  /** 'manual': repacks run only when the test calls ks.runRepacks() (default: scheduled, as in production). */
  readonly repacks?: 'scheduled' | 'manual';
  /** Wrap the opened store (to observe or delay calls); the wrapper is what keystrata uses. */
  readonly wrapStore?: (store: Store) => Store;
}

export async function openTestKeystrata(options: TestKeystrataOptions = {}): Promise<TestKeystrata> {
  const handle = options.handle ?? testStoreHandle(options.store ?? 'sqlite');
  const config = loadConfig(
    {
      KEYSTRATA_DATA_DIR: handle.dataDir,
      KEYSTRATA_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      KEYSTRATA_LOG_LEVEL: 'silent',
      // Tests send many bad credentials on purpose; the brute-force brake has its own tests.
      KEYSTRATA_AUTH_FAILURES_PER_MINUTE: '100000',
      // Tests switch CMKs back and forth; the replacement interval has its own test.
      KEYSTRATA_CMK_REPLACE_INTERVAL_HOURS: '0',
      ...options.env,
    },
    handle.dataDir,
  );
  const opened = await handle.open();
  const ks = await openKeystrata(config, { store: options.wrapStore ? options.wrapStore(opened) : opened, defaultMetrics: false, probeCmks: false, scheduleRepacks: options.repacks !== 'manual', ...(options.clock ? { clock: options.clock } : {}) });
  const app = await buildApp(ks, config);
  await app.ready();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await app.close();
    await ks.close();
  };
  return {
    ks,
    app,
    config,
    handle,
    token: TEST_ADMIN_TOKEN,
    auth: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
    close,
    async destroy() {
      await close();
      await handle.destroy();
    },
  };
}
