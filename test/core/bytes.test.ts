import { describe, expect, it } from 'vitest';
import {
  KEY_LENGTH,
  constantTimeEqual,
  idFromBytes,
  idToBytes,
  isId,
  newId,
  randomKey,
  sha256Hex,
  zeroize,
} from '../../src/core/bytes.js';
import { canonicalContext, contextDigest, type KeyContext } from '../../src/core/key-context.js';

describe('constantTimeEqual', () => {
  it('is true for equal inputs, bytes or strings', () => {
    expect(constantTimeEqual(Buffer.from('secret'), Buffer.from('secret'))).toBe(true);
    expect(constantTimeEqual('secret', 'secret')).toBe(true);
    expect(constantTimeEqual('', '')).toBe(true);
    expect(constantTimeEqual('sécret', Buffer.from('sécret', 'utf8'))).toBe(true);
  });

  it('is false for unequal inputs of the same length', () => {
    expect(constantTimeEqual('secret', 'secreT')).toBe(false);
    expect(constantTimeEqual(Buffer.of(0, 0, 0), Buffer.of(0, 0, 1))).toBe(false);
  });

  it('is false for inputs of different lengths, including a prefix and the empty string', () => {
    expect(constantTimeEqual('secret', 'secret1')).toBe(false);
    expect(constantTimeEqual('secret', 'secre')).toBe(false);
    expect(constantTimeEqual('', 'a')).toBe(false);
    expect(constantTimeEqual(Buffer.alloc(0), Buffer.alloc(1))).toBe(false);
  });
});

describe('zeroize and randomKey', () => {
  it('randomKey gives distinct 32-byte keys', () => {
    const a = randomKey();
    const b = randomKey();
    expect(a).toHaveLength(KEY_LENGTH);
    expect(a.equals(b)).toBe(false);
  });

  it('overwrites the whole buffer, and only the view it is given', () => {
    const key = randomKey();
    key[0] = 1;
    zeroize(key);
    expect(key.equals(Buffer.alloc(KEY_LENGTH))).toBe(true);

    const backing = Buffer.alloc(8, 0xaa);
    zeroize(backing.subarray(2, 6));
    expect([...backing]).toEqual([0xaa, 0xaa, 0, 0, 0, 0, 0xaa, 0xaa]);

    const plain = new Uint8Array([1, 2, 3]);
    zeroize(plain);
    expect([...plain]).toEqual([0, 0, 0]);
  });

  it('accepts undefined and null', () => {
    expect(() => zeroize(undefined)).not.toThrow();
    expect(() => zeroize(null)).not.toThrow();
  });
});

describe('ids', () => {
  it('newId is a lowercase version-4 UUID that round-trips through its 16 bytes', () => {
    for (let i = 0; i < 100; i += 1) {
      const id = newId();
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(isId(id)).toBe(true);
      const bytes = idToBytes(id);
      expect(bytes).toHaveLength(16);
      expect(idFromBytes(bytes)).toBe(id);
    }
  });

  it('maps a known id to its bytes', () => {
    const id = '00112233-4455-6677-8899-aabbccddeeff';
    expect(idToBytes(id).toString('hex')).toBe('00112233445566778899aabbccddeeff');
    expect(idFromBytes(Buffer.from('00112233445566778899aabbccddeeff', 'hex'))).toBe(id);
  });

  it('reads 16 bytes from a view at an offset', () => {
    const backing = Buffer.concat([Buffer.of(0xff, 0xff), Buffer.from('00112233445566778899aabbccddeeff', 'hex'), Buffer.of(0xff)]);
    expect(idFromBytes(backing.subarray(2, 18))).toBe('00112233-4455-6677-8899-aabbccddeeff');
  });

  it.each([
    '',
    'not-an-id',
    '00112233445566778899aabbccddeeff', // no dashes
    '00112233-4455-6677-8899-AABBCCDDEEFF', // uppercase: one spelling per id
    '{00112233-4455-6677-8899-aabbccddeeff}',
    ' 00112233-4455-6677-8899-aabbccddeeff',
    '00112233-4455-6677-8899-aabbccddeeff\n',
    '00112233-4455-6677-8899-aabbccddeef',
    '00112233-4455-6677-8899-aabbccddeefff',
    '0011223-34455-6677-8899-aabbccddeeff',
    '00112233-4455-6677-8899-aabbccddeegg',
  ])('rejects malformed id %j', (id) => {
    expect(isId(id)).toBe(false);
    expect(() => idToBytes(id)).toThrow(TypeError);
  });

  it('idFromBytes refuses anything but 16 bytes', () => {
    for (const length of [0, 15, 17, 32]) expect(() => idFromBytes(Buffer.alloc(length))).toThrow(TypeError);
  });

  it('sha256Hex hashes UTF-8', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex(Buffer.from('abc'))).toBe(sha256Hex('abc'));
  });
});

