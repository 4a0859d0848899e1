import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, as } from '../support/access-helpers.js';
import { call, createWorkspace, decrypt, encrypt, envUrl, expectError, ok } from '../support/http-helpers.js';
import { dumpTables, rawDataDirBytes } from '../support/store-dump.js';
import { openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

// PUT …/cmk with the uploaded-key provider (no external service): test-and-save, the EK re-wrapped
// under the new CMK, data written before still readable, secrets never shown or stored in clear,
// validation, roles, audit, a restart, and the switch back to a platform-managed CMK. The failure
// causes of test-and-save against real key stores are in the per-provider BYOK tests.

for (const store of testStores()) {
  describe(`PUT …/cmk test-and-save (${store})`, () => {
    let t: TestKeystrata;
    beforeAll(async () => {
      t = await openTestKeystrata({ store });
    });
    afterAll(async () => {
      await t?.destroy();
    });

    const cmkUrl = (ws: string, env = 'production') => `${envUrl(ws, env)}/cmk`;

    it('moves an environment to an uploaded key: old data still decrypts, new data works, the key is never shown or stored in clear', async () => {
      const ws = (await createWorkspace(t, 'byok-uploaded')).id;
      const before = await encrypt(t, ws, { type: 'job', id: 'j1' }, Buffer.from('written under the platform CMK'));
      const platformCmk = await ok(t, 'GET', cmkUrl(ws), undefined);
      expect(platformCmk).toMatchObject({ provider: 'platform', config: {}, secretFields: [], health: null });

      const keyMaterial = randomBytes(32).toString('base64');
      const saved = await ok(t, 'PUT', cmkUrl(ws), { provider: 'uploaded', config: { keyMaterial } });
      expect(saved).toMatchObject({ provider: 'uploaded', state: 'active', config: {}, secretFields: ['keyMaterial'], keyVersion: '1' });
      expect(saved.id).not.toBe(platformCmk.id);
      expect(saved.health).toMatchObject({ state: 'healthy', currentVersion: '1' });
      expect(JSON.stringify(saved)).not.toContain(keyMaterial);
      expect(await ok(t, 'GET', cmkUrl(ws), undefined)).toEqual(saved);

      // Everything written before is still readable (nothing was re-encrypted: only the EK re-wrapped).
      const opened = await decrypt(t, ws, before.ciphertext);
      expect(opened.statusCode, opened.body).toBe(200);
      expect(Buffer.from(opened.json().plaintext, 'base64').toString()).toBe('written under the platform CMK');
      const after = await encrypt(t, ws, { type: 'job', id: 'j2' }, Buffer.from('written under the uploaded CMK'));
      expect((await decrypt(t, ws, after.ciphertext)).statusCode).toBe(200);

      // Key status names the new CMK; the EK is the same key.
      const status = await ok(t, 'GET', `${envUrl(ws)}/keys`, undefined);
      expect(status.cmk).toMatchObject({ id: saved.id, provider: 'uploaded' });
      expect(status.ek.wrappingKeyVersion).toBe('1');

      // The uploaded key is stored sealed: neither its base64 nor its bytes are in the database.
      const raw = Buffer.concat([store === 'sqlite' ? rawDataDirBytes(t.handle) : Buffer.alloc(0), Buffer.from(await dumpTables(t.handle))]);
      const bytes = Buffer.from(keyMaterial, 'base64');
      for (const form of [Buffer.from(keyMaterial), bytes, Buffer.from(bytes.toString('hex')), Buffer.from(bytes.toString('base64url'))]) {
        expect(raw.includes(form)).toBe(false);
      }
    });

    it('survives a restart: the sealed config is opened with the root key and the data decrypts', async () => {
      const ws = (await createWorkspace(t, 'byok-restart')).id;
      await ok(t, 'PUT', cmkUrl(ws), { provider: 'uploaded', config: { keyMaterial: randomBytes(32).toString('base64') } });
      const sealed = await encrypt(t, ws, { type: 'connection', id: 'c1' }, Buffer.from('after restart'));
      const again = await openTestKeystrata({ store, handle: t.handle });
      try {
        const response = await again.app.inject({ method: 'POST', url: `${envUrl(ws)}/decrypt`, headers: again.auth, payload: { ciphertext: sealed.ciphertext } });
        expect(response.statusCode, response.body).toBe(200);
        expect(Buffer.from(response.json().plaintext, 'base64').toString()).toBe('after restart');
      } finally {
        await again.close();
      }
    });

    it('switches back to a platform-managed CMK (a new one), and the data stays readable', async () => {
      const ws = (await createWorkspace(t, 'byok-back')).id;
      await ok(t, 'PUT', cmkUrl(ws), { provider: 'uploaded', config: { keyMaterial: randomBytes(32).toString('base64') } });
      const sealed = await encrypt(t, ws, { type: 'job', id: 'j' }, Buffer.from('x'));
      const back = await ok(t, 'PUT', cmkUrl(ws), { provider: 'platform' });
      expect(back).toMatchObject({ provider: 'platform', config: {}, secretFields: [] });
      expect((await decrypt(t, ws, sealed.ciphertext)).statusCode).toBe(200);
      expectError(await call(t, 'PUT', cmkUrl(ws), { provider: 'platform', config: { wrappedMaterial: 'x', version: '1' } }), 400, 'invalid_request');
    });

    it('bad input: unknown provider, config that fails the provider schema (field named, value never echoed), unknown body fields — nothing changes', async () => {
      const ws = (await createWorkspace(t, 'byok-bad')).id;
      const before = await ok(t, 'GET', cmkUrl(ws), undefined);
      const unknown = expectError(await call(t, 'PUT', cmkUrl(ws), { provider: 'hsm-of-my-dreams', config: {} }), 400, 'invalid_request');
      expect(unknown.field).toBe('provider');
      expect(unknown.message).toMatch(/uploaded/);
      const secretLooking = 'not-base64-but-a-secret-0123456789!!';
      const bad = expectError(await call(t, 'PUT', cmkUrl(ws), { provider: 'uploaded', config: { keyMaterial: secretLooking } }), 400, 'invalid_request');
      expect(bad.field).toBe('config.keyMaterial');
      expect(JSON.stringify(bad)).not.toContain(secretLooking);
      expectError(await call(t, 'PUT', cmkUrl(ws), { provider: 'uploaded', config: { keyMaterial: randomBytes(32).toString('base64'), extra: 1 } }), 400, 'invalid_request');
      expectError(await call(t, 'PUT', cmkUrl(ws), { provider: 'uploaded' }), 400, 'invalid_request');
      expectError(await call(t, 'PUT', cmkUrl(ws), { provider: 'uploaded', config: {}, other: true }), 400, 'invalid_request');
      // A PKCS#11 library the operator did not allow is never loaded: a 400 naming the field.
      const module = expectError(
        await call(t, 'PUT', cmkUrl(ws), { provider: 'pkcs11', config: { module: '/tmp/evil.so', tokenLabel: 't', pin: '1234', keyLabel: 'k' } }),
        400,
        'invalid_request',
      );
      expect(module.field).toBe('config.module');
      expect(JSON.stringify(module)).not.toContain('1234');
      expect(await ok(t, 'GET', cmkUrl(ws), undefined)).toEqual(before);
    });

    it('admins and operators may change the CMK; app and auditor clients may not; the change is audited with both CMKs', async () => {
      const ws = (await createWorkspace(t, 'byok-roles')).id;
      const operator = await createClient(t, ws, { role: 'operator' });
      const app = await createClient(t, ws, { role: 'app' });
      const auditor = await createClient(t, ws, { role: 'auditor' });
      const body = { provider: 'uploaded', config: { keyMaterial: randomBytes(32).toString('base64') } };
      expectError(await as(t, app.token, 'PUT', cmkUrl(ws), body), 403, 'forbidden');
      expectError(await as(t, auditor.token, 'PUT', cmkUrl(ws), body), 403, 'forbidden');
      expect((await as(t, auditor.token, 'GET', cmkUrl(ws))).statusCode).toBe(200);
      const previous = await ok(t, 'GET', cmkUrl(ws), undefined);
      const response = await as(t, operator.token, 'PUT', cmkUrl(ws), body);
      expect(response.statusCode, response.body).toBe(200);
      const entries = (await ok(t, 'GET', `/v1/workspaces/${ws}/audit?limit=1000`, undefined)).items as { action: string; outcome: string; target: Record<string, string>; actor: { id: string } }[];
      const changes = entries.filter((e) => e.action === 'cmk.update');
      expect(changes.map((e) => e.outcome)).toEqual(['failure', 'failure', 'success']);
      expect(changes[2]!.actor.id).toBe(operator.client.id);
      expect(changes[2]!.target).toMatchObject({ provider: 'uploaded', previousProvider: 'platform', previousCmkId: previous.id, cmkId: response.json().id });
      expect(JSON.stringify(entries)).not.toContain(body.config.keyMaterial);
    });
  });
}
