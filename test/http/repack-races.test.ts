import { afterAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/store.js';
import { call, createWorkspace, decrypt, encrypt, envUrl, ok, type Body } from '../support/http-helpers.js';
import { openTestKeystrata, testStoreHandle, testStores, type TestKeystrata } from '../support/test-keystrata.js';

// Interleavings a review found around environment key rotation, each once a real bug: another node
// that remembered the old EK after the repack finished; enabling the two EKs of a called-off shred
// in the "wrong" order; a shred racing a rotation.

for (const store of testStores()) {
  describe(`rotation races (${store})`, () => {
    const opened: TestKeystrata[] = [];
    afterAll(async () => {
      for (const t of opened.reverse()) await t.destroy();
    });
    async function node(options: Parameters<typeof openTestKeystrata>[0] = {}): Promise<TestKeystrata> {
      const t = await openTestKeystrata({ store, repacks: 'manual', ...options });
      opened.push(t);
      return t;
    }
    const encryptBody = (id: string) => ({ scope: { type: 'connection', id }, plaintext: Buffer.from(id).toString('base64') });

    it('another node that remembered the old EK creates new keys under the new one after the repack destroyed the old EK', async () => {
      const handle = testStoreHandle(store);
      const nodeA = await node({ handle });
      const nodeB = await node({ handle: { ...handle, destroy: async () => undefined } });
      const ws = (await createWorkspace(nodeA, 'stale-ek-done')).id;
      const environmentId = (await nodeA.ks.workspaces.resolveEnvironment(ws, 'production')).environment.id;
      await encrypt(nodeB, ws, { type: 'connection', id: 'first' }, Buffer.from('x')); // B learns the EK
      const saved = await ok(nodeA, 'PUT', `${envUrl(ws)}/cmk`, { provider: 'platform', rotateEnvironmentKey: true });
      await nodeA.ks.runRepacks();
      expect((await nodeA.ks.store.getKey(environmentId, saved.repack.fromEkId))?.state).toBe('destroyed');
      for (const id of ['second', 'third']) {
        const response = await call(nodeB, 'POST', `${envUrl(ws)}/encrypt`, encryptBody(id));
        expect(response.statusCode, response.body).toBe(200);
        expect((await nodeB.ks.store.getKey(environmentId, response.json().keyId))?.parentId).toBe(saved.repack.toEkId);
      }
    });

    it('calling off a mid-repack shred: whichever EK is enabled first, the new one ends active and the old one decrypt-only', async () => {
      const t = await node();
      const ws = (await createWorkspace(t, 'enable-order')).id;
      const environmentId = (await t.ks.workspaces.resolveEnvironment(ws, 'production')).environment.id;
      const before = await encrypt(t, ws, { type: 'connection', id: 'c0' }, Buffer.from('before'));
      const saved = await ok(t, 'PUT', `${envUrl(ws)}/cmk`, { provider: 'platform', rotateEnvironmentKey: true });
      const { fromEkId, toEkId } = saved.repack as { fromEkId: string; toEkId: string };
      await ok(t, 'POST', `${envUrl(ws)}/shred`, {});
      const keyUrl = (id: string) => `${envUrl(ws)}/keys/${id}`;
      for (const id of [toEkId, fromEkId]) await ok(t, 'POST', `${keyUrl(id)}/cancel-destruction`, {});
      expect(await ok(t, 'POST', `${keyUrl(fromEkId)}/enable`, {})).toMatchObject({ state: 'decrypt-only' }); // the old one first
      expect(await ok(t, 'POST', `${keyUrl(toEkId)}/enable`, {})).toMatchObject({ state: 'active' });
      await t.ks.runRepacks();
      expect((await t.ks.store.getRepack(environmentId))?.state).toBe('done');
      expect((await t.ks.store.getActiveEk(environmentId))?.id).toBe(toEkId);
      t.ks.cache.clear();
      expect((await call(t, 'POST', `${envUrl(ws)}/encrypt`, encryptBody('after'))).statusCode).toBe(200);
      expect((await decrypt(t, ws, before.ciphertext)).statusCode).toBe(200);
    });

    it('a shred racing a rotation takes every EK of the environment, the new one included', async () => {
      let duringShred: (() => Promise<void>) | undefined;
      // The rotation commits right after the shred has read the active EK, before it changes it.
      const rotateInTheGap = (real: Store): Store =>
        new Proxy(real, {
          get(target, property, receiver) {
            if (property === 'getActiveEk') {
              return async (environmentId: string) => {
                const row = await target.getActiveEk(environmentId);
                const hook = duringShred;
                duringShred = undefined;
                if (hook) await hook();
                return row;
              };
            }
            const value: unknown = Reflect.get(target, property, receiver);
            return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
          },
        });
      const t = await node({ wrapStore: rotateInTheGap });
      const ws = (await createWorkspace(t, 'shred-race')).id;
      const environmentId = (await t.ks.workspaces.resolveEnvironment(ws, 'production')).environment.id;
      await encrypt(t, ws, { type: 'connection', id: 'c0' }, Buffer.from('x'));
      let saved: Body;
      duringShred = async () => {
        saved = await ok(t, 'PUT', `${envUrl(ws)}/cmk`, { provider: 'platform', rotateEnvironmentKey: true });
      };
      await ok(t, 'POST', `${envUrl(ws)}/shred`, {});
      const { fromEkId, toEkId } = saved!.repack as { fromEkId: string; toEkId: string };
      expect((await t.ks.store.getKey(environmentId, fromEkId))?.state).toBe('scheduled-destruction');
      expect((await t.ks.store.getKey(environmentId, toEkId))?.state).toBe('scheduled-destruction');
      t.ks.cache.clear();
      expect((await call(t, 'POST', `${envUrl(ws)}/encrypt`, encryptBody('after-shred'))).statusCode).toBe(423);
    });
  });
}
