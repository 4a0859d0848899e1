import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../../core/bytes.js';

/**
 * API tokens: "kst_" + 256 random bits (base64url). The prefix lets secret scanners and humans
 * recognise a leaked token; the entropy makes a plain SHA-256 the right stored form — there is
 * nothing to brute-force, so a slow password hash would only cost latency on every request.
 */
export const API_TOKEN_PREFIX = 'kst_';
const API_TOKEN_SHAPE = /^kst_[A-Za-z0-9_-]{43}$/;

export function generateApiToken(): { readonly token: string; readonly tokenHash: string } {
  const token = API_TOKEN_PREFIX + randomBytes(32).toString('base64url');
  return { token, tokenHash: apiTokenHash(token) };
}

export function apiTokenHash(token: string): string {
  return sha256Hex(token);
}

/** True when `value` has the shape of an API token (says nothing about whether it is valid). */
export function isApiTokenShaped(value: string): boolean {
  return API_TOKEN_SHAPE.test(value);
}
