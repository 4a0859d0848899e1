import { Agent, request as httpRequest } from 'node:http';
import type { Body } from '../support/http-helpers.js';

/**
 * A small keep-alive HTTP client for the failure drills, over node:http so that each drill owns its
 * sockets: a request whose server dies mid-flight fails with a NetworkError (its outcome unknown),
 * never with a silent automatic retry, and nothing is pooled across drills.
 */

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface Reply {
  readonly status: number;
  readonly body: Body;
}

/** The request may or may not have reached the server and committed: the connection failed. */
export class NetworkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NetworkError';
  }
}

export interface DrillClient {
  call(base: string, method: Method, path: string, body?: unknown): Promise<Reply>;
  /** Call and require `status`; returns the body. */
  ok(base: string, method: Method, path: string, body: unknown, status?: number): Promise<Body>;
  close(): void;
}

const REQUEST_TIMEOUT_MS = 30_000;

export function createDrillClient(token: string, maxSockets = 64): DrillClient {
  const agent = new Agent({ keepAlive: true, maxSockets });
  function call(base: string, method: Method, path: string, body?: unknown): Promise<Reply> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<Reply>((resolve, reject) => {
      const request = httpRequest(new URL(path, base), {
        method,
        agent,
        headers: {
          authorization: `Bearer ${token}`,
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
        },
      });
      request.setTimeout(REQUEST_TIMEOUT_MS, () => request.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
      request.once('error', (error) => reject(new NetworkError(`${method} ${base}${path}: ${error.message}`, { cause: error })));
      request.once('response', (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.once('error', (error) => reject(new NetworkError(`${method} ${base}${path} (reading the answer): ${error.message}`, { cause: error })));
        response.once('end', () => {
          const text = Buffer.concat(chunks).toString();
          try {
            resolve({ status: response.statusCode ?? 0, body: text === '' ? undefined : (JSON.parse(text) as Body) });
          } catch {
            reject(new Error(`${method} ${path} → ${response.statusCode}: not JSON: ${text.slice(0, 200)}`));
          }
        });
      });
      request.end(payload);
    });
  }
  return {
    call,
    async ok(base, method, path, body, status = 200) {
      const reply = await call(base, method, path, body);
      if (reply.status !== status) throw new Error(`${method} ${path} → ${reply.status} (expected ${status}): ${JSON.stringify(reply.body)}`);
      return reply.body;
    },
    close: () => agent.destroy(),
  };
}

/** Run `work` over `items` with at most `concurrency` in flight; the first failure rejects. */
export async function forEachConcurrently<T>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        await work(items[index]!, index);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  });
  await Promise.all(lanes);
}

/**
 * Retry on a NetworkError only (the request may not have been handled; every use here is
 * idempotent or checks for its own earlier success). Any HTTP answer is returned as is.
 */
export async function callRetrying(client: DrillClient, base: () => string, method: Method, path: string, body?: unknown, attempts = 5): Promise<Reply> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.call(base(), method, path, body);
    } catch (error) {
      if (!(error instanceof NetworkError) || attempt >= attempts) throw error;
      await sleep(50 * attempt);
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll `probe` until it returns a value (not undefined); fails after `timeoutMs` with `what` and the last value seen. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export const b64 = (text: string): string => Buffer.from(text).toString('base64');
export const unb64 = (base64: string): string => Buffer.from(base64, 'base64').toString();
