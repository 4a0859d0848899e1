import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/service/clock.js';
import { call, createWorkspace, decrypt, encrypt, envUrl, expectError, ok } from '../support/http-helpers.js';
import { openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

// DESIGN §5: customer-managed CMK replacement at most once per 24 h (configurable) with a clear 429
// saying when; platform-managed CMKs rotated on demand (POST …/cmk/rotate) and automatically once
// older than KEYSTRATA_PLATFORM_CMK_ROTATION_DAYS; data written before stays readable throughout.

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

for (const store of testStores()) {
  describe(`CMK replacement interval and rotation (${store})`, () => {
    let t: TestKeystrata;
    let clock: ManualClock;
    beforeAll(async () => {
      clock = new ManualClock(Date.UTC(2026, 10, 22, 12));
      t = await openTestKeystrata({ store, clock, env: { KEYSTRATA_CMK_REPLACE_INTERVAL_HOURS: '24', KEYSTRATA_PLATFORM_CMK_ROTATION_DAYS: '365' } });
    });
    afterAll(async () => {
      await t?.destroy();
    });
    const cmkUrl = (ws: string) => `${envUrl(ws)}/cmk`;
    const uploaded = () => ({ provider: 'uploaded', config: { keyMaterial: randomBytes(32).toString('base64') } });
    const entries = async (ws: string) =>
      (await ok(t, 'GET', `/v1/workspaces/${ws}/audit?limit=1000`, undefined)).items as { action: string; outcome: string; actor: { type: string }; target: Record<string, string> }[];

    it('a customer-managed CMK can be replaced once per 24 h: 429 cmk_replace_too_soon with Retry-After and when', async () => {
      const ws = (await createWorkspace(t, 'replace-interval')).id;
      const first = await ok(t, 'PUT', cmkUrl(ws), uploaded()); // from platform: always allowed
      clock.advance(23 * HOUR);
      const refused = await call(t, 'PUT', cmkUrl(ws), uploaded());
      const error = expectError(refused, 429, 'cmk_replace_too_soon');
      expect(error.details).toEqual({ allowedAt: new Date(Date.parse(first.createdAt) + DAY).toISOString(), retryAfterSeconds: 3600 });
      expect(refused.headers['retry-after']).toBe('3600');
      expectError(await call(t, 'PUT', cmkUrl(ws), { provider: 'platform' }), 429, 'cmk_replace_too_soon');
      expect((await ok(t, 'GET', cmkUrl(ws), undefined)).id).toBe(first.id);
      clock.advance(HOUR);
      expect((await ok(t, 'PUT', cmkUrl(ws), { provider: 'platform' })).provider).toBe('platform');
    });

    it('POST …/cmk/rotate gives a platform-managed environment a new CMK; old data stays readable; audited', async () => {
      const ws = (await createWorkspace(t, 'rotate-platform')).id;
      const sealed = await encrypt(t, ws, { type: 'connection', id: 'c' }, Buffer.from('before'));
      const before = await ok(t, 'GET', cmkUrl(ws), undefined);
      const rotated = await ok(t, 'POST', `${cmkUrl(ws)}/rotate`, undefined);
      expect(rotated).toMatchObject({ provider: 'platform', state: 'active' });
      expect(rotated.id).not.toBe(before.id);
      t.ks.cache.clear();
      expect(Buffer.from((await decrypt(t, ws, sealed.ciphertext)).json().plaintext, 'base64').toString()).toBe('before');
      expect((await entries(ws)).find((e) => e.action === 'cmk.rotate')).toMatchObject({ outcome: 'success', target: { previousCmkId: before.id, cmkId: rotated.id } });
    });

    it('POST …/cmk/rotate on a customer-managed CMK asks the key store (no new CMK) and is audited', async () => {
      const ws = (await createWorkspace(t, 'rotate-customer')).id;
      const saved = await ok(t, 'PUT', cmkUrl(ws), uploaded());
      const rotated = await ok(t, 'POST', `${cmkUrl(ws)}/rotate`, {});
      expect(rotated.id).toBe(saved.id);
      expect((await entries(ws)).filter((e) => e.action === 'cmk.rotate').map((e) => e.outcome)).toEqual(['success']);
    });

    it('the log key is retired (decrypt-only) once older than KEYSTRATA_LOG_KEY_ROTATION_DAYS; the next log write gets a new one; old entries still open', async () => {
      const ws = (await createWorkspace(t, 'log-rotation')).id;
      const first = await encrypt(t, ws, { type: 'log', id: 'stream' }, Buffer.from('old line'));
      clock.advance(29 * DAY);
      expect((await encrypt(t, ws, { type: 'log', id: 'stream' }, Buffer.from('same key'))).keyId).toBe(first.keyId);
      clock.advance(2 * DAY);
      const second = await encrypt(t, ws, { type: 'log', id: 'stream' }, Buffer.from('new line'));
      expect(second.keyId).not.toBe(first.keyId);
      expect(await ok(t, 'GET', `${envUrl(ws)}/keys/${first.keyId}`, undefined)).toMatchObject({ kind: 'log', state: 'decrypt-only' });
      expect(await ok(t, 'GET', `${envUrl(ws)}/keys/${second.keyId}`, undefined)).toMatchObject({ kind: 'log', state: 'active' });
      t.ks.cache.clear();
      expect(Buffer.from((await decrypt(t, ws, first.ciphertext)).json().plaintext, 'base64').toString()).toBe('old line');
      expect((await ok(t, 'GET', `${envUrl(ws)}/keys`, undefined)).counts.log).toBe(2);
      // The audit entries sealed under either log key still read, and the retirement itself is one.
      const all = await entries(ws);
      expect(all.every((e) => 'action' in e)).toBe(true);
      expect(all.filter((e) => e.action === 'key.rotate')).toEqual([
        expect.objectContaining({ actor: expect.objectContaining({ type: 'system' }), target: expect.objectContaining({ keyId: first.keyId, kind: 'log' }) }),
      ]);
    });

    it('platform-managed CMKs older than the rotation period are rotated automatically (actor system), younger ones are not', async () => {
      const old = (await createWorkspace(t, 'auto-old')).id;
      const sealed = await encrypt(t, old, { type: 'job', id: 'j' }, Buffer.from('kept'));
      const before = await ok(t, 'GET', cmkUrl(old), undefined);
      clock.advance(366 * DAY);
      const young = (await createWorkspace(t, 'auto-young')).id;
      const youngBefore = await ok(t, 'GET', cmkUrl(young), undefined);
      expect(await t.ks.rotatePlatformCmks()).toBeGreaterThanOrEqual(1);
      const after = await ok(t, 'GET', cmkUrl(old), undefined);
      expect(after.id).not.toBe(before.id);
      expect((await ok(t, 'GET', cmkUrl(young), undefined)).id).toBe(youngBefore.id);
      expect((await entries(old)).find((e) => e.action === 'cmk.rotate')).toMatchObject({ actor: { type: 'system' }, target: { previousCmkId: before.id } });
      t.ks.cache.clear();
      expect((await decrypt(t, old, sealed.ciphertext)).statusCode).toBe(200);
      // Nothing is due again right away.
      const again = await t.ks.rotatePlatformCmks();
      expect((await ok(t, 'GET', cmkUrl(old), undefined)).id).toBe(after.id);
      expect(again).toBeGreaterThanOrEqual(0);
    });
  });
}
