import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { sha256Hex } from '../core/bytes.js';
import type { Store } from '../store/store.js';

/**
 * The break-glass admin token. It is checked against a SHA-256 hash kept in the store (tokens are
 * 256-bit random values, so a fast hash is enough: there is nothing to brute-force) and depends on
 * no customer key, so it works while every customer CMK is revoked.
 */

const HASH_SETTING = 'admin_token_sha256';
const TOKEN_PREFIX = 'ks_admin_';

export interface AdminTokenSetup {
  /** The newly generated token, present only on the start that created it. */
  readonly generatedToken: string | undefined;
  /** Hashes of every token that grants admin access. */
  readonly acceptedHashes: readonly string[];
}

export function generateAdminToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

/**
 * Ensure an admin token exists. With `configured` (KEYSTRATA_ADMIN_TOKEN) a fresh database adopts
 * it; an existing database keeps its stored token and also accepts the configured one.
 */
export async function ensureAdminToken(
  store: Pick<Store, 'getSetting' | 'putSettingIfAbsent'>,
  configured: string | undefined,
): Promise<AdminTokenSetup> {
  const existing = await store.getSetting(HASH_SETTING);
  let generatedToken: string | undefined;
  let stored = existing;
  if (stored === undefined) {
    const token = configured ?? generateAdminToken();
    stored = await store.putSettingIfAbsent(HASH_SETTING, sha256Hex(token));
    // Only announce a token we generated AND that won (another node may have initialised first).
    if (configured === undefined && stored === sha256Hex(token)) generatedToken = token;
  }
  const acceptedHashes = configured === undefined ? [stored] : [...new Set([stored, sha256Hex(configured)])];
  return { generatedToken, acceptedHashes };
}

/**
 * A constant-time checker of presented tokens against the accepted hashes. Both sides of each
 * comparison are 32-byte SHA-256 digests, so timingSafeEqual runs over equal lengths and reveals
 * neither the token nor which accepted hash (if any) matched.
 */
export function adminTokenVerifier(acceptedHashes: readonly string[]): (presented: string) => boolean {
  const accepted = acceptedHashes.map((hex) => Buffer.from(hex, 'hex'));
  return (presented) => {
    // One-shot hash(): no Hash object per request.
    const digest = hash('sha256', presented, 'buffer');
    let match = false;
    for (const hash of accepted) match = (hash.length === digest.length && timingSafeEqual(hash, digest)) || match;
    return match;
  };
}
