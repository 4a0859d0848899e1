import { createHmac, timingSafeEqual } from 'node:crypto';
import { CmkProviderError } from './provider.js';

/**
 * For key stores whose wrap operation takes no associated data (AES key wrap, RSA-OAEP wrapKey,
 * KMIP/PKCS#11 mechanisms without AAD): the wrapped blob is followed by a 32-byte tag,
 * HMAC-SHA256(key, "keystrata aad v1" ‖ aad), computed with the key being wrapped. Only someone
 * holding that key can make a tag, so on unwrap a blob moved to another EK row (other AAD) fails
 * exactly as an AEAD would: invalid_ciphertext. Providers whose service binds AAD natively
 * (AES-GCM with AAD, KMS encryption context) do not need this.
 */

const TAG_LENGTH = 32;
const DOMAIN = Buffer.from('keystrata aad v1', 'ascii');

function tagOf(key: Buffer, aad: Buffer): Buffer {
  return createHmac('sha256', key).update(DOMAIN).update(aad).digest();
}

/** `wrapped` (the store's output) followed by the AAD tag. */
export function appendAadTag(wrapped: Buffer, key: Buffer, aad: Buffer): Buffer {
  return Buffer.concat([wrapped, tagOf(key, aad)]);
}

/** Splits a blob made by appendAadTag; invalid_ciphertext if it is too short to hold a tag. */
export function splitAadTag(blob: Buffer): { readonly wrapped: Buffer; readonly tag: Buffer } {
  if (blob.length <= TAG_LENGTH) throw new CmkProviderError('invalid_ciphertext', 'wrapped key too short');
  return { wrapped: blob.subarray(0, blob.length - TAG_LENGTH), tag: blob.subarray(blob.length - TAG_LENGTH) };
}

/** Checks the tag against the unwrapped key; on mismatch zeroes the key and throws invalid_ciphertext. */
export function checkAadTag(key: Buffer, aad: Buffer, tag: Buffer): Buffer {
  const expected = tagOf(key, aad);
  if (tag.length !== expected.length || !timingSafeEqual(tag, expected)) {
    key.fill(0);
    throw new CmkProviderError('invalid_ciphertext', 'the associated data does not match this wrapped key');
  }
  return key;
}
