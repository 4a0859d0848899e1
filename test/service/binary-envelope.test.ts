import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envelopeFromText, envelopeToText } from '../../src/core/envelope.js';
import type { EnvironmentContext } from '../../src/service/workspaces.js';
import { openTestKeystrata, type TestKeystrata } from '../support/test-keystrata.js';

describe('binary ks1 envelopes (in-process API)', () => {
  let t: TestKeystrata;
  let env: EnvironmentContext;
  beforeAll(async () => {
    t = await openTestKeystrata();
    const ws = await t.ks.workspaces.createWorkspace('binary');
    env = await t.ks.workspaces.resolveEnvironment(ws.id, 'production');
  });
  afterAll(() => t.destroy());

  it('round-trips, and is exactly the binary form of the text the HTTP API returns', async () => {
    const scope = { type: 'job', id: 'job-b' } as const;
    const { envelope, keyId } = await t.ks.crypto.encryptBinary(env, scope, Buffer.from('bytes'));
    const opened = await t.ks.crypto.decryptBinary(env, envelope, scope);
    expect(opened.plaintext.toString()).toBe('bytes');
    const viaText = await t.ks.crypto.decrypt(env, envelopeToText(envelope));
    expect(viaText.plaintext.toString()).toBe('bytes');
    const { ciphertext, keyId: textKeyId } = await t.ks.crypto.encrypt(env, scope, Buffer.from('bytes'));
    expect(textKeyId).toBe(keyId);
    expect((await t.ks.crypto.decryptBinary(env, envelopeFromText(ciphertext)!)).plaintext.toString()).toBe('bytes');
  });

  it('rejects a tampered or truncated binary envelope with decryption_failed', async () => {
    const { envelope } = await t.ks.crypto.encryptBinary(env, { type: 'event', id: 'e1' }, Buffer.from('x'));
    for (const bad of [Buffer.concat([envelope.subarray(0, -1), Buffer.of(envelope.at(-1)! ^ 1)]), envelope.subarray(0, 30), Buffer.alloc(0)]) {
      await expect(t.ks.crypto.decryptBinary(env, bad)).rejects.toMatchObject({ code: 'decryption_failed' });
    }
  });
});
