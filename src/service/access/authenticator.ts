import { timingSafeEqual } from 'node:crypto';
import { newId } from '../../core/bytes.js';
import { JwtError, signJwt, verifyJwt, type JwtClaims } from '../../core/jwt.js';
import type { ClientRecord, ClientTokenRecord, Store } from '../../store/store.js';
import { adminTokenVerifier } from '../admin-token.js';
import type { Clock } from '../clock.js';
import { LruMap } from '../lru-map.js';
import { apiTokenHash, isApiTokenShaped } from './api-tokens.js';
import { createIpMatcher } from './ip-allowlist.js';
import { ADMIN_PRINCIPAL, type Principal } from './principal.js';

/**
 * Turns a bearer credential into a Principal: the break-glass admin token, a client's API token,
 * or a JWT keystrata issued for one. Every rejection is an AuthFailure whose `reason` goes to
 * logs and metrics only; the caller answers all of them with the same 401.
 */

export type AuthFailureReason =
  | 'malformed'
  | 'unknown_token'
  | 'token_expired'
  | 'client_disabled'
  | 'jwt_invalid'
  | 'jwt_token_revoked';

export class AuthFailure extends Error {
  constructor(
    readonly reason: AuthFailureReason,
    readonly detail?: string,
  ) {
    super(`authentication failed: ${reason}`);
    this.name = 'AuthFailure';
  }
}

/** A valid credential presented from an address its client's allowlist does not include. */
export class AddressNotAllowed extends Error {
  constructor(
    readonly principal: Extract<Principal, { kind: 'client' }>,
    readonly address: string,
  ) {
    super(`API client ${principal.client.id} may not be used from ${address}.`);
    this.name = 'AddressNotAllowed';
  }
}

export const JWT_ISSUER = 'keystrata';
export const JWT_AUDIENCE = 'keystrata';
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export interface AuthenticatorDeps {
  readonly store: Pick<Store, 'findClientToken' | 'listClientTokens'>;
  readonly clock: Clock;
  readonly adminTokenHashes: readonly string[];
  /** HS256 key for keystrata-issued JWTs (derived from the root key; never stored). */
  readonly jwtKey: Buffer;
  readonly jwt: { readonly defaultTtlSeconds: number; readonly maxLifetimeSeconds: number; readonly clockSkewSeconds: number };
  /**
   * How long a looked-up client/token stays cached. Changes made through this node drop the entry
   * at once (invalidateClient); the TTL bounds how late another node's change is seen.
   */
  readonly cacheTtlMs?: number;
  readonly cacheSize?: number;
}

interface CachedToken {
  readonly token: ClientTokenRecord;
  readonly client: ClientRecord;
  readonly allowsIp: (address: string) => boolean;
  readonly fetchedAt: number;
}

export type Authenticator = ReturnType<typeof createAuthenticator>;

