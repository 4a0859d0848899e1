import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyStateChannel } from '../../src/store/postgres/key-state-watcher.js';
import { ManualClock } from '../../src/service/clock.js';
import { as, createClient } from '../support/access-helpers.js';
import { call, createWorkspace, decrypt, encrypt, envUrl, expectError, ok } from '../support/http-helpers.js';
import { TEST_DATABASE_URL, openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

// DESIGN §1/§5: disable (reversible), scheduled destruction with a waiting period (cancellable,
// admins only), destruction = material erased and key_destroyed for everything under the key,
// crypto-shredding of a key context and of an environment, recorded in the audit log — on both
// stores, and across nodes on PostgreSQL (a disable on one node bites on another within a second).

const DAY = 86_400_000;

for (const store of testStores()) {
  describe(`key lifecycle (${store})`, () => {
    let t: TestKeystrata;
    let clock: ManualClock;
    beforeAll(async () => {
      clock = new ManualClock(Date.UTC(2026, 10, 22, 12));
      t = await openTestKeystrata({ store, clock });
    });
    afterAll(async () => {
      await t?.destroy();
    });

    const keyUrl = (ws: string, keyId: string, env = 'production') => `${envUrl(ws, env)}/keys/${keyId}`;
    const plaintextOf = (response: { json(): { plaintext: string } }) => Buffer.from(response.json().plaintext, 'base64').toString();

    it('disable is reversible and covers exactly the key (and what is below it); enable restores it', async () => {
      const ws = (await createWorkspace(t, 'disable')).id;
      const c1 = await encrypt(t, ws, { type: 'connection', id: 'c1' }, Buffer.from('one'));
      const c2 = await encrypt(t, ws, { type: 'connection', id: 'c2' }, Buffer.from('two'));
      const disabled = await ok(t, 'POST', `${keyUrl(ws, c1.keyId)}/disable`, {});
      expect(disabled).toMatchObject({ id: c1.keyId, kind: 'connection', scopeId: 'c1', state: 'disabled', destroyAt: null });
      expectError(await decrypt(t, ws, c1.ciphertext), 423, 'key_disabled');
      expectError(await call(t, 'POST', `${envUrl(ws)}/encrypt`, { scope: { type: 'connection', id: 'c1' }, plaintext: 'eA==' }), 423, 'key_disabled');
      expect(plaintextOf(await decrypt(t, ws, c2.ciphertext))).toBe('two');
      expectError(await call(t, 'POST', `${keyUrl(ws, c1.keyId)}/disable`, {}), 409, 'key_state_conflict');
      expect(await ok(t, 'POST', `${keyUrl(ws, c1.keyId)}/enable`, {})).toMatchObject({ state: 'active' });
      expect(plaintextOf(await decrypt(t, ws, c1.ciphertext))).toBe('one');
    });

    it('disabling the environment key stops the whole environment at once (cached keys included), not other environments', async () => {
      const ws = (await createWorkspace(t, 'disable-ek')).id;
      await ok(t, 'POST', `/v1/workspaces/${ws}/environments`, { name: 'staging' }, 201);
      const prod = await encrypt(t, ws, { type: 'job', id: 'j' }, Buffer.from('p'));
      const staging = await encrypt(t, ws, { type: 'job', id: 'j' }, Buffer.from('s'), 'staging');
      const status = await ok(t, 'GET', `${envUrl(ws)}/keys`, undefined);
      await ok(t, 'POST', `${keyUrl(ws, status.ek.id)}/disable`, {});
      expectError(await decrypt(t, ws, prod.ciphertext), 423, 'key_disabled');
      expect(plaintextOf(await decrypt(t, ws, staging.ciphertext, undefined, 'staging'))).toBe('s');
      await ok(t, 'POST', `${keyUrl(ws, status.ek.id)}/enable`, {});
      expect(plaintextOf(await decrypt(t, ws, prod.ciphertext))).toBe('p');
    });

    it('scheduled destruction: unusable at once, cancellable (back to disabled), then destroyed after the waiting period — key_destroyed, material erased, irreversible', async () => {
      const ws = (await createWorkspace(t, 'destroy')).id;
      const job = await encrypt(t, ws, { type: 'job', id: 'j-doomed' }, Buffer.from('doomed'));
      const scheduled = await ok(t, 'POST', `${keyUrl(ws, job.keyId)}/schedule-destruction`, {});
      expect(scheduled).toMatchObject({ state: 'scheduled-destruction', destroyAt: new Date(clock.now() + 7 * DAY).toISOString() });
      expectError(await decrypt(t, ws, job.ciphertext), 423, 'key_disabled');
      expect(await ok(t, 'POST', `${keyUrl(ws, job.keyId)}/cancel-destruction`, {})).toMatchObject({ state: 'disabled', destroyAt: null });
      await ok(t, 'POST', `${keyUrl(ws, job.keyId)}/enable`, {});
      expect(plaintextOf(await decrypt(t, ws, job.ciphertext))).toBe('doomed');

      await ok(t, 'POST', `${keyUrl(ws, job.keyId)}/schedule-destruction`, { waitingPeriodDays: 1 });
      clock.advance(DAY - 1000);
      expect(await t.ks.lifecycle.destroyDue()).toBe(0);
      clock.advance(1000);
      expect(await t.ks.lifecycle.destroyDue()).toBe(1);
      const lost = expectError(await decrypt(t, ws, job.ciphertext), 410, 'key_destroyed');
      expect(lost.message).toMatch(/lost/);
      expect(await ok(t, 'GET', keyUrl(ws, job.keyId), undefined)).toMatchObject({ state: 'destroyed' });
      expect((await t.ks.store.getKey((await ok(t, 'GET', `${envUrl(ws)}/keys`, undefined)).environment.id, job.keyId))?.wrapped.length).toBe(0);
      for (const action of ['enable', 'cancel-destruction', 'disable']) {
        expectError(await call(t, 'POST', `${keyUrl(ws, job.keyId)}/${action}`, {}), 409, 'key_state_conflict');
      }
    });

    it('crypto-shreds a key context: all its objects and versions become unreadable; other contexts are untouched; the audit log proves it', async () => {
      const ws = (await createWorkspace(t, 'shred-context')).id;
      const objects = `${envUrl(ws)}/objects`;
      const a1 = await ok(t, 'POST', objects, { name: 'a1', value: 'v1', context: { org: 'A' } }, 201);
      await ok(t, 'PUT', `${objects}/${a1.id}`, { value: 'v2', expectedVersion: 1 });
      const a2 = await ok(t, 'POST', objects, { name: 'a2', value: 'x', context: { org: 'A' } }, 201);
      const b = await ok(t, 'POST', objects, { name: 'b', value: 'kept', context: { org: 'B' } }, 201);
      expectError(await call(t, 'POST', `${envUrl(ws)}/contexts/shred`, { context: { org: 'nobody' } }), 404, 'key_not_found');
      const shred = await ok(t, 'POST', `${envUrl(ws)}/contexts/shred`, { context: { org: 'A' }, waitingPeriodDays: 1 });
      expect(shred).toMatchObject({ kind: 'context', state: 'scheduled-destruction' });
      expectError(await call(t, 'GET', `${objects}/${a1.id}`), 423, 'key_disabled');
      clock.advance(DAY);
      await t.ks.lifecycle.destroyDue();
      for (const url of [`${objects}/${a1.id}`, `${objects}/${a1.id}/versions/1`, `${objects}/${a2.id}`]) expectError(await call(t, 'GET', url), 410, 'key_destroyed');
      expect((await ok(t, 'GET', `${objects}/${b.id}`, undefined)).value).toBe('kept');
      const entries = (await ok(t, 'GET', `/v1/workspaces/${ws}/audit?limit=1000`, undefined)).items as { action: string; actor: { type: string }; target: Record<string, string>; outcome: string; errorCode?: string }[];
      expect(entries.find((e) => e.action === 'context.shred' && e.outcome === 'success')?.target).toMatchObject({ keyId: shred.id, kind: 'context', shred: 'context', waitingPeriodDays: '1' });
      expect(entries.find((e) => e.action === 'key.destroy')).toMatchObject({ actor: { type: 'system' }, target: { keyId: shred.id } });
      expect(entries.filter((e) => e.errorCode === 'key_destroyed').length).toBeGreaterThanOrEqual(3);
    });

    it('crypto-shreds a whole environment', async () => {
      const ws = (await createWorkspace(t, 'shred-env')).id;
      await ok(t, 'POST', `/v1/workspaces/${ws}/environments`, { name: 'other' }, 201);
      const sealed = await encrypt(t, ws, { type: 'log', id: 'stream' }, Buffer.from('log line'));
      const other = await encrypt(t, ws, { type: 'log', id: 'stream' }, Buffer.from('kept'), 'other');
      const shred = await ok(t, 'POST', `${envUrl(ws)}/shred`, { waitingPeriodDays: 2 });
      expect(shred).toMatchObject({ kind: 'ek', state: 'scheduled-destruction' });
      clock.advance(2 * DAY);
      await t.ks.lifecycle.destroyDue();
      expectError(await decrypt(t, ws, sealed.ciphertext), 410, 'key_destroyed');
      expectError(await call(t, 'POST', `${envUrl(ws)}/encrypt`, { scope: { type: 'job', id: 'new' }, plaintext: 'eA==' }), 410, 'key_destroyed');
      expect(plaintextOf(await decrypt(t, ws, other.ciphertext, undefined, 'other'))).toBe('kept');
    });

    it('log keys cannot be disabled or destroyed one by one (they seal the audit); after an environment shred the record of who shredded stays readable', async () => {
      const ws = (await createWorkspace(t, 'log-key-guard')).id;
      const log = await encrypt(t, ws, { type: 'log', id: 'stream' }, Buffer.from('line'));
      for (const action of ['disable', 'schedule-destruction']) {
        expectError(await call(t, 'POST', `${keyUrl(ws, log.keyId)}/${action}`, {}), 409, 'key_state_conflict');
      }
      expect(await ok(t, 'GET', keyUrl(ws, log.keyId), undefined)).toMatchObject({ state: 'active' });
      await ok(t, 'POST', `${envUrl(ws)}/shred`, { waitingPeriodDays: 1 });
      clock.advance(DAY);
      await t.ks.lifecycle.destroyDue();
      const entries = (await ok(t, 'GET', `/v1/workspaces/${ws}/audit?limit=1000`, undefined)).items as { action?: string; outcome?: string; unreadable?: string; actor?: { type: string } }[];
      // Entries sealed under the (now destroyed) environment log key are unreadable, as shredding means…
      expect(entries.some((e) => e.unreadable === 'key_destroyed')).toBe(true);
      // …but who shredded, and the destruction itself, are sealed under the workspace key and read.
      expect(entries.find((e) => e.action === 'environment.shred')).toMatchObject({ outcome: 'success', actor: { type: 'admin' } });
      expect(entries.find((e) => e.action === 'key.destroy')).toMatchObject({ actor: { type: 'system' } });
      // The environment's CMK cannot be shown or changed any more: a clear 4xx, not a 500.
      expectError(await call(t, 'GET', `${envUrl(ws)}/cmk`), 423, 'key_disabled');
      expectError(await call(t, 'POST', `${envUrl(ws)}/shred`, {}), 409, 'key_state_conflict');
    });

    it('a client limited to one environment reads only that environment’s audit entries (and workspace-level ones)', async () => {
      const ws = (await createWorkspace(t, 'audit-scope')).id;
      await ok(t, 'POST', `/v1/workspaces/${ws}/environments`, { name: 'staging' }, 201);
      await encrypt(t, ws, { type: 'job', id: 'p' }, Buffer.from('x'));
      await encrypt(t, ws, { type: 'job', id: 's' }, Buffer.from('x'), 'staging');
      const detail = await ok(t, 'GET', `/v1/workspaces/${ws}`, undefined);
      const stagingId = detail.environments.find((e: { name: string }) => e.name === 'staging').id as string;
      const auditor = await createClient(t, ws, { role: 'auditor', environments: ['staging'] });
      const seen = (await as(t, auditor.token, 'GET', `/v1/workspaces/${ws}/audit?limit=1000`)).json().items as { environmentId: string | null }[];
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((e) => e.environmentId === null || e.environmentId === stagingId)).toBe(true);
      expect(seen.some((e) => e.environmentId === stagingId)).toBe(true);
      const all = (await ok(t, 'GET', `/v1/workspaces/${ws}/audit?limit=1000`, undefined)).items as { environmentId: string | null }[];
      expect(all.some((e) => e.environmentId !== null && e.environmentId !== stagingId)).toBe(true);
    });

    it('roles: operators disable and enable, only admins destroy or shred; bad waiting periods and foreign keys are refused', async () => {
      const ws = (await createWorkspace(t, 'lifecycle-roles')).id;
      const job = await encrypt(t, ws, { type: 'job', id: 'j' }, Buffer.from('x'));
      const operator = await createClient(t, ws, { role: 'operator' });
      const app = await createClient(t, ws, { role: 'app' });
      const admin = await createClient(t, ws, { role: 'admin' });
      expectError(await as(t, app.token, 'POST', `${keyUrl(ws, job.keyId)}/disable`, {}), 403, 'forbidden');
      expect((await as(t, operator.token, 'POST', `${keyUrl(ws, job.keyId)}/disable`, {})).statusCode).toBe(200);
      expect((await as(t, operator.token, 'POST', `${keyUrl(ws, job.keyId)}/enable`, {})).statusCode).toBe(200);
      expectError(await as(t, operator.token, 'POST', `${keyUrl(ws, job.keyId)}/schedule-destruction`, {}), 403, 'forbidden');
      expectError(await as(t, operator.token, 'POST', `${envUrl(ws)}/shred`, {}), 403, 'forbidden');
      for (const days of [0, 366, 1.5]) {
        expectError(await as(t, admin.token, 'POST', `${keyUrl(ws, job.keyId)}/schedule-destruction`, { waitingPeriodDays: days }), 400, 'invalid_request');
      }
      expect((await as(t, admin.token, 'POST', `${keyUrl(ws, job.keyId)}/schedule-destruction`, {})).statusCode).toBe(200);
      const otherWs = (await createWorkspace(t, 'lifecycle-other')).id;
      expectError(await call(t, 'POST', `${keyUrl(otherWs, job.keyId)}/disable`, {}), 404, 'key_not_found');
    });

    if (store === 'postgres') {
      it('two nodes on one PostgreSQL: a disable on one node is refused on the other within a second, though its cache was warm', async () => {
        const ws = (await createWorkspace(t, 'two-nodes')).id;
        const sealed = await encrypt(t, ws, { type: 'connection', id: 'c' }, Buffer.from('warm'));
        const nodeB = await openTestKeystrata({ store, handle: t.handle, clock });
        try {
          const viaB = () => nodeB.app.inject({ method: 'POST', url: `${envUrl(ws)}/decrypt`, headers: nodeB.auth, payload: { ciphertext: sealed.ciphertext } });
          expect((await viaB()).statusCode).toBe(200); // B's cache now holds the keys
          await ok(t, 'POST', `${keyUrl(ws, sealed.keyId)}/disable`, {});
          const started = Date.now();
          let status = 200;
          while (status === 200 && Date.now() - started < 3000) {
            status = (await viaB()).statusCode;
            if (status === 200) await new Promise((r) => setTimeout(r, 20));
          }
          expect(status).toBe(423);
          expect(Date.now() - started).toBeLessThan(1000);
        } finally {
          await nodeB.close();
        }
      });

      it('a node whose listening connection was lost drops its whole key cache when it listens again (changes in between may be missed)', async () => {
        const ws = (await createWorkspace(t, 'resync')).id;
        await encrypt(t, ws, { type: 'connection', id: 'c' }, Buffer.from('x'));
        expect(t.ks.cache.stats().entries).toBeGreaterThan(0);
        const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
        await admin.connect();
        try {
          const pids = await admin.query<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'keystrata-watch' AND query = $1`,
            [`LISTEN "${keyStateChannel(t.handle.schema!)}"`],
          );
          expect(pids.rows).toHaveLength(1);
          await admin.query('SELECT pg_terminate_backend($1)', [pids.rows[0]!.pid]);
        } finally {
          await admin.end();
        }
        const deadline = Date.now() + 5000;
        while (t.ks.cache.stats().entries > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
        expect(t.ks.cache.stats().entries).toBe(0);
      });
    }
  });
}
