import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCOPE_TYPES, createWorkspace, decrypt, encrypt, envUrl, expectError, ok, type Scope, type ScopeType } from '../support/http-helpers.js';
import { SCOPE_CODES, flipBit, joinKs1, ks1Binary, ks1Regions, ks1Text, splitKs1, uuidBytes } from '../support/ks1-edit.js';
import { openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

/**
 * Every way a ciphertext can fail to belong to the request — tampered, truncated, garbage, another
 * tenant's, another environment's, another scope's, a vault object's — must produce the SAME
 * answer: status, code and message. Any difference is an oracle; a 500 or a 200 is a bug.
 */

interface Case {
  readonly name: string;
  readonly ciphertext: string;
  readonly ws?: string;
  readonly env?: string;
  readonly scope?: Scope;
}

for (const store of testStores()) {
  describe(`one opaque decryption_failed (${store})`, () => {
    let t: TestKeystrata;
    let wsA: string;
    let wsB: string;
    const sealed = {} as Record<ScopeType, { ciphertext: string; keyId: string; scope: Scope; plaintext: Buffer }>;
    let jobB: { ciphertext: string; keyId: string };
    let objectCiphertext: string;
    let reference: { status: number; code: string; message: string };

    beforeAll(async () => {
      t = await openTestKeystrata({ store });
      wsA = (await createWorkspace(t, 'tenant-a')).id;
      wsB = (await createWorkspace(t, 'tenant-b')).id;
      await ok(t, 'POST', `/v1/workspaces/${wsA}/environments`, { name: 'staging' }, 201);
      for (const type of SCOPE_TYPES) {
        const scope: Scope = { type, id: `${type}-A` };
        const plaintext = Buffer.from(`secret of ${type} A, long enough to span blocks`);
        // The same scope ids exist in the other tenant and environment, so keys exist there too.
        await encrypt(t, wsB, scope, Buffer.from('b'));
        await encrypt(t, wsA, scope, Buffer.from('s'), 'staging');
        sealed[type] = { ...(await encrypt(t, wsA, scope, plaintext)), scope, plaintext };
      }
      jobB = await encrypt(t, wsA, { type: 'job', id: 'job-B' }, Buffer.from('job B'));
      const object = await ok(t, 'POST', `${envUrl(wsA)}/objects`, { name: 'db-password', value: 'hunter2', context: { org: 'o1' } }, 201);
      const version = await t.ks.store.getObjectVersion(object.id, 1);
      objectCiphertext = ks1Text(version!.ciphertext);
      const garbage = await decrypt(t, wsA, 'this is not a ciphertext');
      const error = expectError(garbage, 400, 'decryption_failed');
      reference = { status: garbage.statusCode, code: error.code, message: error.message };
    });
    afterAll(async () => {
      await t?.destroy();
    });

    async function expectOpaqueFailure(c: Case): Promise<void> {
      const response = await decrypt(t, c.ws ?? wsA, c.ciphertext, c.scope, c.env);
      const error = expectError(response, reference.status, reference.code);
      expect({ case: c.name, message: error.message }).toEqual({ case: c.name, message: reference.message });
      expect(Object.keys(error).sort()).toEqual(['code', 'message', 'requestId']);
      if (c.ciphertext.length >= 40) expect(response.body).not.toContain(c.ciphertext.slice(4, 40));
    }

    async function runAll(cases: readonly Case[]): Promise<void> {
      for (const c of cases) await expectOpaqueFailure(c);
    }

    it('for a bit flip in each region of the envelope, for every scope type', async () => {
      const cases: Case[] = [];
      for (const type of SCOPE_TYPES) {
        const { ciphertext } = sealed[type];
        for (const [region, [start, end]] of Object.entries(ks1Regions(ciphertext))) {
          expect(end).toBeGreaterThan(start);
          for (const index of new Set([start, end - 1])) {
            for (const bit of [0, 7]) cases.push({ name: `${type}: ${region}[${index}] bit ${bit}`, ciphertext: flipBit(ciphertext, index, bit) });
          }
        }
      }
      await runAll(cases);
    });

    it('for truncated and extended envelopes', async () => {
      const cases: Case[] = [];
      for (const type of SCOPE_TYPES) {
        const binary = ks1Binary(sealed[type].ciphertext);
        const headerEnd = 20 + binary.readUInt16BE(18);
        for (const length of [0, 1, 2, 18, 19, 20, headerEnd, headerEnd + 12, headerEnd + 27, binary.length - 16, binary.length - 1]) {
          cases.push({ name: `${type}: truncated to ${length}`, ciphertext: ks1Text(binary.subarray(0, length)) });
        }
        cases.push({ name: `${type}: +1 byte`, ciphertext: ks1Text(Buffer.concat([binary, Buffer.of(0)])) });
        cases.push({ name: `${type}: +16 bytes`, ciphertext: ks1Text(Buffer.concat([binary, randomBytes(16)])) });
        cases.push({ name: `${type}: nonce dropped`, ciphertext: ks1Text(Buffer.concat([binary.subarray(0, headerEnd), binary.subarray(headerEnd + 12)])) });
      }
      await runAll(cases);
    });

    it('for garbage and wrong prefixes', async () => {
      const text = sealed.job.ciphertext;
      const body = text.slice(4);
      const parts = splitKs1(text);
      const standard = `ks1:${ks1Binary(text).toString('base64')}`;
      await runAll([
        { name: 'random text', ciphertext: 'hello world' },
        { name: 'prefix only', ciphertext: 'ks1:' },
        { name: 'bad alphabet', ciphertext: 'ks1:!!!!$$$$' },
        { name: 'random base64url', ciphertext: ks1Text(randomBytes(120)) },
        { name: 'random body under a plausible header', ciphertext: joinKs1({ ...parts, nonce: randomBytes(12), body: randomBytes(parts.body.length), tag: randomBytes(16) }) },
        { name: 'unknown key id', ciphertext: joinKs1({ ...parts, keyId: uuidBytes(randomUUID()) }) },
        { name: 'ks2 prefix', ciphertext: `ks2:${body}` },
        { name: 'upper-case prefix', ciphertext: `KS1:${body}` },
        { name: 'no prefix', ciphertext: body },
        // The standard-alphabet form of this very envelope; skipped when it happens to be identical
        // to the base64url text (no '+', '/' or padding in it: about one run in seventy).
        ...(standard === text ? [] : [{ name: 'standard base64 with padding', ciphertext: standard }]),
        { name: 'one padding character', ciphertext: `${text}=` },
        { name: 'base64url with padding', ciphertext: `${text}==` },
        { name: 'whitespace inside', ciphertext: `ks1:${body.slice(0, 10)} ${body.slice(10)}` },
        { name: 'version 2', ciphertext: joinKs1({ ...parts, version: 2 }) },
        { name: 'scope kind 0', ciphertext: joinKs1({ ...parts, scopeKind: 0 }) },
        { name: 'scope kind 9', ciphertext: joinKs1({ ...parts, scopeKind: 9 }) },
        { name: 'scope id not UTF-8', ciphertext: joinKs1({ ...parts, scopeId: Buffer.from([0xff, 0xfe, 0x41]) }) },
      ]);
    });

    async function crossTenantCases(): Promise<Case[]> {
      const cases: Case[] = [];
      for (const type of SCOPE_TYPES) {
        const { ciphertext, scope } = sealed[type];
        cases.push({ name: `${type} in another workspace`, ciphertext, ws: wsB });
        cases.push({ name: `${type} in another workspace, with scope`, ciphertext, ws: wsB, scope });
        cases.push({ name: `${type} in another environment`, ciphertext, env: 'staging' });
        cases.push({ name: `${type} in another environment, with scope`, ciphertext, env: 'staging', scope });
      }
      return cases;
    }

    it('for ciphertexts from another workspace or environment, with a warm and a cold key cache', async () => {
      await runAll(await crossTenantCases());
      t.ks.cache.clear();
      await runAll(await crossTenantCases());
    });

    it('for a ciphertext presented under another scope, or re-labelled to another scope', async () => {
      const a = splitKs1(sealed.job.ciphertext);
      const b = splitKs1(jobB.ciphertext);
      const relabel = (type: ScopeType, id: string, keyId?: string) =>
        joinKs1({ ...splitKs1(sealed[type].ciphertext), scopeId: Buffer.from(id), ...(keyId ? { keyId: uuidBytes(keyId) } : {}) });
      await runAll([
        { name: 'job A asserted as job B', ciphertext: sealed.job.ciphertext, scope: { type: 'job', id: 'job-B' } },
        { name: 'job A asserted as event', ciphertext: sealed.job.ciphertext, scope: { type: 'event', id: 'job-A' } },
        { name: 'job A header → job B (job A key)', ciphertext: relabel('job', 'job-B') },
        // Names job B's own key, so only the authentication tag stands between it and success.
        { name: 'job A header → job B (job B key)', ciphertext: joinKs1({ ...a, scopeId: b.scopeId, keyId: b.keyId }) },
        { name: 'job A header → job B (job B key), asserted job B', ciphertext: joinKs1({ ...a, scopeId: b.scopeId, keyId: b.keyId }), scope: { type: 'job', id: 'job-B' } },
        { name: 'event A → event B (shared hourly key)', ciphertext: relabel('event', 'event-B') },
        { name: 'log A → log B (shared log key)', ciphertext: relabel('log', 'log-B') },
        { name: 'connection A → connection B', ciphertext: relabel('connection', 'connection-B') },
        { name: 'event relabelled as a job under the hourly key', ciphertext: joinKs1({ ...splitKs1(sealed.event.ciphertext), scopeKind: SCOPE_CODES.job }) },
        { name: 'job relabelled as an event under the hourly key', ciphertext: joinKs1({ ...a, scopeKind: SCOPE_CODES.event, keyId: splitKs1(sealed.event.ciphertext).keyId }) },
        { name: 'log relabelled as connection', ciphertext: joinKs1({ ...splitKs1(sealed.log.ciphertext), scopeKind: SCOPE_CODES.connection }) },
        { name: 'job key header with the tag of job B', ciphertext: joinKs1({ ...a, tag: b.tag }) },
      ]);
    });

    it("for a vault object's ciphertext presented to decrypt", async () => {
      const parts = splitKs1(objectCiphertext);
      expect(parts.scopeKind).toBe(SCOPE_CODES.object);
      await runAll([
        { name: 'object value', ciphertext: objectCiphertext },
        { name: 'object value relabelled as a job', ciphertext: joinKs1({ ...parts, scopeKind: SCOPE_CODES.job }) },
        { name: 'object value relabelled as a connection', ciphertext: joinKs1({ ...parts, scopeKind: SCOPE_CODES.connection }) },
        { name: 'object value, asserted as a job', ciphertext: objectCiphertext, scope: { type: 'job', id: 'x' } },
      ]);
    });

    it('and still decrypts every original afterwards', async () => {
      for (const type of SCOPE_TYPES) {
        const { ciphertext, scope, plaintext } = sealed[type];
        const response = await decrypt(t, wsA, ciphertext, scope);
        expect(response.statusCode).toBe(200);
        expect(Buffer.from(response.json().plaintext, 'base64').equals(plaintext)).toBe(true);
      }
      expect((await decrypt(t, wsA, jobB.ciphertext)).statusCode).toBe(200);
    });
  });
}