export function createAuthenticator(deps: AuthenticatorDeps) {
  const { store, clock, jwtKey } = deps;
  const cacheTtlMs = deps.cacheTtlMs ?? 1000;
  const isAdminToken = adminTokenVerifier(deps.adminTokenHashes);
  // Keyed by token hash (API tokens) and by token id (JWTs), both mapping to the same entries.
  const byHash = new LruMap<string, CachedToken>(deps.cacheSize ?? 10_000);
  const byTokenId = new LruMap<string, CachedToken>(deps.cacheSize ?? 10_000);
  const matchers = new LruMap<string, (address: string) => boolean>(deps.cacheSize ?? 10_000);
  const verifiedJwts = new LruMap<string, { claims: JwtClaims; validFromMs: number; validUntilMs: number }>(deps.cacheSize ?? 10_000);

  function matcherFor(client: ClientRecord): (address: string) => boolean {
    const key = client.allowedCidrs.join(',');
    let matcher = matchers.get(key);
    if (matcher === undefined) {
      matcher = createIpMatcher(client.allowedCidrs);
      matchers.set(key, matcher);
    }
    return matcher;
  }

  /** Bumped by every invalidation: a lookup that started before one must not cache what it read. */
  let epoch = 0;

  function remember(found: { token: ClientTokenRecord; client: ClientRecord }, startedAt: number): CachedToken {
    const entry: CachedToken = { ...found, allowsIp: matcherFor(found.client), fetchedAt: clock.now() };
    if (startedAt === epoch) {
      byHash.set(found.token.tokenHash, entry);
      byTokenId.set(found.token.id, entry);
    }
    return entry;
  }

  const fresh = (entry: CachedToken | undefined): entry is CachedToken => entry !== undefined && clock.now() - entry.fetchedAt < cacheTtlMs;

  async function lookupByHash(tokenHash: string): Promise<CachedToken | undefined> {
    const cached = byHash.get(tokenHash);
    if (fresh(cached)) return cached;
    const startedAt = epoch;
    const found = await store.findClientToken(tokenHash);
    return found && remember(found, startedAt);
  }

  async function lookupByTokenId(clientId: string, tokenId: string): Promise<CachedToken | undefined> {
    const cached = byTokenId.get(tokenId);
    if (fresh(cached) && cached.client.id === clientId) return cached;
    const startedAt = epoch;
    const token = (await store.listClientTokens(clientId)).find((t) => t.id === tokenId);
    if (!token) return undefined;
    const found = await store.findClientToken(token.tokenHash);
    return found && remember(found, startedAt);
  }

  /**
   * The claims of a JWT this node already verified, or verify it now. A JWT is used for many
   * requests; its signature and claims cannot change, so they are checked once and the exact token
   * text is remembered until its own validity window closes. Revocation is not cached here: the
   * token and client behind it are looked up (with the 1 s cache) on every request.
   */
  function verifiedClaims(credential: string): JwtClaims {
    const now = clock.now();
    const known = verifiedJwts.get(credential);
    if (known !== undefined && now >= known.validFromMs && now < known.validUntilMs) return known.claims;
    let claims: JwtClaims;
    try {
      claims = verifyJwt(jwtKey, credential, {
        now,
        maxLifetimeSeconds: deps.jwt.maxLifetimeSeconds,
        clockSkewSeconds: deps.jwt.clockSkewSeconds,
        issuer: JWT_ISSUER,
        audience: JWT_AUDIENCE,
      });
    } catch (error) {
      if (known !== undefined) verifiedJwts.delete(credential);
      if (error instanceof JwtError) throw new AuthFailure('jwt_invalid', error.reason);
      throw error;
    }
    // The same window verifyJwt enforces: exp is exclusive, nbf/iat may be up to the skew ahead.
    const skewMs = deps.jwt.clockSkewSeconds * 1000;
    verifiedJwts.set(credential, {
      claims,
      validFromMs: Math.max(claims.iat, claims.nbf ?? claims.iat) * 1000 - skewMs,
      validUntilMs: claims.exp * 1000 + skewMs,
    });
    return claims;
  }

  function usable(entry: CachedToken, via: 'api-token' | 'jwt', peerAddress: string): Principal {
    if (entry.token.expiresAt.getTime() <= clock.now()) throw new AuthFailure(via === 'jwt' ? 'jwt_token_revoked' : 'token_expired');
    if (entry.client.disabled) throw new AuthFailure('client_disabled');
    const principal = { kind: 'client' as const, client: entry.client, tokenId: entry.token.id, via };
    // Checked only after the credential proved valid, so the answer says nothing to someone
    // guessing tokens; an honest client from the wrong network gets a clear 403.
    if (!entry.allowsIp(peerAddress)) throw new AddressNotAllowed(principal, peerAddress);
    return principal;
  }

  return {
    /** The principal for `credential` (the text after "Bearer "). */
    async authenticate(credential: string, peerAddress: string): Promise<Principal> {
      // API tokens first (the common case); the admin token is tried only for other shapes, or
      // when a kst_-shaped credential is no client's token (a configured admin token may be anything).
      if (isApiTokenShaped(credential)) {
        const tokenHash = apiTokenHash(credential);
        const entry = await lookupByHash(tokenHash);
        // The store found the row by this hash; comparing again in constant time costs nothing
        // and keeps the check independent of how the database compares.
        if (!entry || !timingSafeEqual(Buffer.from(entry.token.tokenHash, 'hex'), Buffer.from(tokenHash, 'hex'))) {
          if (isAdminToken(credential)) return ADMIN_PRINCIPAL;
          throw new AuthFailure('unknown_token');
        }
        return usable(entry, 'api-token', peerAddress);
      }
      if (isAdminToken(credential)) return ADMIN_PRINCIPAL;
      if (JWT_SHAPE.test(credential)) {
        const claims = verifiedClaims(credential);
        // A JWT lives no longer than the API token it was exchanged for, nor than its client.
        const entry = await lookupByTokenId(claims.sub, claims.tid);
        if (!entry) throw new AuthFailure('jwt_token_revoked');
        return usable(entry, 'jwt', peerAddress);
      }
      throw new AuthFailure('malformed');
    },

    /** A JWT for a client authenticated with its API token. */
    issueJwt(principal: Extract<Principal, { kind: 'client' }>, ttlSeconds?: number): { token: string; expiresAt: Date } {
      const iat = Math.floor(clock.now() / 1000);
      const ttl = Math.max(1, Math.min(ttlSeconds ?? deps.jwt.defaultTtlSeconds, deps.jwt.maxLifetimeSeconds));
      const token = signJwt(jwtKey, { iss: JWT_ISSUER, aud: JWT_AUDIENCE, sub: principal.client.id, iat, exp: iat + ttl, jti: newId(), tid: principal.tokenId });
      return { token, expiresAt: new Date((iat + ttl) * 1000) };
    },

    /** Forget what is cached about a client (called on every change to it or its tokens). */
    invalidateClient(clientId: string): void {
      epoch++;
      for (const map of [byHash, byTokenId]) {
        for (const [key, entry] of [...map.entries()]) if (entry.client.id === clientId) map.delete(key);
      }
    },
  };
}
