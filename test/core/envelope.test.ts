import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { newId, randomKey } from '../../src/core/bytes.js';
import {
  ENVELOPE_PREFIX,
  MAX_SCOPE_ID_BYTES,
  SCOPE_KINDS,
  bindingBytes,
  envelopeFromText,
  envelopeToText,
  openEnvelope,
  parseEnvelope,
  sealEnvelope,
  type EnvelopeBinding,
  type EnvelopeHeader,
} from '../../src/core/envelope.js';
import { contextDigest } from '../../src/core/key-context.js';

// Layout from docs/envelope.md: header = version(1) ‖ scopeKind(1) ‖ keyId(16) ‖ scopeIdLength(2) ‖ scopeId.
const HEADER_FIXED = 20;
const NONCE = 12;
const TAG = 16;

const key = randomKey();
const bindingInput: EnvelopeBinding = {
  workspaceId: newId(),
  environmentId: newId(),
  contextDigest: contextDigest({ organization_id: 'org_1' }),
};
const binding = bindingBytes(bindingInput);
const header: EnvelopeHeader = { scopeKind: 'job', scopeId: 'job-42', keyId: newId() };
const plaintext = Buffer.from('the quick brown fox jumps over the lazy dog');

/** Parse + open, the way a caller decrypts: undefined for any failure. */
function decrypt(binary: Buffer, k: Uint8Array = key, b: Uint8Array = binding): Buffer | undefined {
  const parsed = parseEnvelope(binary);
  return parsed === undefined ? undefined : openEnvelope(k, parsed, b);
}

/** A fresh binary with one byte replaced; the original is left intact. */
function withByte(binary: Buffer, index: number, value: number): Buffer {
  const copy = Buffer.from(binary);
  copy[index] = value;
  return copy;
}

describe('ks1 envelope round trips', () => {
  it.each(SCOPE_KINDS)('seals and opens under scope kind %s', (scopeKind) => {
    const h: EnvelopeHeader = { scopeKind, scopeId: `${scopeKind}-1`, keyId: newId() };
    const binary = sealEnvelope(key, h, binding, plaintext);
    const parsed = parseEnvelope(binary);
    expect(parsed?.header).toEqual(h);
    expect(openEnvelope(key, parsed!, binding)).toEqual(plaintext);
  });

  it('round-trips through the text form', () => {
    const text = envelopeToText(sealEnvelope(key, header, binding, plaintext));
    expect(text.startsWith(ENVELOPE_PREFIX)).toBe(true);
    expect(text).toMatch(/^ks1:[A-Za-z0-9_-]+$/);
    expect(decrypt(envelopeFromText(text)!)).toEqual(plaintext);
  });

  it('round-trips empty and large plaintexts, with and without a key context', () => {
    const noContext = bindingBytes({ workspaceId: bindingInput.workspaceId, environmentId: bindingInput.environmentId });
    for (const b of [binding, noContext]) {
      for (const p of [Buffer.alloc(0), randomBytes(1), randomBytes(1 << 20)]) {
        const binary = sealEnvelope(key, header, b, p);
        expect(binary.length).toBe(HEADER_FIXED + Buffer.byteLength(header.scopeId) + NONCE + p.length + TAG);
        // Buffer.equals: a deep toEqual over a MiB is needlessly slow.
        expect(decrypt(binary, key, b)?.equals(p)).toBe(true);
      }
    }
  });

  it('uses a fresh nonce for every seal', () => {
    const a = sealEnvelope(key, header, binding, plaintext);
    const b = sealEnvelope(key, header, binding, plaintext);
    const headerLength = HEADER_FIXED + Buffer.byteLength(header.scopeId);
    expect(a.subarray(0, headerLength)).toEqual(b.subarray(0, headerLength));
    expect(a.subarray(headerLength, headerLength + NONCE).equals(b.subarray(headerLength, headerLength + NONCE))).toBe(false);
  });

  it('lays out the header as documented', () => {
    const binary = sealEnvelope(key, { scopeKind: 'log', scopeId: 'é', keyId: '00112233-4455-4677-8899-aabbccddeeff' }, binding, plaintext);
    expect(binary.subarray(0, 22).toString('hex')).toBe('0104' + '00112233445546778899aabbccddeeff' + '0002' + 'c3a9');
  });
});

