import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKeystrataError } from '../../src/errors.js';
import type { DataScope } from '../../src/service/scoped-crypto.js';
import type { EnvironmentContext } from '../../src/service/workspaces.js';
import { ks1Binary, ks1Text } from '../support/ks1-edit.js';
import { openTestKeystrata, type TestKeystrata } from '../support/test-keystrata.js';

/**
 * Fuzzing the decrypt path of the service (ks.crypto.decrypt, no HTTP in between): real
 * ciphertexts of every scope, mutated — bits flipped, bytes set, truncated, extended, bytes
 * inserted or deleted, headers spliced onto other bodies, the text re-encoded — must ALL fail with
 * KeystrataError decryption_failed. The only success allowed is for input byte-identical to an
 * original, and then it must give that original's plaintext.
 *
 * SQLite only: the property is about the crypto path; the stores are exercised elsewhere, and a
 * mutated key id costs one store lookup, cheapest on the embedded store.
 */

interface Original {
  readonly scope: DataScope;
  readonly text: string;
  readonly binary: Buffer;
  readonly plaintext: Buffer;
}

type Mutation =
  | { kind: 'flip'; source: number; flips: { at: number; bit: number }[] }
  | { kind: 'set'; source: number; at: number; value: number }
  | { kind: 'truncate'; source: number; length: number }
  | { kind: 'extend'; source: number; extra: Uint8Array }
  | { kind: 'insert'; source: number; at: number; bytes: Uint8Array }
  | { kind: 'delete'; source: number; at: number; count: number }
  | { kind: 'splice'; source: number; other: number; cut: number; otherCut: number }
  | { kind: 'text'; source: number; at: number; char: string }
  | { kind: 'reencode'; source: number; encoding: 'base64' | 'base64pad' | 'hex' | 'upper-prefix' | 'trailing' };

const RUNS = 10_000;

