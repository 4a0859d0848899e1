import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { NONCE_LENGTH, open, seal } from '../../src/core/aead.js';
import { KEY_LENGTH } from '../../src/core/bytes.js';
import { hkdfSha256 } from '../../src/core/hkdf.js';
import { aesKeyUnwrap, aesKeyUnwrapPad, aesKeyWrap, aesKeyWrapPad } from '../../src/core/key-wrap.js';
import { injectedNonces } from '../support/fixed-nonce.js';

/*
 * Wycheproof (C2SP/wycheproof, Apache-2.0) vectors against the primitives keystrata uses. The vectors
 * are read from KEYSTRATA_WYCHEPROOF_DIR (default ../shared/testvectors/wycheproof from the repository
 * root) and are never copied into the repository. A missing folder fails the suite, everywhere.
 */

// aead.ts takes its nonce from fillNonce (src/core/nonce.ts). To check the encrypt direction against
// the vectors' exact ciphertexts, a test can queue the nonce the next call must produce; otherwise
// the real nonce source runs.
vi.mock('../../src/core/nonce.js', () => import('../support/fixed-nonce.js').then((m) => m.fixedNonceModule()));

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const vectorDir = process.env.KEYSTRATA_WYCHEPROOF_DIR ?? path.resolve(repoRoot, '../shared/testvectors/wycheproof');
const available = existsSync(vectorDir);

// Never skipped: without the vectors this fails (here and in CI), it does not quietly pass.
it(`Wycheproof vector folder exists (${vectorDir})`, () => {
  expect(available, `Wycheproof vectors missing at ${vectorDir}; set KEYSTRATA_WYCHEPROOF_DIR`).toBe(true);
});

// ---- minimal typed reading of the Wycheproof JSON (no `any`) ----

type Json = Readonly<Record<string, unknown>>;
type Result = 'valid' | 'invalid' | 'acceptable';

interface Vector {
  readonly tcId: number;
  readonly comment: string;
  readonly flags: readonly string[];
  readonly result: Result;
  readonly raw: Json;
}

interface Group {
  readonly params: Json;
  readonly tests: readonly Vector[];
}

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function loadVectors(file: string, algorithm: string): Group[] {
  const doc: unknown = JSON.parse(readFileSync(path.join(vectorDir, file), 'utf8'));
  if (!isRecord(doc) || doc.algorithm !== algorithm || !Array.isArray(doc.testGroups)) {
    throw new Error(`${file}: not a Wycheproof ${algorithm} file`);
  }
  let total = 0;
  const groups = doc.testGroups.map((group: unknown): Group => {
    if (!isRecord(group) || !Array.isArray(group.tests)) throw new Error(`${file}: malformed test group`);
    const tests = group.tests.map((test: unknown): Vector => {
      if (!isRecord(test)) throw new Error(`${file}: malformed test`);
      const { tcId, comment, flags, result } = test;
      if (
        typeof tcId !== 'number' ||
        typeof comment !== 'string' ||
        !Array.isArray(flags) ||
        !flags.every((flag): flag is string => typeof flag === 'string') ||
        (result !== 'valid' && result !== 'invalid' && result !== 'acceptable')
      ) {
        throw new Error(`${file}: malformed test ${String(tcId)}`);
      }
      return { tcId, comment, flags, result, raw: test };
    });
    total += tests.length;
    return { params: group, tests };
  });
  // Guards against a truncated or reshaped file silently running fewer vectors.
  if (typeof doc.numberOfTests === 'number' && doc.numberOfTests !== total) {
    throw new Error(`${file}: numberOfTests says ${doc.numberOfTests}, found ${total}`);
  }
  return groups;
}

function hex(vector: Vector, field: string): Buffer {
  const value = vector.raw[field];
  if (typeof value !== 'string' || !/^(?:[0-9a-f]{2})*$/i.test(value)) {
    throw new Error(`tcId ${vector.tcId}: field ${field} is not hex`);
  }
  return Buffer.from(value, 'hex');
}

