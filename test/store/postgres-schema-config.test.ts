import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openConfiguredStore } from '../../src/service/keystrata.js';
import { TEST_DATABASE_URL, testStores } from '../support/test-keystrata.js';

// KEYSTRATA_DATABASE_SCHEMA puts a deployment in its own PostgreSQL schema: its tables, its
// advisory locks and its NOTIFY channel are its own, so several deployments can share a database.

for (const store of testStores().filter((kind) => kind === 'postgres')) {
  describe(`KEYSTRATA_DATABASE_SCHEMA (${store})`, () => {
    const schema = `ks_cfg_${randomBytes(5).toString('hex')}`;
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });

    afterAll(async () => {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
      await admin.end();
    });

    it('creates and uses the tables in that schema', async () => {
      await admin.connect();
      const opened = await openConfiguredStore(loadConfig({ KEYSTRATA_DATABASE_URL: TEST_DATABASE_URL, KEYSTRATA_DATABASE_SCHEMA: schema }, '/tmp'));
      try {
        await opened.putSetting('deployment', schema);
        const tables = await admin.query<{ table_name: string }>('SELECT table_name FROM information_schema.tables WHERE table_schema = $1', [schema]);
        expect(tables.rows.map((r) => r.table_name)).toEqual(expect.arrayContaining(['keys', 'repacks', 'audit_entries', 'settings']));
        const stored = await admin.query<{ value: string }>(`SELECT value FROM ${schema}.settings WHERE name = 'deployment'`);
        expect(stored.rows[0]?.value).toBe(schema);
      } finally {
        await opened.close();
      }
    });
  });
}
