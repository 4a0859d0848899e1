import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createWorkspace, envUrl, expectError, ok } from '../support/http-helpers.js';
import { openTestKeystrata, type TestKeystrata } from '../support/test-keystrata.js';

describe('encrypt/decrypt bound to a key context', () => {
  let t: TestKeystrata;
  let ws: string;
  let ciphertext: string;
  const scope = { type: 'connection', id: 'conn-1' } as const;
  const plaintext = Buffer.from('credentials').toString('base64');
  beforeAll(async () => {
    t = await openTestKeystrata();
    ws = (await createWorkspace(t)).id;
    ({ ciphertext } = await ok<{ ciphertext: string }>(t, 'POST', `${envUrl(ws)}/encrypt`, { scope, plaintext, context: { organization_id: 'org_1', region: 'eu' } }));
  });
  afterAll(() => t.destroy());

  it('decrypts with the same context, in any key order', async () => {
    const opened = await ok<{ plaintext: string }>(t, 'POST', `${envUrl(ws)}/decrypt`, { ciphertext, context: { region: 'eu', organization_id: 'org_1' } });
    expect(opened.plaintext).toBe(plaintext);
  });

  it('a wrong, partial, extra or missing context is the one opaque decryption_failed', async () => {
    const messages = new Set<string>();
    for (const context of [{ organization_id: 'org_2', region: 'eu' }, { organization_id: 'org_1' }, { organization_id: 'org_1', region: 'eu', x: 'y' }, undefined]) {
      const body = context === undefined ? { ciphertext } : { ciphertext, context };
      messages.add(expectError(await call(t, 'POST', `${envUrl(ws)}/decrypt`, body), 400, 'decryption_failed').message);
    }
    expect(messages.size).toBe(1);
  });

  it('a ciphertext made without a context does not open when one is presented', async () => {
    const plain = await ok<{ ciphertext: string }>(t, 'POST', `${envUrl(ws)}/encrypt`, { scope, plaintext });
    expectError(await call(t, 'POST', `${envUrl(ws)}/decrypt`, { ciphertext: plain.ciphertext, context: { organization_id: 'org_1' } }), 400, 'decryption_failed');
    expect((await ok<{ plaintext: string }>(t, 'POST', `${envUrl(ws)}/decrypt`, { ciphertext: plain.ciphertext })).plaintext).toBe(plaintext);
  });

  it('context shape is validated like vault object contexts', async () => {
    const error = expectError(await call(t, 'POST', `${envUrl(ws)}/encrypt`, { scope, plaintext, context: { 'bad key': 'x' } }), 400, 'invalid_request');
    expect(error.field).toMatch(/^context/);
  });
});
