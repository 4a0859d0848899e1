import { hkdfSync } from 'node:crypto';

/**
 * HKDF-SHA256 (RFC 5869). keystrata derives purpose-separated subkeys from the platform root key so
 * that one root secret never keys two different algorithms or purposes directly.
 */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array | string, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, typeof info === 'string' ? Buffer.from(info, 'utf8') : info, length));
}
