import { createCipheriv, createDecipheriv } from 'node:crypto';
import { KEY_LENGTH } from './bytes.js';
import { NONCE_LENGTH, fillNonce } from './nonce.js';

/** AES-256-GCM with a random 96-bit nonce and a 128-bit tag. */
export { NONCE_LENGTH };
export const TAG_LENGTH = 16;
export const SEAL_OVERHEAD = NONCE_LENGTH + TAG_LENGTH;

/**
 * Seal `plaintext` into `out` starting at `offset`, as nonce ‖ ciphertext ‖ tag, and return the
 * number of bytes written. Writing into a caller-sized buffer lets the envelope code build header,
 * nonce, ciphertext and tag in a single allocation on the hot path.
 *
 * Random 96-bit nonces are safe for up to 2^32 messages per key (NIST SP 800-38D §8.3); keystrata's
 * data keys are scoped (per job, per hour, per connection) so each sees far fewer.
 */
export function sealInto(
  key: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  out: Buffer,
  offset: number,
): number {
  if (key.length !== KEY_LENGTH) throw new RangeError('AES-256-GCM needs a 32-byte key');
  const nonce = out.subarray(offset, offset + NONCE_LENGTH);
  fillNonce(nonce);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  const last = cipher.final();
  let at = offset + NONCE_LENGTH;
  at += body.copy(out, at);
  at += last.copy(out, at);
  at += cipher.getAuthTag().copy(out, at);
  return at - offset;
}

/** Seal into a new buffer: nonce ‖ ciphertext ‖ tag. */
export function seal(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(plaintext.length + SEAL_OVERHEAD);
  sealInto(key, plaintext, aad, out, 0);
  return out;
}

/**
 * Open nonce ‖ ciphertext ‖ tag. Returns undefined on ANY failure (short input, bad tag) so that
 * callers cannot distinguish causes; they turn it into the one opaque decryption_failed.
 */
export function open(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Buffer | undefined {
  if (key.length !== KEY_LENGTH) throw new RangeError('AES-256-GCM needs a 32-byte key');
  if (sealed.length < SEAL_OVERHEAD) return undefined;
  const nonce = sealed.subarray(0, NONCE_LENGTH);
  const tag = sealed.subarray(sealed.length - TAG_LENGTH);
  const body = sealed.subarray(NONCE_LENGTH, sealed.length - TAG_LENGTH);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const plaintext = decipher.update(body);
  try {
    const last = decipher.final();
    return last.length === 0 ? plaintext : Buffer.concat([plaintext, last]);
  } catch {
    // Authentication failed: the unauthenticated plaintext must never escape.
    plaintext.fill(0);
    return undefined;
  }
}
