/**
 * HTTP encrypt throughput: a real keystrata server process (compiled, embedded SQLite) under
 * autocannon with 64 connections, POST …/encrypt of a 1 KiB plaintext for a job scope, as an "app"
 * API client (token, then JWT) — so every request is authenticated, authorised, rate-limited and
 * audited (one hash-chained entry per request, group-committed) — compared in the same run with a
 * bare Fastify JSON route (the framework ceiling on this machine).
 * The load generator shares the 2 cores with the server, so absolute numbers are pessimistic.
 *
 *   npm run build && node dist/bench/http-encrypt.js [--seconds 10] [--connections 64]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { machineLine } from './lib/measure.js';
import { spawnServer } from '../test/support/spawn-server.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, connections: { type: 'string', default: '64' } } });
const duration = Number(values.seconds);
const connections = Number(values.connections);
const token = 'bench-admin-token-' + randomBytes(24).toString('hex');
const dataDir = mkdtempSync(join(tmpdir(), 'keystrata-http-bench-'));
const adminHeaders = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
const body = JSON.stringify({ scope: { type: 'job', id: 'job-http-bench' }, plaintext: randomBytes(1024).toString('base64') });

async function load(url: string, headers: Record<string, string>): Promise<autocannon.Result> {
  return autocannon({ url, method: 'POST', headers, body, connections, duration, pipelining: 1 });
}

async function post<T>(url: string, headers: Record<string, string>, payload: unknown): Promise<T> {
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(payload) });
  if (!response.ok) throw new Error(`POST ${url} → ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

const keystrata = await spawnServer(process.execPath, ['bin/keystrata.js', 'serve'], {
  ...process.env,
  KEYSTRATA_DATA_DIR: dataDir,
  KEYSTRATA_ADMIN_TOKEN: token,
  KEYSTRATA_LOG_LEVEL: 'warn',
  PORT: '0',
});
const noop = await spawnServer(process.execPath, [fileURLToPath(new URL('./support/noop-server.js', import.meta.url))], process.env);
try {
  const workspace = await post<{ id: string }>(`${keystrata.url}/v1/workspaces`, adminHeaders, { name: 'bench' });
  const app = await post<{ token: string }>(`${keystrata.url}/v1/workspaces/${workspace.id}/clients`, adminHeaders, {
    name: 'bench-app',
    role: 'app',
    environments: ['production'],
    rateLimitPerSecond: 1_000_000,
  });
  const appHeaders = { authorization: `Bearer ${app.token}`, 'content-type': 'application/json' };
  const jwt = await post<{ token: string }>(`${keystrata.url}/v1/auth/token`, appHeaders, { ttlSeconds: 3600 });
  const jwtHeaders = { authorization: `Bearer ${jwt.token}`, 'content-type': 'application/json' };
  const encryptUrl = `${keystrata.url}/v1/workspaces/${workspace.id}/environments/production/encrypt`;
  // Warm both (JIT, key cache), then measure.
  await autocannon({ url: encryptUrl, method: 'POST', headers: appHeaders, body, connections, duration: 2 });
  await autocannon({ url: `${noop.url}/noop`, method: 'POST', headers: appHeaders, body, connections, duration: 2 });
  const ours = await load(encryptUrl, appHeaders);
  const viaJwt = await load(encryptUrl, jwtHeaders);
  const ceiling = await load(`${noop.url}/noop`, appHeaders);
  const line = (name: string, r: autocannon.Result) =>
    `${name.padEnd(34)} ${Math.round(r.requests.average).toLocaleString('en-US').padStart(8)} req/s  p50 ${r.latency.p50} ms  p99 ${r.latency.p99} ms  non-2xx ${r.non2xx}  errors ${r.errors}`;
  console.log(`# HTTP POST encrypt, 1 KiB, ${connections} connections, ${duration}s (${machineLine()}, autocannon on the same 2 cores)`);
  console.log(line('keystrata encrypt, app API token', ours));
  console.log(line('keystrata encrypt, app JWT', viaJwt));
  console.log(line('bare fastify JSON route', ceiling));
  console.log(`keystrata / bare fastify = ${((ours.requests.average / ceiling.requests.average) * 100).toFixed(1)}%`);
  console.log(`target >= 10,000 req/s: ${ours.requests.average >= 10_000 ? 'met' : 'NOT met'}${ours.non2xx > 0 ? ' (non-2xx responses!)' : ''}`);
} finally {
  await keystrata.stop();
  await noop.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