describe('every byte of the envelope is authenticated', () => {
  const binary = sealEnvelope(key, header, binding, plaintext);
  const headerLength = HEADER_FIXED + Buffer.byteLength(header.scopeId);
  const regions = [
    ['header', 0, headerLength],
    ['nonce', headerLength, headerLength + NONCE],
    ['ciphertext', headerLength + NONCE, binary.length - TAG],
    ['tag', binary.length - TAG, binary.length],
  ] as const;

  it.each(regions)('flipping any bit of the %s makes decryption fail', (_name, start, end) => {
    expect(end).toBeGreaterThan(start);
    for (let i = start; i < end; i += 1) {
      for (let bit = 0; bit < 8; bit += 1) {
        expect(decrypt(withByte(binary, i, binary[i]! ^ (1 << bit))), `byte ${i} bit ${bit}`).toBeUndefined();
      }
    }
  });

  it('a well-formed header naming another scope kind, key id or scope id parses but does not open', () => {
    const variants = [
      withByte(binary, 1, 2), // scope kind job → event
      withByte(binary, 2, binary[2]! ^ 0x10), // key id
      withByte(binary, HEADER_FIXED, 'J'.charCodeAt(0)), // scope id "job-42" → "Job-42"
    ];
    for (const variant of variants) {
      const parsed = parseEnvelope(variant);
      expect(parsed).toBeDefined();
      expect(parsed!.header).not.toEqual(header);
      expect(openEnvelope(key, parsed!, binding)).toBeUndefined();
    }
  });
});

describe('binding', () => {
  const binary = sealEnvelope(key, header, binding, plaintext);

  it('another workspace, environment or key context does not open', () => {
    const others: EnvelopeBinding[] = [
      { ...bindingInput, workspaceId: newId() },
      { ...bindingInput, environmentId: newId() },
      { ...bindingInput, contextDigest: contextDigest({ organization_id: 'org_2' }) },
      { ...bindingInput, contextDigest: undefined },
      // Workspace and environment swapped: the positions are bound, not just the set of ids.
      { ...bindingInput, workspaceId: bindingInput.environmentId, environmentId: bindingInput.workspaceId },
    ];
    for (const other of others) expect(decrypt(binary, key, bindingBytes(other))).toBeUndefined();
    expect(decrypt(binary, key, binding)).toEqual(plaintext);
  });

  it('another key does not open', () => {
    expect(decrypt(binary, randomKey())).toBeUndefined();
  });

  it('a ciphertext sealed without a context binds 32 zero bytes', () => {
    const noContext = bindingBytes({ workspaceId: bindingInput.workspaceId, environmentId: bindingInput.environmentId });
    expect(noContext.subarray(32)).toEqual(Buffer.alloc(32));
    const zeroDigest = bindingBytes({ ...bindingInput, contextDigest: Buffer.alloc(32) });
    expect(zeroDigest).toEqual(noContext);
  });

  it('bindingBytes rejects a digest that is not 32 bytes and malformed ids', () => {
    expect(() => bindingBytes({ ...bindingInput, contextDigest: Buffer.alloc(31) })).toThrow(RangeError);
    expect(() => bindingBytes({ ...bindingInput, workspaceId: 'not-a-uuid' })).toThrow(TypeError);
  });
});