describe('key context canonicalisation', () => {
  it('is JSON with keys sorted by UTF-16 code units and no whitespace', () => {
    expect(canonicalContext({ b: '2', a: '1' })).toBe('{"a":"1","b":"2"}');
    expect(canonicalContext({})).toBe('{}');
    expect(canonicalContext({ 'quote"': 'back\\slash\n' })).toBe('{"quote\\"":"back\\\\slash\\n"}');
  });

  it('does not depend on the order of the pairs', () => {
    const a = { organization_id: 'org_1', region: 'eu', 'Zeta': 'z', 'ärger': 'ä' };
    const b = { 'ärger': 'ä', region: 'eu', 'Zeta': 'z', organization_id: 'org_1' };
    expect(canonicalContext(a)).toBe(canonicalContext(b));
    expect(contextDigest(a)).toEqual(contextDigest(b));
  });

  it('sorts integer-like keys as strings too, not in numeric order', () => {
    // JavaScript objects list integer-like keys first in numeric order; the canonical form must not.
    const context = { 9: 'nine', 10: 'ten', '1a': 'x', b: 'y' };
    expect(canonicalContext(context)).toBe('{"10":"ten","1a":"x","9":"nine","b":"y"}');
  });

  it('sorts by UTF-16 code units, not code points or locale', () => {
    // U+FF5E (one unit, 0xFF5E) sorts after U+1F511 (surrogates 0xD83D 0xDD11) in UTF-16 order,
    // though its code point is lower; "Z" (0x5A) sorts before "a" and "é".
    const context = { '～': '1', '🔑': '2', é: '3', a: '4', Z: '5' };
    expect(canonicalContext(context)).toBe('{"Z":"5","a":"4","é":"3","🔑":"2","～":"1"}');
  });

  it('gives a different digest for any different key or value', () => {
    const base: KeyContext = { organization_id: 'org_1', region: 'eu' };
    const variants: KeyContext[] = [
      { organization_id: 'org_2', region: 'eu' },
      { organization_id: 'org_1', region: 'us' },
      { organization_id: 'org_1', Region: 'eu' },
      { organization_id: 'org_1' },
      { organization_id: 'org_1', region: 'eu', extra: '' },
      { organization_id: 'org_1', region: 'eu ' },
      // Pair boundaries must not be ambiguous.
      { 'organization_id":"org_1","region': 'eu' },
      {},
    ];
    const digests = new Set([base, ...variants].map((c) => contextDigest(c).toString('hex')));
    expect(digests.size).toBe(variants.length + 1);
  });

  it('distinguishes Unicode keys and normalisation forms byte for byte', () => {
    const composed = { 'caf\u00e9': 'x' };
    const decomposed = { 'cafe\u0301': 'x' };
    expect(contextDigest(composed).equals(contextDigest(decomposed))).toBe(false);
    expect(contextDigest({ '日本': 'x' }).equals(contextDigest({ '日本': 'x' }))).toBe(true);
    expect(canonicalContext({ '日本': '🔑' })).toBe('{"日本":"🔑"}');
  });

  it('digests the UTF-8 bytes of the canonical form with SHA-256', () => {
    const context = { région: 'eu', tenant: 'acme' };
    expect(contextDigest(context)).toHaveLength(32);
    expect(contextDigest(context).toString('hex')).toBe(sha256Hex('{"région":"eu","tenant":"acme"}'));
  });
});

describe('fillNonce', () => {
  it('hands out distinct 12-byte nonces across pool refills', async () => {
    const { fillNonce } = await import('../../src/core/nonce.js');
    const seen = new Set<string>();
    const nonce = Buffer.alloc(12);
    for (let i = 0; i < 2000; i++) {
      fillNonce(nonce);
      seen.add(nonce.toString('hex'));
    }
    expect(seen.size).toBe(2000);
    expect(seen.has('0'.repeat(24))).toBe(false);
  });
});
