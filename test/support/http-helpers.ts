import { expect } from 'vitest';
import type { TestKeystrata } from './test-keystrata.js';

/**
 * Small request helpers over a TestKeystrata's inject(), shared by the HTTP, service and e2e
 * suites. They assert the status they expect, so a failing call names the route and the body.
 */

/**
 * A parsed response body. Tests check bodies with run-time assertions (which fail with a readable
 * diff), so one deliberately loose type here keeps the many property reads in them short.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Body = any;

export interface InjectResult {
  readonly statusCode: number;
  readonly headers: Record<string, unknown>;
  readonly body: string;
  json<T = Body>(): T;
}

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';

export async function call(t: TestKeystrata, method: Method, url: string, payload?: unknown): Promise<InjectResult> {
  const response = await t.app.inject({
    method,
    url,
    headers: t.auth,
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });
  return response as unknown as InjectResult;
}

/** Call and require `status`; returns the parsed body (undefined for an empty one). */
export async function ok<T = Body>(t: TestKeystrata, method: Method, url: string, payload: unknown, status = 200): Promise<T> {
  const response = await call(t, method, url, payload);
  if (response.statusCode !== status) {
    throw new Error(`${method} ${url} → ${response.statusCode} (expected ${status}): ${response.body}`);
  }
  return (response.body === '' ? undefined : response.json()) as T;
}

export interface Workspace {
  readonly id: string;
  readonly name: string;
  readonly environments: readonly { id: string; name: string }[];
}

export async function createWorkspace(t: TestKeystrata, name = 'acme'): Promise<Workspace> {
  return ok<Workspace>(t, 'POST', '/v1/workspaces', { name }, 201);
}

export function envUrl(ws: string, env = 'production'): string {
  return `/v1/workspaces/${ws}/environments/${env}`;
}

export type ScopeType = 'job' | 'event' | 'connection' | 'log';
export const SCOPE_TYPES: readonly ScopeType[] = ['job', 'event', 'connection', 'log'];

export interface Scope {
  readonly type: ScopeType;
  readonly id: string;
}

export async function encrypt(t: TestKeystrata, ws: string, scope: Scope, plaintext: Uint8Array, env = 'production'): Promise<{ ciphertext: string; keyId: string }> {
  return ok(t, 'POST', `${envUrl(ws, env)}/encrypt`, { scope, plaintext: Buffer.from(plaintext).toString('base64') });
}

export async function decrypt(t: TestKeystrata, ws: string, ciphertext: string, scope?: Scope, env = 'production'): Promise<InjectResult> {
  return call(t, 'POST', `${envUrl(ws, env)}/decrypt`, scope === undefined ? { ciphertext } : { ciphertext, scope });
}

export async function keyStatus(t: TestKeystrata, ws: string, env = 'production'): Promise<Body> {
  return ok(t, 'GET', `${envUrl(ws, env)}/keys`, undefined);
}

/**
 * Every error response: `{error:{code,message,requestId}}`, the x-request-id header equal to
 * requestId, no caching. Returns the error object for further checks.
 */
export function expectError(response: InjectResult, status: number, code: string): { code: string; message: string; requestId: string; field?: string; details?: Record<string, unknown> } {
  expect(response.statusCode, response.body).toBe(status);
  const body = response.json<{ error: { code: string; message: string; requestId: string; field?: string; details?: Record<string, unknown> } }>();
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(body.error.message.length).toBeGreaterThan(0);
  expect(body.error.requestId).toMatch(/^req_\w+$/);
  expect(response.headers['x-request-id']).toBe(body.error.requestId);
  expect(response.headers['cache-control']).toBe('no-store');
  expect(String(response.headers['content-type'])).toMatch(/^application\/json/);
  return body.error;
}

/** Every byte value 0..255, a few times over, for binary round trips. */
export function allByteValues(): Buffer {
  const bytes = Buffer.alloc(512);
  for (let i = 0; i < bytes.length; i++) bytes[i] = i % 256;
  return bytes;
}
