import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newId, randomKey } from '../../src/core/bytes.js';
import { ENVELOPE_PREFIX, bindingBytes, envelopeFromText, envelopeToText, openEnvelope, parseEnvelope, sealEnvelope } from '../../src/core/envelope.js';
import { contextDigest } from '../../src/core/key-context.js';

/*
 * Core fuzz test: mutated ciphertexts thrown at the whole decrypt path, text → binary → parse → open,
 * with the right key and binding. Whatever the input, the path must not throw, and it must return
 * undefined unless the input is byte-identical to the original envelope text.
 */

const key = randomKey();
const binding = bindingBytes({ workspaceId: newId(), environmentId: newId(), contextDigest: contextDigest({ org: 'o1' }) });
// 20 + 8 + 12 + 32 + 16 = 88 bytes ≡ 1 (mod 3): the text's last character carries 4 unused bits, so a
// lax base64url decoder would accept 15 other spellings of this exact envelope.
const plaintext = Buffer.from('fuzz me: {"password":"hunter2"}.');
const originalBinary = sealEnvelope(key, { scopeKind: 'job', scopeId: 'job-é-1', keyId: newId() }, binding, plaintext);
const originalText = envelopeToText(originalBinary);
// Another valid envelope under the same key and binding, as splice material (headers, nonces, tags).
const otherBinary = sealEnvelope(key, { scopeKind: 'object', scopeId: 'other', keyId: newId() }, binding, Buffer.from('other plaintext!'));

const RUNS = 12_000;
const stats = { runs: 0, decoded: 0, parsed: 0, opened: 0 };

/** The decrypt path as a caller runs it. */
function decryptText(text: string): Buffer | undefined {
  const binary = envelopeFromText(text);
  if (binary === undefined) return undefined;
  stats.decoded += 1;
  const parsed = parseEnvelope(binary);
  if (parsed === undefined) return undefined;
  stats.parsed += 1;
  return openEnvelope(key, parsed, binding);
}

const n = originalBinary.length;
const bytes = (max: number): fc.Arbitrary<Buffer> => fc.uint8Array({ minLength: 0, maxLength: max }).map((a) => Buffer.from(a));
const toText = (binary: Buffer): string => envelopeToText(binary);

const binaryMutations: fc.Arbitrary<string>[] = [
  // Bit flips: one, or several.
  fc.array(fc.tuple(fc.nat(n - 1), fc.nat(7)), { minLength: 1, maxLength: 4 }).map((flips) => {
    const copy = Buffer.from(originalBinary);
    for (const [i, bit] of flips) copy[i]! ^= 1 << bit;
    return toText(copy);
  }),
  // Truncations.
  fc.nat(n - 1).map((length) => toText(originalBinary.subarray(0, length))),
  // Extensions.
  bytes(40).filter((b) => b.length > 0).map((extra) => toText(Buffer.concat([originalBinary, extra]))),
  // Splices: replace [start, start + deleted) with random bytes.
  fc.tuple(fc.nat(n), fc.nat(24), bytes(24)).map(([start, deleted, inserted]) =>
    toText(Buffer.concat([originalBinary.subarray(0, start), inserted, originalBinary.subarray(Math.min(n, start + deleted))])),
  ),
  // Splices with another valid envelope: its prefix, then ours from the same offset.
  fc.nat(Math.min(n, otherBinary.length)).map((cut) => toText(Buffer.concat([otherBinary.subarray(0, cut), originalBinary.subarray(cut)]))),
  // Our header with a mutated scope-id length field.
  fc.integer({ min: 0, max: 0xffff }).map((length) => {
    const copy = Buffer.from(originalBinary);
    copy.writeUInt16BE(length, 18);
    return toText(copy);
  }),
  // Random bytes behind a valid prefix and a valid-looking first two header bytes.
  fc.tuple(fc.integer({ min: 0, max: 7 }), bytes(120)).map(([kind, rest]) => toText(Buffer.concat([Buffer.of(1, kind), rest]))),
  // Random bytes.
  bytes(200).map(toText),
];

const textMutations: fc.Arbitrary<string>[] = [
  // One character replaced, inserted or deleted in the text (covers unused bits of the last character).
  fc.tuple(fc.nat(originalText.length), fc.constantFrom(...'AQgw-_+/=.% \n\0é'.split('')), fc.constantFrom('replace', 'insert', 'delete')).map(
    ([at, char, op]) =>
      originalText.slice(0, at) + (op === 'delete' ? '' : char) + originalText.slice(op === 'insert' ? at : at + 1),
  ),
  // Every base64url character in the last position: only the original's own is canonical.
  fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('')).map((char) => originalText.slice(0, -1) + char),
  // Random strings with and without the prefix.
  fc.string({ unit: 'binary', maxLength: 120 }),
  fc.string({ unit: 'binary', maxLength: 120 }).map((s) => ENVELOPE_PREFIX + s),
  fc.base64String({ maxLength: 160 }).map((s) => ENVELOPE_PREFIX + s),
  fc.stringMatching(/^[A-Za-z0-9_-]{0,160}$/).map((s) => ENVELOPE_PREFIX + s),
  // The original with its prefix changed.
  fc.constantFrom('', 'KS1:', 'ks2:', 'ks1', 'ks1:ks1:', ' ks1:').map((prefix) => prefix + originalText.slice(ENVELOPE_PREFIX.length)),
];

describe('core fuzz: mutated ks1 ciphertexts', () => {
  it('sanity: the original opens, and its text ends in a character with unused bits', () => {
    expect(originalBinary.length % 3).toBe(1);
    expect(decryptText(originalText)).toEqual(plaintext);
  });

  it(`never throws and only the exact original opens (${RUNS} inputs)`, () => {
    fc.assert(
      fc.property(fc.oneof(...binaryMutations, ...textMutations), (text) => {
        stats.runs += 1;
        const result = decryptText(text);
        if (result !== undefined) {
          stats.opened += 1;
          return text === originalText && result.equals(plaintext);
        }
        return true;
      }),
      { numRuns: RUNS },
    );
    console.info(`[fuzz] ${stats.runs} inputs: ${stats.decoded} decoded, ${stats.parsed} parsed, ${stats.opened} opened`);
    expect(stats.runs).toBeGreaterThanOrEqual(10_000);
    // The fuzzer must reach the AEAD, not only bounce off the text and header checks.
    expect(stats.parsed).toBeGreaterThan(RUNS / 10);
  });
});
