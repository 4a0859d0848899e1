/**
 * Test-side reading and re-writing of ks1 envelopes (docs/envelope.md), written from the format
 * description rather than with src/core/envelope.ts, so tests that forge envelopes do not depend
 * on the code they attack.
 *
 *   binary = version(1) ‖ scopeKind(1) ‖ keyId(16) ‖ scopeIdLength(2, BE) ‖ scopeId ‖ nonce(12) ‖ ciphertext ‖ tag(16)
 */

export const SCOPE_CODES = { job: 1, event: 2, connection: 3, log: 4, object: 5 } as const;

export interface Ks1Parts {
  readonly version: number;
  readonly scopeKind: number;
  readonly keyId: Buffer;
  readonly scopeId: Buffer;
  readonly nonce: Buffer;
  readonly body: Buffer;
  readonly tag: Buffer;
}

export function ks1Binary(text: string): Buffer {
  if (!text.startsWith('ks1:')) throw new Error('not a ks1 text');
  return Buffer.from(text.slice(4), 'base64url');
}

export function ks1Text(binary: Buffer): string {
  return 'ks1:' + binary.toString('base64url');
}

export function splitKs1(text: string): Ks1Parts {
  const b = ks1Binary(text);
  const scopeLength = b.readUInt16BE(18);
  const headerEnd = 20 + scopeLength;
  return {
    version: b[0]!,
    scopeKind: b[1]!,
    keyId: Buffer.from(b.subarray(2, 18)),
    scopeId: Buffer.from(b.subarray(20, headerEnd)),
    nonce: Buffer.from(b.subarray(headerEnd, headerEnd + 12)),
    body: Buffer.from(b.subarray(headerEnd + 12, b.length - 16)),
    tag: Buffer.from(b.subarray(b.length - 16)),
  };
}

export function joinKs1(parts: Ks1Parts): string {
  const fixed = Buffer.alloc(20);
  fixed[0] = parts.version;
  fixed[1] = parts.scopeKind;
  parts.keyId.copy(fixed, 2);
  fixed.writeUInt16BE(parts.scopeId.length, 18);
  return ks1Text(Buffer.concat([fixed, parts.scopeId, parts.nonce, parts.body, parts.tag]));
}

/** Byte ranges of each region of a binary envelope, for "flip a bit in every region" tests. */
export function ks1Regions(text: string): Record<string, readonly [start: number, end: number]> {
  const b = ks1Binary(text);
  const headerEnd = 20 + b.readUInt16BE(18);
  return {
    version: [0, 1],
    scopeKind: [1, 2],
    keyId: [2, 18],
    scopeIdLength: [18, 20],
    scopeId: [20, headerEnd],
    nonce: [headerEnd, headerEnd + 12],
    ciphertext: [headerEnd + 12, b.length - 16],
    tag: [b.length - 16, b.length],
  };
}

export function uuidBytes(id: string): Buffer {
  return Buffer.from(id.replace(/-/g, ''), 'hex');
}

export function flipBit(text: string, byteIndex: number, bit = 0): string {
  const b = ks1Binary(text);
  b[byteIndex] = b[byteIndex]! ^ (1 << bit);
  return ks1Text(b);
}
