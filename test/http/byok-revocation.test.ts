import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/service/clock.js';
import { VaultTransitEmulator } from '../emulators/vault-transit/vault-transit-emulator.js';
import { keystrataPolicy } from '../emulators/vault-transit/vault-acl.js';
import { call, createWorkspace, decrypt, encrypt, envUrl, expectError, ok } from '../support/http-helpers.js';
import { openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

// What DESIGN §3/§5 promise a customer who keeps the CMK in their own key store, end to end over
// HTTP with the Vault transit emulator as the key store, on both stores: test-and-save failures
// name the cause and change nothing; a cold cache under load makes one key-store call; access
// restricted at the key store → data available for at most the cache TTL, then 503 key_unavailable
// fast, for that environment only; restored → readable again; rotated → followed; purged →
// key_destroyed, and keystrata says the data is lost.

const TTL_SECONDS = 300;
const KEY = 'keystrata-prod';

for (const store of testStores()) {
  describe(`BYOK revocation and restore (${store}, Vault transit emulator)`, () => {
    let t: TestKeystrata;
    let vault: VaultTransitEmulator;
    let clock: ManualClock;
    let token: string;
    const policy = keystrataPolicy(KEY, 'other-key', 'missing-key');

    beforeAll(async () => {
      vault = await VaultTransitEmulator.start();
      await vault.admin('POST', `transit/keys/${KEY}`, { type: 'aes256-gcm96' });
      vault.acl.writePolicy('keystrata', policy);
      token = vault.acl.createToken({ policies: ['keystrata'] });
      clock = new ManualClock(Date.UTC(2026, 10, 22, 12));
      t = await openTestKeystrata({ store, clock, env: { KEYSTRATA_KEY_CACHE_TTL_SECONDS: String(TTL_SECONDS), KEYSTRATA_CMK_TIMEOUT_MS: '1000' } });
    }, 60_000);
    afterAll(async () => {
      await t?.destroy();
      await vault?.close();
    });
    beforeEach(async () => {
      vault.throttle(false);
      vault.slow(0);
      await vault.unreachable(false);
      vault.acl.writePolicy('keystrata', policy);
    });

    const config = (over: Record<string, unknown> = {}) => ({ address: vault.address, token, keyName: KEY, ...over });
    const cmkUrl = (ws: string, env = 'production') => `${envUrl(ws, env)}/cmk`;
    /** Past the cache TTL and past the 2 s hold on a failed CMK. */
    const expireCache = () => clock.advance((TTL_SECONDS + 3) * 1000);

    async function byokWorkspace(name: string) {
      const ws = (await createWorkspace(t, name)).id;
      await ok(t, 'POST', `/v1/workspaces/${ws}/environments`, { name: 'staging' }, 201);
      const saved = await ok(t, 'PUT', cmkUrl(ws), { provider: 'vault-transit', config: config() });
      return { ws, saved };
    }

    it('test-and-save names the cause of each failure and changes nothing', async () => {
      const ws = (await createWorkspace(t, 'tas-failures')).id;
      const before = await ok(t, 'GET', cmkUrl(ws), undefined);
      const cases: [Record<string, unknown>, number, string][] = [
        [config({ token: 'hvs.not-a-token-this-vault-issued' }), 422, 'cmk_credentials_rejected'],
        [config({ keyName: 'missing-key' }), 422, 'cmk_key_not_found'],
      ];
      for (const [cfg, status, code] of cases) {
        const error = expectError(await call(t, 'PUT', cmkUrl(ws), { provider: 'vault-transit', config: cfg }), status, code);
        expect(JSON.stringify(error)).not.toContain(String(cfg['token']));
      }
      vault.acl.writePolicy('keystrata', {});
      expectError(await call(t, 'PUT', cmkUrl(ws), { provider: 'vault-transit', config: config() }), 422, 'cmk_permission_denied');
      vault.acl.writePolicy('keystrata', policy);
      await vault.unreachable(true);
      expectError(await call(t, 'PUT', cmkUrl(ws), { provider: 'vault-transit', config: config() }), 503, 'cmk_unreachable');
      await vault.unreachable(false);
      vault.throttle(true);
      expectError(await call(t, 'PUT', cmkUrl(ws), { provider: 'vault-transit', config: config() }), 503, 'cmk_throttled');
      vault.throttle(false);
      expect(await ok(t, 'GET', cmkUrl(ws), undefined)).toEqual(before);
      // And with everything right it saves, the token never shown.
      const saved = await ok(t, 'PUT', cmkUrl(ws), { provider: 'vault-transit', config: config() });
      expect(saved).toMatchObject({ provider: 'vault-transit', config: { address: vault.address, keyName: KEY }, secretFields: ['token'], keyVersion: '1' });
      expect(saved.health).toMatchObject({ state: 'healthy', currentVersion: '1' });
      expect(JSON.stringify(saved)).not.toContain(token);
    });

    it('a cold cache under concurrent load makes ONE key-store call', async () => {
      const { ws } = await byokWorkspace('cold-cache');
      const records = await Promise.all(Array.from({ length: 10 }, (_, i) => encrypt(t, ws, { type: 'connection', id: `c${i}` }, Buffer.from(`secret ${i}`))));
      t.ks.cache.clear();
      const before = vault.calls;
      const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => decrypt(t, ws, records[i % records.length]!.ciphertext)));
      expect(answers.map((a) => a.statusCode)).toEqual(Array(50).fill(200));
      expect(vault.calls - before).toBe(1);
    });

    it('restricted at the key store: served from the cache until the TTL, then 503 key_unavailable fast, for that environment only; restored: readable again', async () => {
      const { ws } = await byokWorkspace('revoke-restore');
      const prod = await encrypt(t, ws, { type: 'job', id: 'j1' }, Buffer.from('customer data'));
      const staging = await encrypt(t, ws, { type: 'job', id: 'j1' }, Buffer.from('staging data'), 'staging');

      vault.acl.writePolicy('keystrata', {}); // the customer takes keystrata's permission away
      clock.advance((TTL_SECONDS - 1) * 1000);
      expect((await decrypt(t, ws, prod.ciphertext)).statusCode).toBe(200); // cached keys keep serving until the TTL

      clock.advance(2000);
      const started = Date.now();
      const refused = expectError(await decrypt(t, ws, prod.ciphertext), 503, 'key_unavailable');
      expect(refused.details).toEqual({ reason: 'permission_denied' });
      expect(refused.message).not.toContain(token);
      // Further requests fail at once without asking the key store again (no hang, no hammering).
      const calls = vault.calls;
      for (let i = 0; i < 20; i++) expectError(await decrypt(t, ws, prod.ciphertext), 503, 'key_unavailable');
      expectError(await encrypt_(t, ws), 503, 'key_unavailable');
      expect(vault.calls).toBe(calls);
      expect(Date.now() - started).toBeLessThan(2000);
      // Other environments are not affected.
      expect((await decrypt(t, ws, staging.ciphertext, undefined, 'staging')).statusCode).toBe(200);

      vault.acl.writePolicy('keystrata', policy); // restored
      clock.advance(3000);
      const back = await decrypt(t, ws, prod.ciphertext);
      expect(back.statusCode, back.body).toBe(200);
      expect(Buffer.from(back.json().plaintext, 'base64').toString()).toBe('customer data');
    });

    it('an unreachable key store: 503 key_unavailable (unreachable) after the TTL; keystrata restarts and serves other environments meanwhile', async () => {
      const { ws } = await byokWorkspace('unreachable');
      const prod = await encrypt(t, ws, { type: 'job', id: 'j' }, Buffer.from('p'));
      const staging = await encrypt(t, ws, { type: 'job', id: 'j' }, Buffer.from('s'), 'staging');
      await vault.unreachable(true);
      expireCache();
      expect(expectError(await decrypt(t, ws, prod.ciphertext), 503, 'key_unavailable').details).toEqual({ reason: 'unreachable' });

      const restarted = await openTestKeystrata({ store, handle: t.handle, clock });
      try {
        const other = await restarted.app.inject({ method: 'POST', url: `${envUrl(ws, 'staging')}/decrypt`, headers: restarted.auth, payload: { ciphertext: staging.ciphertext } });
        expect(other.statusCode, other.body).toBe(200);
        const stuck = await restarted.app.inject({ method: 'POST', url: `${envUrl(ws)}/decrypt`, headers: restarted.auth, payload: { ciphertext: prod.ciphertext } });
        expect(stuck.statusCode).toBe(503);
        await vault.unreachable(false);
        clock.advance(3000);
        const ok2 = await restarted.app.inject({ method: 'POST', url: `${envUrl(ws)}/decrypt`, headers: restarted.auth, payload: { ciphertext: prod.ciphertext } });
        expect(ok2.statusCode, ok2.body).toBe(200);
      } finally {
        await restarted.close();
      }
    });

    it('the health probe reports and audits state changes, and follows a rotation at the key store (old data still decrypts)', async () => {
      const { ws, saved } = await byokWorkspace('health-rotation');
      const old = await encrypt(t, ws, { type: 'connection', id: 'c' }, Buffer.from('before rotation'));
      expect(saved.health.state).toBe('healthy');

      vault.acl.writePolicy('keystrata', {});
      clock.advance(60_000);
      await t.ks.cmkHealth.runOnce();
      const denied = await ok(t, 'GET', cmkUrl(ws), undefined);
      expect(denied.health).toMatchObject({ state: 'permission_denied', since: new Date(clock.now()).toISOString() });
      vault.acl.writePolicy('keystrata', policy);

      await vault.admin('POST', `transit/keys/${KEY}/rotate`);
      clock.advance(60_000);
      await t.ks.cmkHealth.runOnce();
      const rotated = await ok(t, 'GET', cmkUrl(ws), undefined);
      expect(rotated.health).toMatchObject({ state: 'healthy', currentVersion: '2' });
      expect(rotated.keyVersion).toBe('2');
      expireCache();
      expect((await decrypt(t, ws, old.ciphertext)).statusCode).toBe(200);

      const entries = (await ok(t, 'GET', `/v1/workspaces/${ws}/audit?limit=1000`, undefined)).items as { action: string; actor: { type: string }; target: Record<string, string> }[];
      const health = entries.filter((e) => e.action === 'cmk.health').map((e) => e.target['state']);
      expect(health).toEqual(['healthy', 'permission_denied', 'healthy']);
      expect(entries.filter((e) => e.action === 'cmk.health').every((e) => e.actor.type === 'system')).toBe(true);
      const rewrap = entries.find((e) => e.action === 'ek.rewrap');
      expect(rewrap?.target).toMatchObject({ fromVersion: '1', toVersion: '2' });
    });

    it('purged at the key store: 410 key_destroyed saying the data is lost; health key_deleted', async () => {
      const { ws } = await byokWorkspace('purged');
      const sealed = await encrypt(t, ws, { type: 'job', id: 'j' }, Buffer.from('gone'));
      await vault.admin('POST', `transit/keys/${KEY}/config`, { deletion_allowed: true });
      await vault.admin('DELETE', `transit/keys/${KEY}`);
      try {
        expireCache();
        const lost = expectError(await decrypt(t, ws, sealed.ciphertext), 410, 'key_destroyed');
        expect(lost.message).toMatch(/lost/);
        await t.ks.cmkHealth.runOnce();
        expect((await ok(t, 'GET', cmkUrl(ws), undefined)).health.state).toBe('key_deleted');
      } finally {
        // Later cases (other workspaces) use the same key name.
        await vault.admin('POST', `transit/keys/${KEY}`, { type: 'aes256-gcm96' });
      }
    });
  });
}

function encrypt_(t: TestKeystrata, ws: string) {
  return call(t, 'POST', `${envUrl(ws)}/encrypt`, { scope: { type: 'job', id: 'new-job' }, plaintext: Buffer.from('x').toString('base64') });
}
