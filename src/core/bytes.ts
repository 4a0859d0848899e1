import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

/** Length in bytes of every symmetric key in keystrata (AES-256). */
export const KEY_LENGTH = 32;

/** A fresh random 256-bit key. The caller owns it and must zeroize() it when done. */
export function randomKey(): Buffer {
  return randomBytes(KEY_LENGTH);
}

/**
 * Overwrite key material in place. Node cannot promise that no other copy exists (OpenSSL
 * contexts, V8 string copies), so keys are kept as Buffers, never strings, and every Buffer we own
 * is wiped when dropped: that bounds how long a key sits in our heap.
 */
export function zeroize(buffer: Buffer | Uint8Array | undefined | null): void {
  if (buffer) buffer.fill(0);
}

/**
 * Constant-time equality for secrets of any length. Both sides are hashed first so that the
 * comparison itself runs over equal lengths and leaks neither content nor the secret's length.
 */
export function constantTimeEqual(a: Uint8Array | string, b: Uint8Array | string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}

/**
 * A random RFC 4122 version-4 UUID (lower case). node:crypto's randomUUID draws from a buffered
 * CSPRNG pool, so the per-request ids (audit entries, keys) cost no system call each.
 */
export function newId(): string {
  return randomUUID();
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isId(value: string): boolean {
  return UUID_PATTERN.test(value);
}

/** The 16 bytes of a UUID string (as used inside the ks1 header). Throws on a malformed id. */
export function idToBytes(id: string): Buffer {
  if (!UUID_PATTERN.test(id)) throw new TypeError('malformed key id');
  return Buffer.from(id.replace(/-/g, ''), 'hex');
}

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** The UUID text of 16 bytes. On the decrypt path for every record, hence the lookup table. */
export function idFromBytes(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new TypeError('a key id is 16 bytes');
  let id = '';
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) id += '-';
    id += HEX_BYTE[bytes[i]!]!;
  }
  return id;
}

/** SHA-256 of a UTF-8 string, hex. Used for digests of non-secret identifiers and of tokens. */
export function sha256Hex(value: string | Uint8Array): string {
  return createHash('sha256').update(value).digest('hex');
}
