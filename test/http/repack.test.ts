import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { KeyRecord } from '../../src/store/store.js';
import { VaultTransitEmulator } from '../emulators/vault-transit/vault-transit-emulator.js';
import { keystrataPolicy } from '../emulators/vault-transit/vault-acl.js';
import { call, createWorkspace, decrypt, encrypt, envUrl, expectError, ok, type Body } from '../support/http-helpers.js';
import { openTestKeystrata, testStores, testStoreHandle, type TestKeystrata } from '../support/test-keystrata.js';

// Environment key rotation (PUT …/cmk with rotateEnvironmentKey) and its background repack, over
// HTTP on both stores, with the Vault transit emulator holding both the old and the new CMK so that
// each can be taken away on its own: every record written before stays readable before, during and
// after; new keys go under the new EK at once; the old CMK is needed until the repack is done and
// not after; a new CMK that fails mid-repack pauses it with a reason, and it resumes by itself.

const OLD_KEY = 'cmk-old';
const NEW_KEY = 'cmk-new';

interface Written {
  readonly records: { readonly ciphertext: string; readonly plaintext: string }[];
  readonly objects: { readonly id: string; readonly value: string }[];
}

for (const store of testStores()) {
  describe(`environment key rotation and repack (${store})`, () => {
    let vault: VaultTransitEmulator;
    let token: string;
    const bothKeys = keystrataPolicy(OLD_KEY, NEW_KEY);
    const open: TestKeystrata[] = [];

    beforeAll(async () => {
      vault = await VaultTransitEmulator.start();
      for (const name of [OLD_KEY, NEW_KEY]) await vault.admin('POST', `transit/keys/${name}`, { type: 'aes256-gcm96' });
      vault.acl.writePolicy('keystrata', bothKeys);
      token = vault.acl.createToken({ policies: ['keystrata'] });
    }, 60_000);
    afterAll(async () => {
      for (const t of open) await t.destroy();
      await vault?.close();
    });
    beforeEach(() => vault.acl.writePolicy('keystrata', bothKeys));

    async function start(env: Record<string, string> = {}, repacks: 'manual' | 'scheduled' = 'manual', handle = testStoreHandle(store)): Promise<TestKeystrata> {
      const t = await openTestKeystrata({ handle, repacks, env: { KEYSTRATA_REPACK_BATCH_SIZE: '5', KEYSTRATA_REPACK_INTERVAL_SECONDS: '1', ...env } });
      open.push(t);
      return t;
    }

    const vaultConfig = (keyName: string) => ({ provider: 'vault-transit', config: { address: vault.address, token, keyName } });
    const cmkUrl = (ws: string) => `${envUrl(ws)}/cmk`;

    /** A workspace whose production environment is on the old Vault key, with data under every kind of key. */
    async function populated(t: TestKeystrata, name: string): Promise<{ ws: string; environmentId: string; written: Written }> {
      const ws = (await createWorkspace(t, name)).id;
      await ok(t, 'PUT', cmkUrl(ws), vaultConfig(OLD_KEY));
      const records: Written['records'][number][] = [];
      for (let i = 0; i < 12; i++) {
        const plaintext = `connection secret ${i}`;
        records.push({ plaintext, ciphertext: (await encrypt(t, ws, { type: 'connection', id: `conn-${i}` }, Buffer.from(plaintext))).ciphertext });
      }
      for (let i = 0; i < 3; i++) {
        const plaintext = `job output ${i}`;
        records.push({ plaintext, ciphertext: (await encrypt(t, ws, { type: 'job', id: `job-${i}` }, Buffer.from(plaintext))).ciphertext });
      }
      const objects: Written['objects'][number][] = [];
      for (let i = 0; i < 4; i++) {
        const value = `object value ${i}`;
        const created = await ok(t, 'POST', `${envUrl(ws)}/objects`, { name: `object-${i}`, value, context: { tenant: `t${i % 2}` } }, 201);
        objects.push({ id: created.id, value });
      }
      const environmentId = (await t.ks.workspaces.resolveEnvironment(ws, 'production')).environment.id;
      return { ws, environmentId, written: { records, objects } };
    }

    /** Everything written is readable — through the store, not the cache. */
    async function expectAllReadable(t: TestKeystrata, ws: string, written: Written): Promise<void> {
      t.ks.cache.clear();
      for (const record of written.records) {
        const response = await decrypt(t, ws, record.ciphertext);
        expect(response.statusCode, response.body).toBe(200);
        expect(Buffer.from(response.json().plaintext, 'base64').toString()).toBe(record.plaintext);
      }
      for (const object of written.objects) expect((await ok(t, 'GET', `${envUrl(ws)}/objects/${object.id}`, undefined)).value).toBe(object.value);
    }

    /** Keys directly under an EK, as the repack sees them. */
    const keysUnder = (t: TestKeystrata, environmentId: string, ekId: string): Promise<readonly KeyRecord[]> => t.ks.store.listKeysUnder(environmentId, ekId, 10_000);

    async function waitFor(t: TestKeystrata, ws: string, until: (repack: Body) => boolean, what: string): Promise<Body> {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const repack = (await ok(t, 'GET', cmkUrl(ws), undefined)).repack;
        if (repack && until(repack)) return repack;
        if (Date.now() > deadline) throw new Error(`timed out waiting for the repack to be ${what}: ${JSON.stringify(repack)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }

    it('rotates the environment key: every record stays readable before, during and after; the old CMK is needed until done and not after', async () => {
      const t = await start({ KEYSTRATA_REPACK_BATCH_PAUSE_MS: '120' });
      const { ws, environmentId, written } = await populated(t, 'rotate-ek');
      const oldEk = (await t.ks.store.getActiveEk(environmentId))!;
      const stats = await t.ks.store.keyStats(environmentId);
      const expectedTotal = stats.counts.hourly + stats.counts.connection + stats.counts.log + stats.counts.context;
      expect((await keysUnder(t, environmentId, oldEk.id)).length).toBe(expectedTotal);

      const saved = await ok(t, 'PUT', cmkUrl(ws), { ...vaultConfig(NEW_KEY), rotateEnvironmentKey: true });
      expect(saved.config).toMatchObject({ keyName: NEW_KEY });
      expect(saved.repack).toMatchObject({ state: 'running', done: 0, total: expectedTotal, fromEkId: oldEk.id, fromCmkId: oldEk.parentId, toCmkId: saved.id, finishedAt: null, pausedReason: null });
      const newEkId: string = saved.repack.toEkId;
      expect(newEkId).not.toBe(oldEk.id);
      expect((await t.ks.store.getActiveEk(environmentId))?.id).toBe(newEkId);
      expect((await t.ks.store.getKey(environmentId, oldEk.id))?.state).toBe('decrypt-only');

      // Before the repack has moved anything: all readable through the old EK; a new key goes under the new EK.
      await expectAllReadable(t, ws, written);
      const fresh = await encrypt(t, ws, { type: 'connection', id: 'after-rotation' }, Buffer.from('new data'));
      expect((await t.ks.store.getKey(environmentId, fresh.keyId))?.parentId).toBe(newEkId);
      // One CMK change at a time.
      const refused = expectError(await call(t, 'PUT', cmkUrl(ws), vaultConfig(OLD_KEY)), 409, 'repack_in_progress');
      expect(refused.details).toMatchObject({ state: 'running', total: expectedTotal });

      // During: some keys moved, some not — everything still opens.
      const run = t.ks.runRepacks();
      const midway = await waitFor(t, ws, (r) => r.done > 0 && r.done < r.total, 'part-way');
      expect(midway.state).toBe('running');
      await expectAllReadable(t, ws, written);
      await run;

      const done = (await ok(t, 'GET', cmkUrl(ws), undefined)).repack;
      expect(done).toMatchObject({ state: 'done', done: expectedTotal, total: expectedTotal, etaSeconds: 0, pausedReason: null });
      expect(Date.parse(done.finishedAt)).not.toBeNaN();
      expect(done.ratePerSecond).toBeGreaterThan(0);
      expect(await keysUnder(t, environmentId, oldEk.id)).toEqual([]);
      const metrics = (await call(t, 'GET', '/metrics')).body;
      expect(metrics).toMatch(new RegExp(`^keystrata_repack_keys_total ${expectedTotal}$`, 'm'));
      expect(metrics).toMatch(/^keystrata_repack_batches_total\{outcome="applied"\} [1-9]/m);
      expect((await keysUnder(t, environmentId, newEkId)).length).toBe(expectedTotal + 1);
      const retired = (await t.ks.store.getKey(environmentId, oldEk.id))!;
      expect(retired.state).toBe('destroyed');
      expect(retired.wrapped.length).toBe(0);
      await expectAllReadable(t, ws, written);

      // The old CMK is not needed any more: take keystrata's access to it away, everything still opens.
      vault.acl.writePolicy('keystrata', keystrataPolicy(NEW_KEY));
      await expectAllReadable(t, ws, written);
      expect((await decrypt(t, ws, fresh.ciphertext)).statusCode).toBe(200);

      // Audited: the change with its new EK, and the end of the repack (actor system); the chain verifies.
      const audit = await ok(t, 'GET', `/v1/workspaces/${ws}/audit?limit=1000`, undefined);
      const entries: Body[] = audit.items;
      expect(entries.filter((e) => e.unreadable !== undefined)).toEqual([]);
      expect(entries.find((e) => e.action === 'cmk.update' && e.target?.rotateEnvironmentKey === 'true')?.target).toMatchObject({ ekId: newEkId, previousEkId: oldEk.id, repackId: done.id });
      expect(entries.find((e) => e.action === 'repack.finish')).toMatchObject({ actor: { type: 'system' }, target: { repackId: done.id, fromEkId: oldEk.id, toEkId: newEkId } });
      expect(await ok(t, 'GET', `/v1/workspaces/${ws}/audit/verify`, undefined)).toMatchObject({ ok: true });
      // And the CMK can be changed again.
      vault.acl.writePolicy('keystrata', bothKeys);
      await ok(t, 'PUT', cmkUrl(ws), vaultConfig(OLD_KEY));
    }, 60_000);

    it('a rotation asks the key stores only what it must: test-and-save, one wrap of the new EK, one describe; the repack nothing (both EKs are held)', async () => {
      const t = await start();
      const { ws, written } = await populated(t, 'provider-calls'); // the old EK is in the cache now
      const before = vault.calls;
      await ok(t, 'PUT', cmkUrl(ws), { ...vaultConfig(NEW_KEY), rotateEnvironmentKey: true });
      // New key: encrypt + decrypt (test-and-save), encrypt (the new EK), key read + token lookup-self (the health probe's describe).
      expect(vault.calls - before).toBe(5);
      await t.ks.runRepacks();
      expect(vault.calls - before).toBe(5);
      expect((await ok(t, 'GET', cmkUrl(ws), undefined)).repack.state).toBe('done');
      await expectAllReadable(t, ws, written);
    }, 60_000);

    it('the new CMK becomes unavailable mid-repack: the repack pauses with a clear reason and resumes when it returns', async () => {
      const t = await start({ KEYSTRATA_REPACK_BATCH_PAUSE_MS: '150' }, 'scheduled');
      const { ws, environmentId, written } = await populated(t, 'pause-resume');
      await ok(t, 'PUT', cmkUrl(ws), { ...vaultConfig(NEW_KEY), rotateEnvironmentKey: true });
      await waitFor(t, ws, (r) => r.done > 0 && r.state === 'running', 'started');

      vault.acl.writePolicy('keystrata', keystrataPolicy(OLD_KEY)); // the customer takes the new key away
      t.ks.cache.clear();
      const paused = await waitFor(t, ws, (r) => r.state === 'paused', 'paused');
      expect(paused.pausedReason).toMatch(/^The new environment key \(through the new CMK\) cannot be used: .+ The repack resumes by itself when it can\.$/);
      expect(paused.pausedReason).not.toContain(token);
      expect(paused.etaSeconds).toBeNull();
      expect(paused.done).toBeLessThan(paused.total);
      // It stays paused (and nothing moves) while the key is away.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect((await ok(t, 'GET', cmkUrl(ws), undefined)).repack).toMatchObject({ state: 'paused', done: paused.done });
      expect((await t.ks.store.getRepack(environmentId))?.state).toBe('paused');

      vault.acl.writePolicy('keystrata', bothKeys);
      const finished = await waitFor(t, ws, (r) => r.state === 'done', 'done');
      expect(finished).toMatchObject({ done: finished.total, pausedReason: null });
      await expectAllReadable(t, ws, written);
    }, 60_000);

    it('a repack cut short by a shutdown is finished by the next start, with every record readable', async () => {
      const handle = testStoreHandle(store);
      const first = await start({ KEYSTRATA_REPACK_BATCH_PAUSE_MS: '150' }, 'scheduled', handle);
      const { ws, environmentId, written } = await populated(first, 'restart');
      await ok(first, 'PUT', cmkUrl(ws), { ...vaultConfig(NEW_KEY), rotateEnvironmentKey: true });
      const before = await waitFor(first, ws, (r) => r.done > 0 && r.done < r.total, 'part-way');
      await first.close();
      const reader = await handle.open();
      const stopped = (await reader.getRepack(environmentId))!;
      await reader.close();
      expect(stopped.state).toBe('running');
      expect(stopped.done).toBeGreaterThanOrEqual(before.done);
      expect(stopped.done).toBeLessThan(stopped.total);

      const second = await start({}, 'scheduled', handle);
      await waitFor(second, ws, (r) => r.state === 'done', 'done');
      await expectAllReadable(second, ws, written);
    }, 60_000);

    it('the old EK disabled mid-repack pauses it (naming the old side); enabled again it returns to decrypt-only and the repack finishes', async () => {
      const t = await start();
      const { ws, environmentId, written } = await populated(t, 'disable-old-ek');
      const oldEk = (await t.ks.store.getActiveEk(environmentId))!;
      await ok(t, 'PUT', cmkUrl(ws), { ...vaultConfig(NEW_KEY), rotateEnvironmentKey: true });
      expect(await ok(t, 'POST', `${envUrl(ws)}/keys/${oldEk.id}/disable`, {})).toMatchObject({ state: 'disabled' });
      await t.ks.runRepacks();
      const paused = (await ok(t, 'GET', cmkUrl(ws), undefined)).repack;
      expect(paused).toMatchObject({ state: 'paused', done: 0 });
      expect(paused.pausedReason).toMatch(/^The old environment key \(through the old CMK\) cannot be used: /);

      expect(await ok(t, 'POST', `${envUrl(ws)}/keys/${oldEk.id}/enable`, {})).toMatchObject({ state: 'decrypt-only' });
      expect((await t.ks.store.getActiveEk(environmentId))?.id).not.toBe(oldEk.id);
      await t.ks.runRepacks();
      expect((await ok(t, 'GET', cmkUrl(ws), undefined)).repack).toMatchObject({ state: 'done', pausedReason: null });
      await expectAllReadable(t, ws, written);
    }, 60_000);

    it('the new EK disabled mid-repack: GET …/cmk still shows the repack, paused with the new side named; enabled, it finishes', async () => {
      const t = await start();
      const { ws, environmentId, written } = await populated(t, 'disable-new-ek');
      const saved = await ok(t, 'PUT', cmkUrl(ws), { ...vaultConfig(NEW_KEY), rotateEnvironmentKey: true });
      await ok(t, 'POST', `${envUrl(ws)}/keys/${saved.repack.toEkId}/disable`, {});
      await t.ks.runRepacks();
      const shown = await ok(t, 'GET', cmkUrl(ws), undefined);
      expect(shown).toMatchObject({ id: saved.id, repack: { state: 'paused', done: 0 } });
      expect(shown.repack.pausedReason).toMatch(/^The new environment key \(through the new CMK\) cannot be used: /);
      expect(await ok(t, 'POST', `${envUrl(ws)}/keys/${saved.repack.toEkId}/enable`, {})).toMatchObject({ state: 'active' });
      await t.ks.runRepacks();
      expect((await t.ks.store.getRepack(environmentId))?.state).toBe('done');
      await expectAllReadable(t, ws, written);
    }, 60_000);

    it('shredding the environment mid-repack takes the old environment key with it', async () => {
      const t = await start();
      const { ws, environmentId, written } = await populated(t, 'shred-mid-repack');
      const oldEk = (await t.ks.store.getActiveEk(environmentId))!;
      const saved = await ok(t, 'PUT', cmkUrl(ws), { ...vaultConfig(NEW_KEY), rotateEnvironmentKey: true });
      await ok(t, 'POST', `${envUrl(ws)}/shred`, { waitingPeriodDays: 1 });
      expect((await t.ks.store.getKey(environmentId, oldEk.id))?.state).toBe('scheduled-destruction');
      expect((await t.ks.store.getKey(environmentId, saved.repack.toEkId))?.state).toBe('scheduled-destruction');
      // Nothing opens any more, whichever EK its key hangs under.
      t.ks.cache.clear();
      for (const record of written.records.slice(0, 3)) expect([423, 410]).toContain((await decrypt(t, ws, record.ciphertext)).statusCode);
    }, 60_000);

    it('a node that still believes in the old EK creates new keys under the new one (the store refuses children of a retired EK)', async () => {
      const handle = testStoreHandle(store);
      const nodeA = await start({}, 'manual', handle);
      const nodeB = await openTestKeystrata({ handle: { ...handle, destroy: async () => undefined }, repacks: 'manual' });
      try {
        const ws = (await createWorkspace(nodeA, 'stale-ek')).id;
        const environmentId = (await nodeA.ks.workspaces.resolveEnvironment(ws, 'production')).environment.id;
        const oldEkId = (await nodeA.ks.store.getActiveEk(environmentId))!.id;
        // Node A learns which EK is active (by creating a key under it) …
        await encrypt(nodeA, ws, { type: 'connection', id: 'first' }, Buffer.from('x'));
        // … node B rotates it …
        const saved = await ok(nodeB, 'PUT', cmkUrl(ws), { provider: 'platform', rotateEnvironmentKey: true });
        // … and node A's next new key still lands under the new EK, not the one being repacked.
        const later = await encrypt(nodeA, ws, { type: 'connection', id: 'second' }, Buffer.from('y'));
        const key = (await nodeA.ks.store.getKey(environmentId, later.keyId))!;
        expect(key.parentId).toBe(saved.repack.toEkId);
        expect(key.parentId).not.toBe(oldEkId);
        await nodeB.ks.runRepacks();
        nodeA.ks.cache.clear();
        expect((await decrypt(nodeA, ws, later.ciphertext)).statusCode).toBe(200);
      } finally {
        await nodeB.close();
      }
    }, 60_000);

    it('a platform-managed environment rotates its environment key too', async () => {
      const t = await start();
      const ws = (await createWorkspace(t, 'platform-rotation')).id;
      const before = await encrypt(t, ws, { type: 'connection', id: 'c1' }, Buffer.from('platform data'));
      const saved = await ok(t, 'PUT', cmkUrl(ws), { provider: 'platform', rotateEnvironmentKey: true });
      expect(saved).toMatchObject({ provider: 'platform', repack: { state: 'running' } });
      await t.ks.runRepacks();
      expect((await ok(t, 'GET', cmkUrl(ws), undefined)).repack).toMatchObject({ state: 'done' });
      t.ks.cache.clear();
      expect(Buffer.from((await decrypt(t, ws, before.ciphertext)).json().plaintext, 'base64').toString()).toBe('platform data');
      expectError(await call(t, 'PUT', cmkUrl(ws), { provider: 'platform', rotateEnvironmentKey: 'yes' }), 400, 'invalid_request');
    }, 60_000);
  });
}