describe('malformed input never throws', () => {
  const binary = sealEnvelope(key, header, binding, plaintext);

  it('a binary truncated at every length is rejected by parse or open', () => {
    for (let length = 0; length < binary.length; length += 1) {
      expect(decrypt(binary.subarray(0, length)), `length ${length}`).toBeUndefined();
    }
    expect(decrypt(binary)).toEqual(plaintext);
  });

  it('a text truncated at every length is rejected', () => {
    const text = envelopeToText(binary);
    for (let length = 0; length < text.length; length += 1) {
      const truncated = envelopeFromText(text.slice(0, length));
      if (truncated !== undefined) expect(decrypt(truncated), `length ${length}`).toBeUndefined();
    }
  });

  it('extra bytes appended are rejected', () => {
    expect(decrypt(Buffer.concat([binary, Buffer.of(0)]))).toBeUndefined();
  });

  it.each([0, 2, 0x81, 0xff])('unknown version byte %i is rejected by parse', (version) => {
    expect(parseEnvelope(withByte(binary, 0, version))).toBeUndefined();
  });

  it.each([0, 6, 0x7f, 0xff])('unknown scope kind code %i is rejected by parse', (code) => {
    expect(parseEnvelope(withByte(binary, 1, code))).toBeUndefined();
  });

  it('a scope id length pointing past the end or over the maximum is rejected by parse', () => {
    for (const length of [0xffff, MAX_SCOPE_ID_BYTES + 1, binary.length]) {
      const copy = Buffer.from(binary);
      copy.writeUInt16BE(length, 18);
      expect(parseEnvelope(copy), `length ${length}`).toBeUndefined();
    }
  });
});

describe('envelopeFromText is strict', () => {
  const text = envelopeToText(sealEnvelope(key, header, binding, plaintext));
  const body = text.slice(ENVELOPE_PREFIX.length);

  it('accepts the text it printed', () => {
    expect(envelopeFromText(text)).toBeDefined();
  });

  it.each(['ks2:', 'KS1:', 'ks1', 'ks1;', ' ks1:', 'ks:', ''])('rejects prefix %j', (prefix) => {
    expect(envelopeFromText(prefix + body)).toBeUndefined();
  });

  it.each(['+', '/', '.', ' ', '\n', '\0', 'é', '%'])('rejects the character %j anywhere in the body', (char) => {
    for (const at of [0, 7, body.length - 1, body.length]) {
      expect(envelopeFromText(ENVELOPE_PREFIX + body.slice(0, at) + char + body.slice(at))).toBeUndefined();
    }
  });

  it('rejects padding characters', () => {
    expect(envelopeFromText(`${text}=`)).toBeUndefined();
    expect(envelopeFromText(`${text}==`)).toBeUndefined();
    expect(envelopeFromText(`${ENVELOPE_PREFIX}AA==`)).toBeUndefined();
  });

  it('rejects a body whose length is 1 mod 4', () => {
    expect(envelopeFromText(`${ENVELOPE_PREFIX}A`)).toBeUndefined();
    expect(envelopeFromText(`${ENVELOPE_PREFIX}AAAAA`)).toBeUndefined();
    const cut = body.slice(0, body.length - ((body.length % 4) + 3) % 4);
    expect(cut.length % 4).toBe(1);
    expect(envelopeFromText(ENVELOPE_PREFIX + cut)).toBeUndefined();
  });

  it('rejects non-zero unused bits in the last character: one text per envelope', () => {
    expect(envelopeFromText(`${ENVELOPE_PREFIX}AA`)).toEqual(Buffer.of(0));
    expect(envelopeFromText(`${ENVELOPE_PREFIX}AB`)).toBeUndefined();
    expect(envelopeFromText(`${ENVELOPE_PREFIX}AAA`)).toEqual(Buffer.of(0, 0));
    expect(envelopeFromText(`${ENVELOPE_PREFIX}AAB`)).toBeUndefined();
    // On a real envelope: every other last character that Node would decode to the same bytes.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const binary = envelopeFromText(text)!;
    let sameBytes = 0;
    for (const char of alphabet) {
      const variant = ENVELOPE_PREFIX + body.slice(0, -1) + char;
      if (variant === text) continue;
      if (Buffer.from(body.slice(0, -1) + char, 'base64url').equals(binary)) sameBytes += 1;
      expect(envelopeFromText(variant)?.equals(binary) ?? false, `last char ${char}`).toBe(false);
    }
    // Only meaningful when the body has unused bits (length not a multiple of 4).
    expect(sameBytes).toBe(body.length % 4 === 0 ? 0 : body.length % 4 === 2 ? 15 : 3);
  });
});

