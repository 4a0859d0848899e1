import { randomFillSync } from 'node:crypto';

/**
 * Random 96-bit GCM nonces, drawn from a pool refilled from the CSPRNG 512 nonces at a time. Each
 * call to the CSPRNG costs far more than copying 12 bytes, and on the hot path it was the largest
 * single cost after AES itself. Every pool byte is handed out exactly once, so the nonces are as
 * random as per-call draws; nonces are public, so holding upcoming ones in memory reveals nothing.
 */
/** GCM nonce length: 96 bits. */
export const NONCE_LENGTH = 12;
const POOL_NONCES = 512;
const pool = Buffer.alloc(NONCE_LENGTH * POOL_NONCES);
let offset = pool.length;

/** Write a fresh random nonce into `target` (12 bytes). */
export function fillNonce(target: Buffer): void {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  pool.copy(target, 0, offset, offset + NONCE_LENGTH);
  // Wipe what was handed out, so a nonce can never be served twice even after a logic error.
  pool.fill(0, offset, offset + NONCE_LENGTH);
  offset += NONCE_LENGTH;
}
