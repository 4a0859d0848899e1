import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hkdfSha256 } from '../../src/core/hkdf.js';
import type { InjectResult, Method } from './http-helpers.js';
import type { TestKeystrata } from './test-keystrata.js';

/**
 * Helpers for the access-control suites: requests as a given bearer credential and from a given
 * peer address, API clients created over HTTP, and JWTs forged with keystrata's own signing key
 * (to present correctly signed tokens whose claims are wrong).
 */

export type Role = 'admin' | 'operator' | 'app' | 'auditor';
export const ROLES: readonly Role[] = ['admin', 'operator', 'app', 'auditor'];

export interface RequestOptions {
  /** Peer address of the request (inject's remoteAddress); default 127.0.0.1. */
  readonly remoteAddress?: string;
  /** Extra headers (e.g. x-forwarded-for). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** A request with `Authorization: Bearer <token>` (no Authorization header when token is undefined). */
export async function as(
  t: Pick<TestKeystrata, 'app'>,
  token: string | undefined,
  method: Method,
  url: string,
  payload?: unknown,
  options: RequestOptions = {},
): Promise<InjectResult> {
  const response = await t.app.inject({
    method,
    url,
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...options.headers },
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    ...(options.remoteAddress === undefined ? {} : { remoteAddress: options.remoteAddress }),
  });
  return response as unknown as InjectResult;
}

/** Like `as`, but requires `status` and returns the parsed body. */
export async function asOk<T = ReturnType<InjectResult['json']>>(
  t: Pick<TestKeystrata, 'app'>,
  token: string | undefined,
  method: Method,
  url: string,
  payload?: unknown,
  status = 200,
  options: RequestOptions = {},
): Promise<T> {
  const response = await as(t, token, method, url, payload, options);
  if (response.statusCode !== status) throw new Error(`${method} ${url} → ${response.statusCode} (expected ${status}): ${response.body}`);
  return (response.body === '' ? undefined : response.json()) as T;
}

export interface ClientView {
  readonly id: string;
  readonly workspaceId: string;
  readonly name: string;
  readonly role: Role;
  readonly environments: string[];
  readonly allowedCidrs: string[];
  readonly tokenTtlSeconds: number;
  readonly rateLimitPerSecond: number | null;
  readonly disabled: boolean;
  readonly usage: { requests: number; failures: number; lastUsedAt: string | null; lastUsedIp: string | null };
  readonly tokens: { id: string; createdAt: string; expiresAt: string }[];
}

export interface CreatedClient {
  readonly client: ClientView;
  readonly token: string;
  readonly tokenId: string;
  readonly expiresAt: string;
}

export interface ClientInput {
  readonly name?: string;
  readonly role: Role;
  readonly environments?: string[];
  readonly allowedCidrs?: string[];
  readonly tokenTtlSeconds?: number;
  readonly rateLimitPerSecond?: number | null;
}

export function clientsUrl(ws: string, id?: string): string {
  return id === undefined ? `/v1/workspaces/${ws}/clients` : `/v1/workspaces/${ws}/clients/${id}`;
}

/** Creates an API client (as the admin token unless `by` is given); the name defaults to a unique one. */
export async function createClient(t: TestKeystrata, ws: string, input: ClientInput, by: string = t.token): Promise<CreatedClient> {
  const body = { name: input.name ?? `${input.role}-${randomUUID().slice(0, 8)}`, ...input };
  return asOk<CreatedClient>(t, by, 'POST', clientsUrl(ws), body, 201);
}

export interface RotatedToken {
  readonly token: string;
  readonly tokenId: string;
  readonly expiresAt: string;
  readonly previousTokensExpireBy: string;
}

export async function rotateToken(t: TestKeystrata, ws: string, id: string, graceSeconds?: number): Promise<RotatedToken> {
  return asOk<RotatedToken>(t, t.token, 'POST', `${clientsUrl(ws, id)}/tokens`, graceSeconds === undefined ? {} : { graceSeconds }, 201);
}

/** Exchanges an API token for a JWT. */
export async function issueJwt(t: TestKeystrata, apiToken: string, ttlSeconds?: number, options: RequestOptions = {}): Promise<{ token: string; tokenType: string; expiresAt: string }> {
  return asOk(t, apiToken, 'POST', '/v1/auth/token', ttlSeconds === undefined ? {} : { ttlSeconds }, 200, options);
}

/**
 * The HS256 key of keystrata-issued JWTs, derived from the test instance's root key exactly as
 * src/service/root-key.ts does. (The suites check it against a JWT the server issued.)
 */
export function jwtKeyOf(t: Pick<TestKeystrata, 'config'>): Buffer {
  const base64 = t.config.rootKeyBase64 ?? readFileSync(t.config.rootKeyFile, 'utf8');
  const rootKey = Buffer.from(base64.trim(), 'base64');
  return hkdfSha256(rootKey, Buffer.from('keystrata root key v1', 'utf8'), 'keystrata jwt hs256', 32);
}

const b64url = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** A compact JWS with any header and payload, HMAC-SHA-256 over them with `key`. */
export function forgeJwt(key: Buffer, payload: Record<string, unknown>, header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' }): string {
  const signingInput = `${b64url(header)}.${b64url(payload)}`;
  return `${signingInput}.${createHmac('sha256', key).update(signingInput).digest('base64url')}`;
}

/** The payload of a compact JWS (not verified). */
export function jwtPayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** Everything a response exposes, as text: status, headers and body. */
export function responseText(response: InjectResult): string {
  return `${response.statusCode}\n${JSON.stringify(response.headers)}\n${response.body}`;
}
