import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/service/clock.js';
import { createWorkspace, encrypt, envUrl, keyStatus, ok } from '../support/http-helpers.js';
import { openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

const HOUR = 3_600_000;

for (const store of testStores()) {
  describe(`GET …/keys and …/cmk (${store})`, () => {
    let t: TestKeystrata;
    const clock = new ManualClock(Date.UTC(2026, 2, 1, 9, 30));
    beforeAll(async () => {
      t = await openTestKeystrata({ store, clock });
    });
    afterAll(async () => {
      await t?.destroy();
    });

    it('describes a new environment: platform CMK, active EK, no other keys yet', async () => {
      const ws = await createWorkspace(t, 'status');
      const status = await keyStatus(t, ws.id);
      expect(status.environment).toEqual({ id: ws.environments[0]!.id, name: 'production' });
      expect(status.cmk).toMatchObject({ provider: 'platform', state: 'active' });
      expect(status.ek).toMatchObject({ state: 'active' });
      expect(status.hourly).toEqual({ periodSeconds: 3600, current: null, latest: null });
      expect(status.counts).toEqual({ ek: 1, hourly: 0, job: 0, connection: 0, log: 0, context: 0 });
      // Cache counters are process-wide (every tenant's activity): /metrics only, never here.
      expect(status).not.toHaveProperty('cache');

      const cmk = await ok(t, 'GET', `${envUrl(ws.id)}/cmk`, undefined);
      expect(cmk).toEqual({
        id: status.cmk.id,
        provider: 'platform',
        state: 'active',
        createdAt: expect.any(String),
        config: {},
        secretFields: [],
        keyVersion: status.ek.wrappingKeyVersion,
        health: null,
        repack: null,
      });
      // The platform CMK config holds wrapped key material: never shown.
      expect(JSON.stringify(cmk)).not.toMatch(/wrapped|material/i);
      expect(JSON.stringify(status)).not.toMatch(/wrapped|material/i);
    });

    it('counts keys as they are created: job, hourly, connection, log, context', async () => {
      const ws = (await createWorkspace(t, 'counting')).id;
      const counts = async () => (await keyStatus(t, ws)).counts;
      const bytes = Buffer.from('x');

      await encrypt(t, ws, { type: 'job', id: 'job-1' }, bytes);
      // The log key comes with the first audited access in the environment: its entry is sealed under it.
      expect(await counts()).toEqual({ ek: 1, hourly: 1, job: 1, connection: 0, log: 1, context: 0 });
      await encrypt(t, ws, { type: 'job', id: 'job-1' }, bytes);
      await encrypt(t, ws, { type: 'job', id: 'job-2' }, bytes);
      expect(await counts()).toMatchObject({ hourly: 1, job: 2 });

      await encrypt(t, ws, { type: 'event', id: 'evt-1' }, bytes);
      await encrypt(t, ws, { type: 'event', id: 'evt-2' }, bytes);
      expect(await counts()).toMatchObject({ hourly: 1, job: 2 });

      await encrypt(t, ws, { type: 'connection', id: 'conn-1' }, bytes);
      await encrypt(t, ws, { type: 'connection', id: 'conn-1' }, bytes);
      expect(await counts()).toMatchObject({ connection: 1 });
      await encrypt(t, ws, { type: 'connection', id: 'conn-2' }, bytes);
      expect(await counts()).toMatchObject({ connection: 2 });

      await encrypt(t, ws, { type: 'log', id: 'stream-a' }, bytes);
      await encrypt(t, ws, { type: 'log', id: 'stream-b' }, bytes);
      expect(await counts()).toMatchObject({ log: 1 });

      await ok(t, 'POST', `${envUrl(ws)}/objects`, { name: 'o1', value: 'v', context: { org: '1' } }, 201);
      await ok(t, 'POST', `${envUrl(ws)}/objects`, { name: 'o2', value: 'v', context: { org: '1' } }, 201);
      await ok(t, 'POST', `${envUrl(ws)}/objects`, { name: 'o3', value: 'v', context: { org: '2' } }, 201);
      expect(await counts()).toEqual({ ek: 1, hourly: 1, job: 2, connection: 2, log: 1, context: 2 });

      // A new hour: a new hourly key on first use, and job keys of new jobs under it.
      clock.advance(HOUR);
      await encrypt(t, ws, { type: 'event', id: 'evt-3' }, bytes);
      await encrypt(t, ws, { type: 'job', id: 'job-3' }, bytes);
      expect(await counts()).toEqual({ ek: 1, hourly: 2, job: 3, connection: 2, log: 1, context: 2 });
    });

    it('keeps counts per environment', async () => {
      const ws = (await createWorkspace(t, 'per-env')).id;
      await ok(t, 'POST', `/v1/workspaces/${ws}/environments`, { name: 'dev' }, 201);
      await encrypt(t, ws, { type: 'job', id: 'j' }, Buffer.from('x'), 'dev');
      expect((await keyStatus(t, ws, 'dev')).counts).toMatchObject({ hourly: 1, job: 1 });
      expect((await keyStatus(t, ws)).counts).toMatchObject({ hourly: 0, job: 0 });
    });

    it('reports cache activity in /metrics (platform-wide), not in any workspace answer', async () => {
      const ws = (await createWorkspace(t, 'cache')).id;
      const metric = async (name: string) => {
        const text = (await t.app.inject({ method: 'GET', url: '/metrics', headers: t.auth })).body;
        return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);
      };
      const before = { hits: await metric('keystrata_key_cache_hits_total'), entries: await metric('keystrata_key_cache_entries') };
      await encrypt(t, ws, { type: 'connection', id: 'c' }, Buffer.from('x'));
      await encrypt(t, ws, { type: 'connection', id: 'c' }, Buffer.from('x'));
      expect(await metric('keystrata_key_cache_hits_total')).toBeGreaterThan(before.hits);
      expect(await metric('keystrata_key_cache_entries')).toBeGreaterThan(before.entries);
    });
  });
}