function num(record: Json, field: string): number {
  const value = record[field];
  if (typeof value !== 'number') throw new Error(`field ${field} is not a number`);
  return value;
}

function label(vector: Vector): string {
  return `tcId ${vector.tcId} [${vector.result}; ${vector.flags.join(',')}] ${vector.comment}`;
}

function report(file: string, ran: number, notApplicable: number, failures: readonly string[]): void {
  console.info(`[wycheproof] ${file}: ${ran} vectors run, ${notApplicable} not applicable`);
  expect(failures, `${file}: failing vectors`).toEqual([]);
  expect(ran, `${file}: no vector ran`).toBeGreaterThan(0);
}

function throwsRangeError(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch (error) {
    return error instanceof RangeError;
  }
}

if (available) {
  describe('Wycheproof AES-GCM (aes_gcm_test.json) against aead.ts', () => {
    // keystrata uses AES-256-GCM with a 96-bit nonce and a 128-bit tag only; open() takes
    // nonce ‖ ciphertext ‖ tag with exactly those sizes, so other parameter sets do not apply.
    const applicable: Vector[] = [];
    let notApplicable = 0;
    for (const group of loadVectors('aes_gcm_test.json', 'AES-GCM')) {
      const fits =
        num(group.params, 'keySize') === KEY_LENGTH * 8 &&
        num(group.params, 'ivSize') === NONCE_LENGTH * 8 &&
        num(group.params, 'tagSize') === 128;
      if (fits) applicable.push(...group.tests);
      else notApplicable += group.tests.length;
    }

    it('open(): valid vectors give exactly msg, invalid ones give undefined', () => {
      const failures: string[] = [];
      for (const v of applicable) {
        const sealed = Buffer.concat([hex(v, 'iv'), hex(v, 'ct'), hex(v, 'tag')]);
        const opened = open(hex(v, 'key'), sealed, hex(v, 'aad'));
        if (v.result === 'valid') {
          if (opened === undefined || !opened.equals(hex(v, 'msg'))) failures.push(label(v));
        } else if (opened !== undefined) {
          failures.push(label(v));
        }
      }
      report('aes_gcm_test.json', applicable.length, notApplicable, failures);
      expect(applicable.some((v) => v.result === 'invalid')).toBe(true);
    });

    it('seal(): with the vector IV as nonce, valid vectors give exactly iv ‖ ct ‖ tag', () => {
      const failures: string[] = [];
      const valid = applicable.filter((v) => v.result === 'valid');
      for (const v of valid) {
        injectedNonces.push(hex(v, 'iv'));
        const sealed = seal(hex(v, 'key'), hex(v, 'msg'), hex(v, 'aad'));
        if (injectedNonces.length !== 0) throw new Error('seal() did not draw its nonce from randomFillSync');
        if (!sealed.equals(Buffer.concat([hex(v, 'iv'), hex(v, 'ct'), hex(v, 'tag')]))) failures.push(label(v));
      }
      expect(failures).toEqual([]);
      expect(valid.length).toBeGreaterThan(0);
    });

    it('seal() → open() round-trips every valid vector key/msg/aad with a random nonce', () => {
      const failures: string[] = [];
      for (const v of applicable.filter((t) => t.result === 'valid')) {
        const key = hex(v, 'key');
        const aad = hex(v, 'aad');
        const sealed = seal(key, hex(v, 'msg'), aad);
        const opened = open(key, sealed, aad);
        if (opened === undefined || !opened.equals(hex(v, 'msg'))) failures.push(label(v));
      }
      expect(failures).toEqual([]);
    });
  });

  const keyWraps = [
    { file: 'aes_wrap_test.json', algorithm: 'AES-WRAP', wrap: aesKeyWrap, unwrap: aesKeyUnwrap, name: 'aesKeyWrap/aesKeyUnwrap' },
    { file: 'aes_kwp_test.json', algorithm: 'AES-KWP', wrap: aesKeyWrapPad, unwrap: aesKeyUnwrapPad, name: 'aesKeyWrapPad/aesKeyUnwrapPad' },
  ] as const;
  for (const { file, algorithm, wrap, unwrap, name } of keyWraps) describe(`Wycheproof ${algorithm} (${file}) against ${name}`, () => {
    it('valid: wrap = ct and unwrap = msg; invalid/acceptable: unwrap rejects, wrap never yields ct', () => {
      const failures: string[] = [];
      let ran = 0;
      let notApplicable = 0;
      for (const group of loadVectors(file, algorithm)) {
        // Both functions accept 128-, 192- and 256-bit KEKs.
        if (![128, 192, 256].includes(num(group.params, 'keySize'))) {
          notApplicable += group.tests.length;
          continue;
        }
        for (const v of group.tests) {
          ran += 1;
          const kek = hex(v, 'key');
          const msg = hex(v, 'msg');
          const ct = hex(v, 'ct');
          const unwrapped = unwrap(kek, ct);
          if (v.result === 'valid') {
            let wrapped: Buffer | undefined;
            try {
              wrapped = wrap(kek, msg);
            } catch {
              wrapped = undefined;
            }
            if (wrapped === undefined || !wrapped.equals(ct)) failures.push(`${label(v)}: wrap`);
            if (unwrapped === undefined || !unwrapped.equals(msg)) failures.push(`${label(v)}: unwrap`);
            continue;
          }
          // "invalid", and "acceptable" (RFC 3394 of an 8-byte key, which some libraries allow):
          // keystrata's policy is strict, so the ciphertext must not unwrap...
          if (unwrapped !== undefined) failures.push(`${label(v)}: unwrap accepted`);
          // ...and msg is either refused by wrap (e.g. WrongDataSize, EmptyKey, ShortKey: input
          // sizes RFC 3394 / 5649 do not wrap) or wraps to something other than the bad ct.
          let wrapped: Buffer | undefined;
          try {
            wrapped = wrap(kek, msg);
          } catch (error) {
            if (!(error instanceof RangeError)) failures.push(`${label(v)}: wrap threw ${String(error)}`);
            continue;
          }
          if (wrapped.equals(ct)) failures.push(`${label(v)}: wrap produced the invalid ct`);
          const back = unwrap(kek, wrapped);
          if (back === undefined || !back.equals(msg)) failures.push(`${label(v)}: wrap of msg does not round-trip`);
        }
      }
      report(file, ran, notApplicable, failures);
    });

    it('wrap refuses the input sizes its RFC does not define, unwrap rejects short or ragged input', () => {
      const kek = Buffer.alloc(32, 7);
      expect(throwsRangeError(() => wrap(kek, Buffer.alloc(0)))).toBe(true);
      expect(throwsRangeError(() => wrap(Buffer.alloc(20), Buffer.alloc(16)))).toBe(true);
      for (const length of [0, 1, 7, 8, 15, 17, 23, 25]) expect(unwrap(kek, Buffer.alloc(length))).toBeUndefined();
    });
  });

  describe('Wycheproof HKDF-SHA-256 (hkdf_sha256_test.json) against hkdfSha256', () => {
    it('valid vectors give exactly okm; invalid ones (size > 255 * 32) throw', () => {
      const failures: string[] = [];
      let ran = 0;
      for (const group of loadVectors('hkdf_sha256_test.json', 'HKDF-SHA-256')) {
        for (const v of group.tests) {
          ran += 1;
          const size = num(v.raw, 'size');
          let okm: Buffer | undefined;
          try {
            okm = hkdfSha256(hex(v, 'ikm'), hex(v, 'salt'), hex(v, 'info'), size);
          } catch {
            okm = undefined;
          }
          if (v.result === 'valid') {
            if (okm === undefined || !okm.equals(hex(v, 'okm'))) failures.push(label(v));
          } else if (okm !== undefined) {
            failures.push(`${label(v)}: derived ${okm.length} bytes`);
          }
        }
      }
      report('hkdf_sha256_test.json', ran, 0, failures);
    });
  });
}
