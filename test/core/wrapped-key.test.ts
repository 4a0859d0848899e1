import { describe, expect, it } from 'vitest';
import { KEY_LENGTH, newId, randomKey } from '../../src/core/bytes.js';
import { WRAPPED_KEY_LENGTH, WRAPPED_KEY_VERSION, unwrapKey, wrapKey, type WrapBinding } from '../../src/core/wrapped-key.js';

const parent = randomKey();
const child = randomKey();
const binding: WrapBinding = { environmentId: newId(), keyId: newId(), kind: 'job', parentId: newId() };
const wrapped = wrapKey(parent, child, binding);

describe('wrapped key', () => {
  it('is version ‖ nonce ‖ encrypted key ‖ tag = 61 bytes and unwraps to the child key', () => {
    expect(WRAPPED_KEY_LENGTH).toBe(61);
    expect(wrapped).toHaveLength(WRAPPED_KEY_LENGTH);
    expect(wrapped[0]).toBe(WRAPPED_KEY_VERSION);
    expect(unwrapKey(parent, wrapped, binding)).toEqual(child);
    // The child key is not stored in clear.
    expect(wrapped.includes(child)).toBe(false);
  });

  it('wraps the same key differently each time (random nonce), both unwrap', () => {
    const again = wrapKey(parent, child, binding);
    expect(again.equals(wrapped)).toBe(false);
    expect(unwrapKey(parent, again, binding)).toEqual(child);
  });

  it.each([
    ['environmentId', { ...binding, environmentId: newId() }],
    ['keyId', { ...binding, keyId: newId() }],
    ['kind', { ...binding, kind: 'hourly' }],
    ['kind (prefix)', { ...binding, kind: 'jo' }],
    ['kind (case)', { ...binding, kind: 'Job' }],
    ['parentId', { ...binding, parentId: newId() }],
    ['keyId ↔ parentId swapped', { ...binding, keyId: binding.parentId, parentId: binding.keyId }],
  ] as const)('a different %s does not unwrap', (_field, other) => {
    expect(unwrapKey(parent, wrapped, other)).toBeUndefined();
  });

  it('another parent key does not unwrap', () => {
    expect(unwrapKey(randomKey(), wrapped, binding)).toBeUndefined();
  });

  it('any flipped bit does not unwrap', () => {
    for (let i = 0; i < wrapped.length; i += 1) {
      for (let bit = 0; bit < 8; bit += 1) {
        const tampered = Buffer.from(wrapped);
        tampered[i]! ^= 1 << bit;
        expect(unwrapKey(parent, tampered, binding), `byte ${i} bit ${bit}`).toBeUndefined();
      }
    }
  });

  it('truncated or extended bytes do not unwrap', () => {
    for (let length = 0; length < wrapped.length; length += 1) {
      expect(unwrapKey(parent, wrapped.subarray(0, length), binding), `length ${length}`).toBeUndefined();
    }
    expect(unwrapKey(parent, Buffer.concat([wrapped, Buffer.of(0)]), binding)).toBeUndefined();
    // Without the version byte (60 bytes), and with the version byte dropped but a byte appended.
    expect(unwrapKey(parent, wrapped.subarray(1), binding)).toBeUndefined();
    expect(unwrapKey(parent, Buffer.concat([wrapped.subarray(1), Buffer.of(WRAPPED_KEY_VERSION)]), binding)).toBeUndefined();
  });

  it('refuses a child key that is not 32 bytes', () => {
    for (const length of [0, 16, 31, 33, 64]) {
      expect(() => wrapKey(parent, Buffer.alloc(length), binding), `length ${length}`).toThrow(RangeError);
    }
    expect(KEY_LENGTH).toBe(32);
  });

  it('refuses a parent key that is not 32 bytes', () => {
    expect(() => wrapKey(Buffer.alloc(16), child, binding)).toThrow(RangeError);
  });

  it('refuses malformed ids in the binding', () => {
    expect(() => wrapKey(parent, child, { ...binding, parentId: 'parent' })).toThrow(TypeError);
    expect(() => unwrapKey(parent, wrapped, { ...binding, keyId: binding.keyId.toUpperCase() })).toThrow(TypeError);
  });
});
