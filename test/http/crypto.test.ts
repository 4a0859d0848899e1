import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCOPE_TYPES, allByteValues, call, createWorkspace, decrypt, encrypt, envUrl, expectError, ok, type Scope } from '../support/http-helpers.js';
import { openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

/** Encrypt/decrypt round trips over HTTP, for every scope type, on every store. */
for (const store of testStores()) {
  describe(`encrypt / decrypt over HTTP (${store})`, () => {
    let t: TestKeystrata;
    let ws: string;
    beforeAll(async () => {
      t = await openTestKeystrata({ store });
      ws = (await createWorkspace(t, 'crypto')).id;
    });
    afterAll(async () => {
      await t?.destroy();
    });

    describe.each(SCOPE_TYPES)('scope %s', (type) => {
      const scope: Scope = { type, id: `${type}-42` };

      it('round-trips binary plaintext with every byte value', async () => {
        const plaintext = allByteValues();
        const { ciphertext, keyId } = await encrypt(t, ws, scope, plaintext);
        expect(ciphertext).toMatch(/^ks1:[A-Za-z0-9_-]+$/);
        expect(keyId).toMatch(/^[0-9a-f-]{36}$/);
        // The plaintext is not visible in the envelope.
        expect(Buffer.from(ciphertext.slice(4), 'base64url').includes(plaintext.subarray(0, 64))).toBe(false);

        const response = await decrypt(t, ws, ciphertext);
        expect(response.statusCode).toBe(200);
        expect(response.headers['cache-control']).toBe('no-store');
        const body = response.json<{ plaintext: string; scope: Scope }>();
        expect(Buffer.from(body.plaintext, 'base64').equals(plaintext)).toBe(true);
        expect(body.scope).toEqual(scope);
      });

      it('round-trips an empty plaintext', async () => {
        const { ciphertext } = await encrypt(t, ws, scope, Buffer.alloc(0));
        const response = await decrypt(t, ws, ciphertext, scope);
        expect(response.statusCode).toBe(200);
        expect(response.json()).toEqual({ plaintext: '', scope });
      });

      it('encrypts the same plaintext to different ciphertexts (random nonce)', async () => {
        const a = await encrypt(t, ws, scope, Buffer.from('same'));
        const b = await encrypt(t, ws, scope, Buffer.from('same'));
        expect(a.ciphertext).not.toBe(b.ciphertext);
        expect(a.keyId).toBe(b.keyId);
      });

      it('decrypts with the right scope, and fails opaquely with any other', async () => {
        const { ciphertext } = await encrypt(t, ws, scope, Buffer.from('scoped secret'));
        const right = await decrypt(t, ws, ciphertext, scope);
        expect(right.statusCode).toBe(200);
        expect(Buffer.from(right.json().plaintext, 'base64').toString()).toBe('scoped secret');

        const otherId = expectError(await decrypt(t, ws, ciphertext, { type, id: `${type}-43` }), 400, 'decryption_failed');
        const otherType = SCOPE_TYPES.find((s) => s !== type)!;
        const otherKind = expectError(await decrypt(t, ws, ciphertext, { type: otherType, id: scope.id }), 400, 'decryption_failed');
        expect(otherKind.message).toBe(otherId.message);
        expect(otherId.message).not.toContain(scope.id);
      });
    });

    it('keeps scope ids with unicode intact', async () => {
      const scope: Scope = { type: 'connection', id: 'conn-日本-✓' };
      const { ciphertext } = await encrypt(t, ws, scope, Buffer.from('x'));
      const response = await decrypt(t, ws, ciphertext, scope);
      expect(response.statusCode).toBe(200);
      expect(response.json().scope).toEqual(scope);
    });

    it('uses one key per job and per connection, one hourly key for events and one log key', async () => {
      const key = async (type: Scope['type'], id: string) => (await encrypt(t, ws, { type, id }, Buffer.from('k'))).keyId;
      expect(await key('job', 'j-a')).toBe(await key('job', 'j-a'));
      expect(await key('job', 'j-a')).not.toBe(await key('job', 'j-b'));
      expect(await key('connection', 'c-a')).toBe(await key('connection', 'c-a'));
      expect(await key('connection', 'c-a')).not.toBe(await key('connection', 'c-b'));
      expect(await key('event', 'e-a')).toBe(await key('event', 'e-b'));
      expect(await key('log', 'l-a')).toBe(await key('log', 'l-b'));
      const distinct = new Set([await key('job', 'j-a'), await key('connection', 'c-a'), await key('event', 'e-a'), await key('log', 'l-a')]);
      expect(distinct.size).toBe(4);
    });

    it('round-trips a 64 KiB plaintext', async () => {
      const plaintext = Buffer.alloc(65_536, 0xa5);
      const scope: Scope = { type: 'job', id: 'big' };
      const { ciphertext } = await encrypt(t, ws, scope, plaintext);
      const response = await decrypt(t, ws, ciphertext, scope);
      expect(Buffer.from(response.json().plaintext, 'base64').equals(plaintext)).toBe(true);
    });

    it('serves many concurrent encrypts and decrypts of one scope consistently', async () => {
      const scope: Scope = { type: 'job', id: 'parallel' };
      const plaintexts = Array.from({ length: 25 }, (_, i) => Buffer.from(`message ${i}`));
      const sealed = await Promise.all(plaintexts.map((p) => encrypt(t, ws, scope, p)));
      expect(new Set(sealed.map((s) => s.keyId)).size).toBe(1);
      const opened = await Promise.all(sealed.map((s) => decrypt(t, ws, s.ciphertext, scope)));
      opened.forEach((response, i) => {
        expect(response.statusCode).toBe(200);
        expect(Buffer.from(response.json().plaintext, 'base64').equals(plaintexts[i]!)).toBe(true);
      });
    });

    it('answers encrypt with { ciphertext, keyId } only', async () => {
      const body = await ok(t, 'POST', `${envUrl(ws)}/encrypt`, { scope: { type: 'log', id: 'audit' }, plaintext: 'aGk=' });
      expect(Object.keys(body).sort()).toEqual(['ciphertext', 'keyId']);
      const response = await call(t, 'POST', `${envUrl(ws)}/decrypt`, { ciphertext: body.ciphertext });
      expect(response.json()).toEqual({ plaintext: 'aGk=', scope: { type: 'log', id: 'audit' } });
    });
  });
}
