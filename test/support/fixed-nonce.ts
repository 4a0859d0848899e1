import { fileURLToPath } from 'node:url';
import { vi } from 'vitest';

/**
 * Lets a test hand the next fillNonce call (the AEAD nonce) a fixed value, so our sealers can be
 * checked byte for byte against known-answer vectors; with nothing queued the real source runs.
 *
 * Use in a test file:
 *   vi.mock('../../src/core/nonce.js', () => import('../support/fixed-nonce.js').then((m) => m.fixedNonceModule()));
 *   import { injectedNonces } from '../support/fixed-nonce.js';
 */
export const injectedNonces: Buffer[] = [];

export async function fixedNonceModule() {
  const actual = await vi.importActual<typeof import('../../src/core/nonce.js')>(fileURLToPath(new URL('../../src/core/nonce.js', import.meta.url)));
  return {
    ...actual,
    fillNonce(target: Buffer): void {
      const nonce = injectedNonces.shift();
      if (nonce === undefined) return actual.fillNonce(target);
      if (nonce.length !== target.length) throw new Error('injected nonce does not fit the fillNonce call');
      nonce.copy(target);
    },
  };
}
