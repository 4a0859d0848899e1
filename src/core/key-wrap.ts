import { createCipheriv, createDecipheriv } from 'node:crypto';

/**
 * AES key wrap (RFC 3394) and key wrap with padding (RFC 5649). keystrata wraps its own keys with
 * AES-GCM (see wrapped-key.ts) because GCM binds associated data; these exist for interoperability:
 * HSMs (PKCS#11 CKM_AES_KEY_WRAP[_PAD]) and key-import formats speak them, and the Wycheproof
 * vectors pin them. Node's id-aes*-wrap ciphers are byte-identical to SoftHSM2's output.
 */

const DEFAULT_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');
const DEFAULT_IV_PAD = Buffer.from('a65959a6', 'hex');

function wrapCipherName(kek: Uint8Array, padded: boolean): string {
  const bits = kek.length * 8;
  if (bits !== 128 && bits !== 192 && bits !== 256) throw new RangeError('a KEK is 16, 24 or 32 bytes');
  return `id-aes${bits}-wrap${padded ? '-pad' : ''}`;
}

/** RFC 3394: the key must be a multiple of 8 bytes and at least 16. */
export function aesKeyWrap(kek: Uint8Array, key: Uint8Array): Buffer {
  if (key.length < 16 || key.length % 8 !== 0) throw new RangeError('RFC 3394 wraps multiples of 8 bytes, at least 16');
  const cipher = createCipheriv(wrapCipherName(kek, false), kek, DEFAULT_IV);
  return Buffer.concat([cipher.update(key), cipher.final()]);
}

/** Returns undefined when the wrapped key fails its integrity check or is malformed. */
export function aesKeyUnwrap(kek: Uint8Array, wrapped: Uint8Array): Buffer | undefined {
  if (wrapped.length < 24 || wrapped.length % 8 !== 0) return undefined;
  return runDecipher(wrapCipherName(kek, false), kek, DEFAULT_IV, wrapped);
}

/** RFC 5649: any key length from 1 byte. */
export function aesKeyWrapPad(kek: Uint8Array, key: Uint8Array): Buffer {
  if (key.length < 1) throw new RangeError('RFC 5649 wraps at least one byte');
  const cipher = createCipheriv(wrapCipherName(kek, true), kek, DEFAULT_IV_PAD);
  return Buffer.concat([cipher.update(key), cipher.final()]);
}

export function aesKeyUnwrapPad(kek: Uint8Array, wrapped: Uint8Array): Buffer | undefined {
  if (wrapped.length < 16 || wrapped.length % 8 !== 0) return undefined;
  return runDecipher(wrapCipherName(kek, true), kek, DEFAULT_IV_PAD, wrapped);
}

function runDecipher(name: string, kek: Uint8Array, iv: Uint8Array, wrapped: Uint8Array): Buffer | undefined {
  try {
    const decipher = createDecipheriv(name, kek, iv);
    return Buffer.concat([decipher.update(wrapped), decipher.final()]);
  } catch {
    return undefined;
  }
}
