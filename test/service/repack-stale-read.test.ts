import { afterAll, describe, expect, it } from 'vitest';
import type { KeyRecord, Store } from '../../src/store/store.js';
import { createWorkspace, decrypt, encrypt, envUrl, ok } from '../support/http-helpers.js';
import { openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

/**
 * A key row read just before the repack moved it names the old EK as its parent; if the repack then
 * finishes (destroying the old EK) before the load reaches that parent, the load must read the row
 * again and go through the new EK — a record must never be unreadable because of a repack.
 */

for (const store of testStores()) {
  describe(`a key read before the repack moved it (${store})`, () => {
    let t: TestKeystrata | undefined;
    /** The next getKey of this key id answers this (stale) row once. */
    let stale: KeyRecord | undefined;
    let served = 0;

    const withStaleRead = (real: Store): Store =>
      new Proxy(real, {
        get(target, property, receiver) {
          if (property === 'getKey') {
            return async (environmentId: string, keyId: string) => {
              if (stale !== undefined && keyId === stale.id) {
                const row = stale;
                stale = undefined;
                served++;
                return row;
              }
              return target.getKey(environmentId, keyId);
            };
          }
          const value: unknown = Reflect.get(target, property, receiver);
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      });

    afterAll(async () => {
      await t?.destroy();
    });

    it('is read again under its new parent after the old EK was destroyed', async () => {
      t = await openTestKeystrata({ store, repacks: 'manual', wrapStore: withStaleRead });
      const ws = (await createWorkspace(t, 'stale-read')).id;
      const environmentId = (await t.ks.workspaces.resolveEnvironment(ws, 'production')).environment.id;
      const sealed = await encrypt(t, ws, { type: 'connection', id: 'c1' }, Buffer.from('still readable'));
      const before = (await t.ks.store.getKey(environmentId, sealed.keyId))!;

      const saved = await ok(t, 'PUT', `${envUrl(ws)}/cmk`, { provider: 'platform', rotateEnvironmentKey: true });
      await t.ks.runRepacks();
      expect((await t.ks.store.getKey(environmentId, before.parentId))?.state).toBe('destroyed');
      expect((await t.ks.store.getKey(environmentId, sealed.keyId))?.parentId).toBe(saved.repack.toEkId);

      t.ks.cache.clear();
      stale = before; // the row as it was before the repack moved it
      const response = await decrypt(t, ws, sealed.ciphertext);
      expect(served).toBe(1);
      expect(response.statusCode, response.body).toBe(200);
      expect(Buffer.from(response.json().plaintext, 'base64').toString()).toBe('still readable');
    });
  });
}
