import { CmkProviderError } from '../provider.js';
import type { VaultAnswer } from './vault-http.js';

/**
 * What Vault's answers mean for keystrata, where the status alone decides. Vault's own messages
 * (sdk/helper/keysutil, builtin/logical/transit) are matched where the status is shared: every
 * transit user error is a 400.
 */

/** Vault's messages on one line, multierror framing removed, bounded (never a secret: Vault does not echo inputs). */
export function vaultMessage(answer: VaultAnswer): string {
  const text = answer.errors
    .join('; ')
    .replace(/\d+ errors? occurred:/g, '')
    .replace(/[\t\n\r]+\*?\s*/g, ' ')
    .replace(/[^\x20-\x7e]/g, '')
    .trim();
  if (text === '') return `HTTP ${answer.status}`;
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** Vault 1.17+ names a revoked, expired or unknown token in its 403 ("permission denied" + "invalid token"). */
export function saysInvalidToken(answer: VaultAnswer): boolean {
  return answer.status === 403 && answer.errors.some((e) => e.includes('invalid token'));
}

/** A 404 with "no handler for route": nothing is mounted at that path (wrong mount or namespace). */
export function saysNoRoute(answer: VaultAnswer): boolean {
  return answer.status === 404 && answer.errors.some((e) => e.includes('no handler for route'));
}

export const TOO_OLD = 'ciphertext or signature version is disallowed by policy (too old)';

/** Decrypt refusals that mean the ciphertext (or its associated data) does not match the key. */
export function saysBadCiphertext(answer: VaultAnswer): boolean {
  return answer.errors.some((e) => e.startsWith('invalid ciphertext') || e.includes('message authentication failed') || e.includes('could not decode'));
}

/**
 * Failures every call shares: throttling, a sealed or standby Vault, a proxy in the way. Returns
 * undefined for successes and for the answers each operation interprets itself (400, 403, 404).
 */
export function commonFailure(answer: VaultAnswer, where: string): CmkProviderError | undefined {
  const { status } = answer;
  if (status >= 200 && status < 300) return undefined;
  if (status === 429) return new CmkProviderError('throttled', `Vault at ${where} is rate limiting keystrata (${vaultMessage(answer)})`);
  if (status === 503) {
    return new CmkProviderError('unreachable', `Vault at ${where} is unavailable (${vaultMessage(answer)}): sealed, a standby without an active node, or in maintenance`);
  }
  if (status === 401) return new CmkProviderError('credentials_rejected', `Vault at ${where} rejected the token (HTTP 401)`);
  if (status >= 300 && status < 400) {
    return new CmkProviderError('unreachable', `Vault at ${where} redirected the call (HTTP ${status}): point address at the active node or its load balancer`);
  }
  if (status >= 500 || status === 412) return new CmkProviderError('unreachable', `Vault at ${where} failed the call (HTTP ${status}: ${vaultMessage(answer)})`);
  if (status !== 400 && status !== 403 && status !== 404) return new CmkProviderError('unreachable', `Vault at ${where} gave an unexpected answer (HTTP ${status})`);
  return undefined;
}

/** The N of a transit ciphertext "vault:vN:…" (N ≥ 1), or undefined if it is not one. */
export function ciphertextVersion(ciphertext: string): string | undefined {
  const match = /^vault:v([1-9][0-9]{0,9}):[A-Za-z0-9+/]+={0,2}$/.exec(ciphertext);
  return match?.[1];
}
