import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKeystrataError } from '../../src/errors.js';
import { ManualClock } from '../../src/service/clock.js';
import { SCOPE_TYPES, allByteValues, createWorkspace, decrypt, encrypt, envUrl, keyStatus, ok, type Scope } from '../support/http-helpers.js';
import { dumpTables } from '../support/store-dump.js';
import { openTestKeystrata, testStoreHandle, testStores, type TestKeystrata, type TestStoreHandle } from '../support/test-keystrata.js';

/**
 * Restarts: everything written before a restart reads back after it; the root key file is private;
 * a wrong or missing root key is refused with root_key_mismatch — and refusing changes nothing.
 */

interface Written {
  readonly ws: string;
  readonly ciphertexts: { scope: Scope; ciphertext: string; plaintext: Buffer }[];
  readonly objectId: string;
  readonly counts: Record<string, number>;
}

async function expectRootKeyMismatch(open: Promise<TestKeystrata>): Promise<void> {
  const outcome = await open.then(
    async (t) => {
      await t.close();
      return 'opened';
    },
    (error: unknown) => error,
  );
  expect(isKeystrataError(outcome) ? outcome.code : outcome).toBe('root_key_mismatch');
}

for (const store of testStores()) {
  describe(`restart (${store})`, () => {
    const clock = new ManualClock(Date.UTC(2026, 6, 4, 18, 45));
    let handle: TestStoreHandle;
    let written: Written;
    const rootKeyFile = () => join(handle.dataDir, 'root.key');

    beforeAll(async () => {
      handle = testStoreHandle(store);
      const t = await openTestKeystrata({ handle, clock });
      try {
        expect(t.ks.rootKeyCreated).toBe(true);
        const ws = (await createWorkspace(t, 'durable')).id;
        await ok(t, 'POST', `/v1/workspaces/${ws}/environments`, { name: 'staging' }, 201);
        const ciphertexts: Written['ciphertexts'] = [];
        for (const type of SCOPE_TYPES) {
          const scope: Scope = { type, id: `${type}-before-restart` };
          const plaintext = Buffer.concat([Buffer.from(`${type}:`), allByteValues()]);
          ciphertexts.push({ scope, plaintext, ciphertext: (await encrypt(t, ws, scope, plaintext)).ciphertext });
        }
        const object = await ok(t, 'POST', `${envUrl(ws)}/objects`, { name: 'kept', value: 'value one', context: { org: 'o' }, metadata: { m: 1 } }, 201);
        await ok(t, 'PUT', `${envUrl(ws)}/objects/${object.id}`, { value: 'value two', expectedVersion: 1 });
        written = { ws, ciphertexts, objectId: object.id, counts: (await keyStatus(t, ws)).counts };
      } finally {
        await t.close();
      }
    });
    afterAll(async () => {
      await handle?.destroy();
    });

    it('creates the root key file with mode 0600', () => {
      const mode = statSync(rootKeyFile()).mode & 0o777;
      expect(mode.toString(8)).toBe('600');
      expect(Buffer.from(readFileSync(rootKeyFile(), 'utf8').trim(), 'base64')).toHaveLength(32);
    });

    it('reads everything back after a restart on the same data', async () => {
      const t = await openTestKeystrata({ handle, clock });
      try {
        expect(t.ks.rootKeyCreated).toBe(false);
        expect(t.ks.generatedAdminToken).toBeUndefined();
        const workspace = await ok(t, 'GET', `/v1/workspaces/${written.ws}`, undefined);
        expect(workspace.environments.map((e: { name: string }) => e.name).sort()).toEqual(['production', 'staging']);
        for (const { scope, ciphertext, plaintext } of written.ciphertexts) {
          const response = await decrypt(t, written.ws, ciphertext, scope);
          expect(response.statusCode, scope.type).toBe(200);
          expect(Buffer.from(response.json().plaintext, 'base64').equals(plaintext)).toBe(true);
        }
        const base = `${envUrl(written.ws)}/objects`;
        expect(await ok(t, 'GET', `${base}/${written.objectId}`, undefined)).toMatchObject({ version: 2, value: 'value two', metadata: { m: 1 } });
        expect((await ok(t, 'GET', `${base}?name=kept`, undefined)).value).toBe('value two');
        expect((await ok(t, 'GET', `${base}/${written.objectId}/versions/1`, undefined)).value).toBe('value one');
        // Existing keys are reused, not recreated.
        await encrypt(t, written.ws, { type: 'job', id: 'job-before-restart' }, Buffer.from('again'));
        await encrypt(t, written.ws, { type: 'connection', id: 'connection-before-restart' }, Buffer.from('again'));
        expect((await keyStatus(t, written.ws)).counts).toEqual(written.counts);
        // And it still writes.
        await ok(t, 'PUT', `${base}/${written.objectId}`, { value: 'value three', expectedVersion: 2 });
      } finally {
        await t.close();
      }
    });

    it('refuses another root key (KEYSTRATA_ROOT_KEY) with root_key_mismatch and changes nothing', async () => {
      const before = await dumpTables(handle);
      const otherKey = randomBytes(32).toString('base64');
      await expectRootKeyMismatch(openTestKeystrata({ handle, clock, env: { KEYSTRATA_ROOT_KEY: otherKey } }));
      expect(await dumpTables(handle)).toBe(before);
    });

    it('accepts the same root key given by KEYSTRATA_ROOT_KEY instead of the file', async () => {
      const sameKey = readFileSync(rootKeyFile(), 'utf8').trim();
      const t = await openTestKeystrata({ handle, clock, env: { KEYSTRATA_ROOT_KEY: sameKey, KEYSTRATA_ROOT_KEY_FILE: join(handle.dataDir, 'absent.key') } });
      try {
        const { scope, ciphertext } = written.ciphertexts[0]!;
        expect((await decrypt(t, written.ws, ciphertext, scope)).statusCode).toBe(200);
      } finally {
        await t.close();
      }
      expect(existsSync(join(handle.dataDir, 'absent.key'))).toBe(false);
    });

    it('refuses to start when root.key was deleted from an initialised database, creates no new key and changes nothing', async () => {
      const before = await dumpTables(handle);
      const backup = join(handle.dataDir, 'root.key.backup');
      renameSync(rootKeyFile(), backup);
      try {
        await expectRootKeyMismatch(openTestKeystrata({ handle, clock }));
        // A second attempt is refused the same way: the first did not "repair" anything.
        await expectRootKeyMismatch(openTestKeystrata({ handle, clock }));
        expect(existsSync(rootKeyFile())).toBe(false);
        expect(await dumpTables(handle)).toBe(before);
      } finally {
        renameSync(backup, rootKeyFile());
      }
      // With the original key restored, everything is readable again.
      const t = await openTestKeystrata({ handle, clock });
      try {
        for (const { scope, ciphertext } of written.ciphertexts) expect((await decrypt(t, written.ws, ciphertext, scope)).statusCode).toBe(200);
        expect((await ok(t, 'GET', `${envUrl(written.ws)}/objects/${written.objectId}`, undefined)).value).toBe('value three');
      } finally {
        await t.close();
      }
    });
  });
}
