import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/core/bytes.js';
import { adminTokenVerifier, ensureAdminToken, generateAdminToken } from '../../src/service/admin-token.js';

function memorySettings() {
  const values = new Map<string, string>();
  return {
    values,
    async getSetting(name: string) {
      return values.get(name);
    },
    async putSettingIfAbsent(name: string, value: string) {
      if (!values.has(name)) values.set(name, value);
      return values.get(name)!;
    },
  };
}

describe('admin token', () => {
  it('a fresh store generates a 256-bit token, stores only its hash and announces it once', async () => {
    const store = memorySettings();
    const first = await ensureAdminToken(store, undefined);
    expect(first.generatedToken).toMatch(/^ks_admin_[A-Za-z0-9_-]{43}$/);
    expect([...store.values.values()]).toEqual([sha256Hex(first.generatedToken!)]);
    expect([...store.values.values()].join()).not.toContain(first.generatedToken!);
    const second = await ensureAdminToken(store, undefined);
    expect(second.generatedToken).toBeUndefined();
    expect(adminTokenVerifier(second.acceptedHashes)(first.generatedToken!)).toBe(true);
  });

  it('a configured token is adopted by a fresh store and accepted next to the stored one later', async () => {
    const store = memorySettings();
    const configured = 'c'.repeat(40);
    const setup = await ensureAdminToken(store, configured);
    expect(setup.generatedToken).toBeUndefined();
    expect(adminTokenVerifier(setup.acceptedHashes)(configured)).toBe(true);
    const other = 'd'.repeat(40);
    const later = adminTokenVerifier((await ensureAdminToken(store, other)).acceptedHashes);
    expect(later(configured)).toBe(true);
    expect(later(other)).toBe(true);
  });

  it('rejects other tokens, prefixes, suffixes and the hash itself', () => {
    const token = generateAdminToken();
    const verify = adminTokenVerifier([sha256Hex(token)]);
    expect(verify(token)).toBe(true);
    for (const wrong of ['', token.slice(0, -1), token + 'x', token.toUpperCase(), sha256Hex(token), generateAdminToken()]) {
      expect(verify(wrong)).toBe(false);
    }
  });
});