describe('decrypt fuzzing (service level)', () => {
  let t: TestKeystrata;
  let env: EnvironmentContext;
  const originals: Original[] = [];

  beforeAll(async () => {
    t = await openTestKeystrata({ store: 'sqlite' });
    const ws = await t.ks.workspaces.createWorkspace('fuzz');
    env = await t.ks.workspaces.resolveEnvironment(ws.id, 'production');
    const scopes: DataScope[] = [
      { type: 'job', id: 'job-1' },
      { type: 'job', id: 'job-2' },
      { type: 'event', id: 'evt-1' },
      { type: 'event', id: 'evt-2' },
      { type: 'connection', id: 'conn-1' },
      { type: 'log', id: 'log-1' },
    ];
    for (const [i, scope] of scopes.entries()) {
      for (const plaintext of [Buffer.alloc(0), Buffer.from(`fuzz plaintext ${i}`), Buffer.alloc(70, i + 1)]) {
        const { ciphertext } = await t.ks.crypto.encrypt(env, scope, plaintext);
        originals.push({ scope, text: ciphertext, binary: ks1Binary(ciphertext), plaintext });
      }
    }
  });
  afterAll(async () => {
    await t?.destroy();
  });

  const source = fc.nat({ max: 1000 });
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip' as const), source, flips: fc.array(fc.record({ at: fc.nat(), bit: fc.nat({ max: 7 }) }), { minLength: 1, maxLength: 4 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('set' as const), source, at: fc.nat(), value: fc.nat({ max: 255 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), source, length: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('extend' as const), source, extra: fc.uint8Array({ minLength: 1, maxLength: 40 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('insert' as const), source, at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), source, at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('splice' as const), source, other: source, cut: fc.nat(), otherCut: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('text' as const), source, at: fc.nat(), char: fc.constantFrom('A', 'a', '0', '-', '_', '+', '/', '=', ' ', '.', 'é') }) },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('reencode' as const), source, encoding: fc.constantFrom('base64' as const, 'base64pad' as const, 'hex' as const, 'upper-prefix' as const, 'trailing' as const) }),
    },
  );

  /** The mutated text, and the original it came from. */
  function apply(m: Mutation): { text: string; original: Original } {
    const original = originals[m.source % originals.length]!;
    const b = Buffer.from(original.binary);
    const within = (n: number, length = b.length) => (length === 0 ? 0 : n % length);
    switch (m.kind) {
      case 'flip':
        for (const { at, bit } of m.flips) b[within(at)] = b[within(at)]! ^ (1 << bit);
        return { text: ks1Text(b), original };
      case 'set':
        b[within(m.at)] = m.value;
        return { text: ks1Text(b), original };
      case 'truncate':
        return { text: ks1Text(b.subarray(0, within(m.length))), original };
      case 'extend':
        return { text: ks1Text(Buffer.concat([b, m.extra])), original };
      case 'insert': {
        const at = within(m.at, b.length + 1);
        return { text: ks1Text(Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)])), original };
      }
      case 'delete': {
        const at = within(m.at);
        return { text: ks1Text(Buffer.concat([b.subarray(0, at), b.subarray(at + m.count)])), original };
      }
      case 'splice': {
        const other = originals[m.other % originals.length]!.binary;
        return { text: ks1Text(Buffer.concat([b.subarray(0, within(m.cut)), other.subarray(within(m.otherCut, other.length))])), original };
      }
      case 'text': {
        const at = 4 + within(m.at, original.text.length - 4);
        return { text: original.text.slice(0, at) + m.char + original.text.slice(at + 1), original };
      }
      case 'reencode': {
        const body = original.text.slice(4);
        const text = {
          base64: `ks1:${original.binary.toString('base64').replace(/=+$/, '')}`,
          base64pad: `ks1:${original.binary.toString('base64')}`,
          hex: `ks1:${original.binary.toString('hex')}`,
          'upper-prefix': `KS1:${body}`,
          trailing: `${original.text}\n`,
        }[m.encoding];
        return { text, original };
      }
    }
  }

  it(`rejects ${RUNS} mutated ciphertexts with decryption_failed, and never returns wrong plaintext`, async () => {
    let identical = 0;
    let rejected = 0;
    await fc.assert(
      fc.asyncProperty(mutation, fc.boolean(), async (m, assertScope) => {
        const { text, original } = apply(m);
        const identicalToSome = originals.find((o) => o.text === text);
        const outcome = await t.ks.crypto.decrypt(env, text, assertScope ? original.scope : undefined).then(
          (result) => ({ ok: true as const, result }),
          (error: unknown) => ({ ok: false as const, error }),
        );
        if (identicalToSome) {
          identical += 1;
          // Unchanged input (a mutation that changed nothing, or a splice that rebuilt an original).
          if (assertScope && identicalToSome !== original && (identicalToSome.scope.type !== original.scope.type || identicalToSome.scope.id !== original.scope.id)) {
            expect(outcome.ok).toBe(false);
            return;
          }
          expect(outcome.ok).toBe(true);
          if (outcome.ok) expect(outcome.result.plaintext.equals(identicalToSome.plaintext)).toBe(true);
          return;
        }
        if (outcome.ok) throw new Error(`mutation ${JSON.stringify(m)} decrypted to ${outcome.result.plaintext.toString('hex')}`);
        if (!isKeystrataError(outcome.error) || outcome.error.code !== 'decryption_failed') throw outcome.error;
        expect(outcome.error.message).toBe('The ciphertext could not be decrypted.');
        rejected += 1;
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
    expect(rejected).toBeGreaterThanOrEqual(RUNS * 0.95);
    expect(identical + rejected).toBe(RUNS);
  }, 60_000);

  it('still decrypts every original', async () => {
    for (const o of originals) {
      const { plaintext, scope } = await t.ks.crypto.decrypt(env, o.text, o.scope);
      expect(plaintext.equals(o.plaintext)).toBe(true);
      expect(scope).toEqual(o.scope);
    }
  });
});