describe('scope id', () => {
  it(`accepts up to ${MAX_SCOPE_ID_BYTES} UTF-8 bytes and refuses more`, () => {
    for (const scopeId of ['a'.repeat(MAX_SCOPE_ID_BYTES), 'é'.repeat(MAX_SCOPE_ID_BYTES / 2), '']) {
      const binary = sealEnvelope(key, { ...header, scopeId }, binding, plaintext);
      expect(parseEnvelope(binary)?.header.scopeId).toBe(scopeId);
      expect(decrypt(binary)).toEqual(plaintext);
    }
    expect(() => sealEnvelope(key, { ...header, scopeId: 'a'.repeat(MAX_SCOPE_ID_BYTES + 1) }, binding, plaintext)).toThrow(RangeError);
    // 171 × 3 bytes = 513: the limit is in bytes, not characters.
    expect(() => sealEnvelope(key, { ...header, scopeId: '日'.repeat(171) }, binding, plaintext)).toThrow(RangeError);
  });

  it('refuses a malformed key id when sealing', () => {
    expect(() => sealEnvelope(key, { ...header, keyId: 'ABCDEF00-0000-4000-8000-000000000000' }, binding, plaintext)).toThrow(TypeError);
  });

  it('rejects non-canonical UTF-8 in the scope id', () => {
    // A valid envelope with a 4-byte scope id whose bytes are then replaced.
    const binary = sealEnvelope(key, { ...header, scopeId: 'abcd' }, binding, plaintext);
    expect(parseEnvelope(binary)).toBeDefined();
    const bad = [
      'c0afc0af', // overlong "/" twice
      'e080afff', // overlong 3-byte "/" + invalid byte
      'eda08041', // UTF-16 surrogate D800 encoded + "A"
      'f4908080', // above U+10FFFF
      'e6974141', // truncated 3-byte sequence
      '80414141', // lone continuation byte
      'f8888080', // 5-byte form
    ];
    for (const hex of bad) {
      const copy = Buffer.from(binary);
      Buffer.from(hex, 'hex').copy(copy, HEADER_FIXED);
      expect(parseEnvelope(copy), hex).toBeUndefined();
    }
    // The same replacement with well-formed UTF-8 of the same length parses (and then fails the tag).
    const good = Buffer.from(binary);
    Buffer.from('f09f9491', 'hex').copy(good, HEADER_FIXED); // 🔑
    expect(parseEnvelope(good)?.header.scopeId).toBe('🔑');
    expect(decrypt(good)).toBeUndefined();
  });
});

