import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCOPE_TYPES, createWorkspace, encrypt, envUrl, ok } from '../support/http-helpers.js';
import { dumpTables, encodingsOf, rawDataDirBytes } from '../support/store-dump.js';
import { TEST_ADMIN_TOKEN, openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

/**
 * "The store only ever sees wrapped keys and ciphertext" (src/store/store.ts). Checked from the
 * outside: distinctive plaintexts and secret values are written through the API, then searched for
 * in the database's raw bytes (SQLite: every file of the data directory, WAL included) and in a
 * text dump of every row of every table (both stores). A control string that IS stored in clear
 * (an object name) proves the search can find things.
 */

for (const store of testStores()) {
  describe(`no plaintext reaches the store (${store})`, () => {
    const tag = randomBytes(6).toString('hex');
    const plaintexts = SCOPE_TYPES.map((type) => `PLAINTEXT-CANARY-${type}-${tag}`);
    const values = [`VALUE-CANARY-v1-${tag}`, `VALUE-CANARY-v2-${tag}`];
    const control = `control-object-name-${tag}`;
    let t: TestKeystrata;

    beforeAll(async () => {
      t = await openTestKeystrata({ store });
      const ws = (await createWorkspace(t, 'canaries')).id;
      for (const [i, type] of SCOPE_TYPES.entries()) await encrypt(t, ws, { type, id: `${type}-canary` }, Buffer.from(plaintexts[i]!));
      const object = await ok(t, 'POST', `${envUrl(ws)}/objects`, { name: control, value: values[0], context: { org: 'canary' } }, 201);
      await ok(t, 'PUT', `${envUrl(ws)}/objects/${object.id}`, { value: values[1], expectedVersion: 1 });
      // Read back, so any caching or re-writing on read has happened too.
      expect((await ok(t, 'GET', `${envUrl(ws)}/objects/${object.id}`, undefined)).value).toBe(values[1]);
      expect((await ok(t, 'GET', `${envUrl(ws)}/objects/${object.id}/versions/1`, undefined)).value).toBe(values[0]);
    });
    afterAll(async () => {
      await t?.destroy();
    });

    const secrets = () => [...plaintexts, ...values];

    it('no row of any table contains a plaintext or secret value, in any common encoding', async () => {
      const dump = await dumpTables(t.handle);
      expect(dump).toContain(control);
      for (const secret of secrets()) {
        for (const encoded of encodingsOf(secret)) expect(dump.includes(encoded), `${secret} as ${encoded}`).toBe(false);
      }
      // The canary prefix alone must not be there either (a partially stored value).
      expect(dump).not.toContain('CANARY');
      expect(dump.toLowerCase()).not.toContain(Buffer.from('CANARY').toString('hex'));
    });

    it('no credential is stored in clear: not the admin token, not the root key', async () => {
      const dump = await dumpTables(t.handle);
      for (const encoded of encodingsOf(TEST_ADMIN_TOKEN)) expect(dump).not.toContain(encoded);
      const rootKey = Buffer.from(readFileSync(join(t.handle.dataDir, 'root.key'), 'utf8').trim(), 'base64');
      expect(rootKey).toHaveLength(32);
      expect(dump).not.toContain(rootKey.toString('hex'));
      expect(dump).not.toContain(rootKey.toString('base64'));
    });

    if (store === 'sqlite') {
      it('the SQLite files (database, WAL) do not contain the plaintexts, while open and after close', async () => {
        const check = () => {
          const raw = rawDataDirBytes(t.handle);
          expect(raw.includes(Buffer.from(control))).toBe(true);
          for (const secret of secrets()) {
            for (const encoded of encodingsOf(secret)) expect(raw.includes(Buffer.from(encoded)), secret).toBe(false);
          }
          expect(raw.includes(Buffer.from('CANARY'))).toBe(false);
        };
        check();
        await t.close();
        check();
      });
    }
  });
}