describe('independent implementation from docs/envelope.md (node:crypto only)', () => {
  const uuidBytes = (id: string): Buffer => Buffer.from(id.replace(/-/g, ''), 'hex');
  const SCOPE_CODE = { job: 1, event: 2, connection: 3, log: 4, object: 5 } as const;
  const context = { tenant: 'acme', 'région': 'eu' };
  // Canonical context: JSON, keys sorted by UTF-16 code units, no whitespace.
  const digest = createHash('sha256').update('{"région":"eu","tenant":"acme"}', 'utf8').digest();
  const ws = newId();
  const env = newId();
  const keyId = newId();
  const scopeId = 'conn/ünïcode';
  const bound = bindingBytes({ workspaceId: ws, environmentId: env, contextDigest: contextDigest(context) });
  const aadOf = (hdr: Buffer): Buffer => Buffer.concat([Buffer.from('ks1'), Buffer.of(0), hdr, uuidBytes(ws), uuidBytes(env), digest]);

  it('an envelope built by hand opens with openEnvelope', () => {
    const scope = Buffer.from(scopeId, 'utf8');
    const hdr = Buffer.concat([Buffer.of(1, SCOPE_CODE.connection), uuidBytes(keyId), Buffer.of(scope.length >> 8, scope.length & 0xff), scope]);
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(aadOf(hdr));
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const text = 'ks1:' + Buffer.concat([hdr, nonce, ct, cipher.getAuthTag()]).toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

    const parsed = parseEnvelope(envelopeFromText(text)!);
    expect(parsed?.header).toEqual({ scopeKind: 'connection', scopeId, keyId });
    expect(openEnvelope(key, parsed!, bound)).toEqual(plaintext);
  });

  it('an envelope from sealEnvelope opens by hand', () => {
    const text = envelopeToText(sealEnvelope(key, { scopeKind: 'object', scopeId, keyId }, bound, plaintext));
    const binary = Buffer.from(text.slice(4).replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    expect(binary[0]).toBe(1);
    expect(binary[1]).toBe(SCOPE_CODE.object);
    expect(binary.subarray(2, 18)).toEqual(uuidBytes(keyId));
    const scopeLength = binary.readUInt16BE(18);
    expect(binary.subarray(20, 20 + scopeLength).toString('utf8')).toBe(scopeId);
    const hdr = binary.subarray(0, 20 + scopeLength);
    const nonce = binary.subarray(hdr.length, hdr.length + 12);
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(aadOf(hdr));
    decipher.setAuthTag(binary.subarray(binary.length - 16));
    const opened = Buffer.concat([decipher.update(binary.subarray(hdr.length + 12, binary.length - 16)), decipher.final()]);
    expect(opened).toEqual(plaintext);
  });
});

describe('sealEnvelope refuses scope ids that are not well-formed Unicode', () => {
  it('throws on a lone surrogate instead of sealing it as U+FFFD', async () => {
    const { sealEnvelope: seal, bindingBytes: bind } = await import('../../src/core/envelope.js');
    const key = Buffer.alloc(32, 7);
    const binding = bind({ workspaceId: '11111111-1111-4111-8111-111111111111', environmentId: '22222222-2222-4222-8222-222222222222' });
    const header = { scopeKind: 'job' as const, keyId: '33333333-3333-4333-8333-333333333333' };
    expect(() => seal(key, { ...header, scopeId: 'job-\ud800' }, binding, Buffer.from('x'))).toThrow(RangeError);
    expect(() => seal(key, { ...header, scopeId: 'job-\udc00x' }, binding, Buffer.from('x'))).toThrow(RangeError);
    // A well-formed astral character (a surrogate pair) is fine.
    expect(seal(key, { ...header, scopeId: 'job-\ud83d\udd11' }, binding, Buffer.from('x')).length).toBeGreaterThan(0);
  });
});

describe('envelopeFromText accepts exactly the canonical base64url text', () => {
  it('agrees with the reference rule (decode, re-encode, compare) on arbitrary strings', async () => {
    const fc = (await import('fast-check')).default;
    const { envelopeFromText: fromText } = await import('../../src/core/envelope.js');
    const reference = (body: string) => body.length % 4 !== 1 && Buffer.from(body, 'base64url').toString('base64url') === body;
    const chars = 'AQgw-_+/=! \u00e9\u0100';
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), maxLength: 40 }),
          fc.string({ unit: fc.constantFrom(...chars), maxLength: 12 }),
          fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes).toString('base64url')),
        ),
        (body) => {
          const accepted = fromText('ks1:' + body) !== undefined;
          expect(accepted).toBe(reference(body));
        },
      ),
      { numRuns: 20_000 },
    );
  });
});
