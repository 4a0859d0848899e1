import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/service/clock.js';
import { as, asOk, clientsUrl, createClient, issueJwt, type ClientView } from '../support/access-helpers.js';
import { createWorkspace, envUrl, expectError } from '../support/http-helpers.js';
import { TEST_ADMIN_TOKEN, openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

/** Per-client usage counters and the Prometheus endpoint. */

const METRICS_TOKEN = 'scraper-token-' + 's'.repeat(40);

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** The samples of a Prometheus text exposition (comments skipped). */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include `labels`. */
function total(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0);
}

for (const store of testStores()) {
  describe(`monitoring (${store})`, () => {
    let t: TestKeystrata;
    let clock: ManualClock;
    let ws: string;

    beforeAll(async () => {
      clock = new ManualClock(Date.UTC(2026, 0, 1));
      t = await openTestKeystrata({ store, clock, env: { KEYSTRATA_METRICS_TOKEN: METRICS_TOKEN } });
      ws = (await createWorkspace(t, 'monitored')).id;
    });
    afterAll(async () => {
      await t?.destroy();
    });

    const encryptBody = { scope: { type: 'job', id: 'j' }, plaintext: 'aGk=' };
    const getClient = (id: string) => asOk<ClientView>(t, t.token, 'GET', clientsUrl(ws, id));

    describe('per-client usage', () => {
      it('counts requests and failures, and records the time and address of the last use', async () => {
        const client = await createClient(t, ws, { role: 'app', allowedCidrs: ['10.0.0.0/8', '2001:db8::/32'] });
        const bystander = await createClient(t, ws, { role: 'app' });
        expect((await getClient(client.client.id)).usage).toEqual({ requests: 0, failures: 0, lastUsedAt: null, lastUsedIp: null });

        for (let i = 0; i < 3; i++) expect((await as(t, client.token, 'POST', `${envUrl(ws)}/encrypt`, encryptBody, { remoteAddress: '10.1.1.1' })).statusCode).toBe(200);
        clock.advance(5_000);
        // Failures: not permitted (403), not found (404), invalid (400).
        expectError(await as(t, client.token, 'GET', `/v1/workspaces/${ws}`, undefined, { remoteAddress: '10.1.1.2' }), 403, 'forbidden');
        expectError(await as(t, client.token, 'GET', `${envUrl(ws)}/objects/${randomUUID()}`, undefined, { remoteAddress: '10.1.1.2' }), 404, 'object_not_found');
        clock.advance(1_000);
        const lastAt = clock.now();
        expectError(await as(t, client.token, 'POST', `${envUrl(ws)}/encrypt`, { bogus: 1 }, { remoteAddress: '2001:db8::7' }), 400, 'invalid_request');
        // Requests that prove nothing about this client are not its usage.
        expectError(await as(t, `kst_${'x'.repeat(43)}`, 'POST', `${envUrl(ws)}/encrypt`, encryptBody), 401, 'unauthorized');
        await as(t, bystander.token, 'POST', `${envUrl(ws)}/encrypt`, encryptBody);

        const expected = { requests: 6, failures: 3, lastUsedAt: new Date(lastAt).toISOString(), lastUsedIp: '2001:db8::7' };
        expect((await getClient(client.client.id)).usage).toEqual(expected);
        const listed = await asOk<{ items: ClientView[] }>(t, t.token, 'GET', `${clientsUrl(ws)}?limit=1000`);
        expect(listed.items.find((c) => c.id === client.client.id)?.usage).toEqual(expected);
        expect(listed.items.find((c) => c.id === bystander.client.id)?.usage).toMatchObject({ requests: 1, failures: 0 });

        // Flushed to the store: the same numbers there, and not counted twice over HTTP.
        await t.ks.usage.flush();
        const stored = await t.ks.store.getClient(ws, client.client.id);
        expect(stored?.usage).toEqual({ ...expected, lastUsedAt: new Date(lastAt) });
        expect((await getClient(client.client.id)).usage).toEqual(expected);

        // More use after the flush adds to what is stored.
        clock.advance(1_000);
        await as(t, client.token, 'POST', `${envUrl(ws)}/encrypt`, encryptBody, { remoteAddress: '10.9.9.9' });
        expect((await getClient(client.client.id)).usage).toEqual({ requests: 7, failures: 3, lastUsedAt: new Date(clock.now()).toISOString(), lastUsedIp: '10.9.9.9' });
        await t.ks.usage.flush();
        expect((await t.ks.store.getClient(ws, client.client.id))?.usage).toMatchObject({ requests: 7, failures: 3, lastUsedIp: '10.9.9.9' });
      });

      it('JWT requests, refused addresses and rate-limited requests count for the client; the IPv4-mapped form is reported as IPv4', async () => {
        const client = await createClient(t, ws, { role: 'app', allowedCidrs: ['10.0.0.0/8'], rateLimitPerSecond: 1 });
        const jwt = (await issueJwt(t, client.token, undefined, { remoteAddress: '::ffff:10.0.0.1' })).token;
        expect((await as(t, jwt, 'POST', `${envUrl(ws)}/encrypt`, encryptBody, { remoteAddress: '10.0.0.2' })).statusCode).toBe(200);
        // Burst of 2 used: this one is rate limited.
        expectError(await as(t, jwt, 'POST', `${envUrl(ws)}/encrypt`, encryptBody, { remoteAddress: '10.0.0.2' }), 429, 'rate_limited');
        expectError(await as(t, client.token, 'POST', `${envUrl(ws)}/encrypt`, encryptBody, { remoteAddress: '192.0.2.44' }), 403, 'ip_not_allowed');
        const usage = (await getClient(client.client.id)).usage;
        expect(usage).toEqual({ requests: 4, failures: 2, lastUsedAt: new Date(clock.now()).toISOString(), lastUsedIp: '192.0.2.44' });
        await as(t, client.token, 'POST', '/v1/auth/token', {}, { remoteAddress: '::ffff:10.0.0.3' });
        expect((await getClient(client.client.id)).usage.lastUsedIp).toBe('10.0.0.3');
      });

      it('usage survives a restart (flushed on close)', async () => {
        const handle = t.handle;
        const client = await createClient(t, ws, { role: 'app' });
        await as(t, client.token, 'POST', `${envUrl(ws)}/encrypt`, encryptBody, { remoteAddress: '10.3.3.3' });
        const before = (await getClient(client.client.id)).usage;
        expect(before).toMatchObject({ requests: 1, failures: 0, lastUsedIp: '10.3.3.3' });
        await t.close();
        t = await openTestKeystrata({ store, clock, handle, env: { KEYSTRATA_METRICS_TOKEN: METRICS_TOKEN } });
        expect((await getClient(client.client.id)).usage).toEqual(before);
      });
    });

    describe('/metrics', () => {
      const scrape = (authorization?: string) => t.app.inject({ method: 'GET', url: '/metrics', headers: authorization === undefined ? {} : { authorization } });

      it('needs the admin token or the metrics token; 401 without, or with a client token or JWT', async () => {
        const client = await createClient(t, ws, { role: 'admin' });
        const jwt = (await issueJwt(t, client.token)).token;
        for (const authorization of [undefined, '', 'Bearer', `Bearer ${client.token}`, `Bearer ${jwt}`, `Bearer ${METRICS_TOKEN}x`, `bearer ${METRICS_TOKEN}`, METRICS_TOKEN, `Basic ${METRICS_TOKEN}`]) {
          const response = await scrape(authorization);
          expectError(response, 401, 'unauthorized');
          expect(response.body).not.toContain('keystrata_');
        }
        for (const token of [TEST_ADMIN_TOKEN, METRICS_TOKEN]) {
          const response = await scrape(`Bearer ${token}`);
          expect(response.statusCode).toBe(200);
          expect(String(response.headers['content-type'])).toMatch(/^text\/plain/);
          expect(response.body).toContain('# TYPE keystrata_http_requests_total counter');
        }
        // The metrics token is only for metrics.
        expectError(await as(t, METRICS_TOKEN, 'GET', `/v1/workspaces/${ws}`), 401, 'unauthorized');
        expectError(await as(t, METRICS_TOKEN, 'GET', '/v1/workspaces'), 401, 'unauthorized');
      });

      it('reports requests by route pattern, key cache, provider calls, auth failures and rate limits — and no ids or tokens', async () => {
        const mws = (await createWorkspace(t, 'metrics')).id;
        const app = await createClient(t, mws, { role: 'app', rateLimitPerSecond: 1 });
        const object = await asOk<{ id: string }>(t, t.token, 'POST', `${envUrl(mws)}/objects`, { name: 'o', value: 'v', context: { a: 'b' } }, 201);
        const before = parseMetrics((await scrape(`Bearer ${METRICS_TOKEN}`)).body);

        const encryptRoute = '/v1/workspaces/:ws/environments/:env/encrypt';
        const objectRoute = '/v1/workspaces/:ws/environments/:env/objects/:id';
        for (let i = 0; i < 3; i++) expect((await as(t, t.token, 'POST', `${envUrl(mws)}/encrypt`, encryptBody)).statusCode).toBe(200);
        expect((await as(t, t.token, 'GET', `${envUrl(mws)}/objects/${object.id}`)).statusCode).toBe(200);
        expect((await as(t, t.token, 'GET', `${envUrl(mws)}/objects/${randomUUID()}`)).statusCode).toBe(404);
        expect((await as(t, t.token, 'GET', `/v1/nothing/${mws}`)).statusCode).toBe(404);
        expectError(await as(t, `kst_${'q'.repeat(43)}`, 'GET', `/v1/workspaces/${mws}`), 401, 'unauthorized');
        expectError(await as(t, 'garbage', 'GET', `/v1/workspaces/${mws}`), 401, 'unauthorized');
        expect((await as(t, app.token, 'POST', `${envUrl(mws)}/encrypt`, encryptBody)).statusCode).toBe(200);
        expect((await as(t, app.token, 'POST', `${envUrl(mws)}/encrypt`, encryptBody)).statusCode).toBe(200);
        expectError(await as(t, app.token, 'POST', `${envUrl(mws)}/encrypt`, encryptBody), 429, 'rate_limited');

        const text = (await scrape(`Bearer ${TEST_ADMIN_TOKEN}`)).body;
        const after = parseMetrics(text);
        const delta = (name: string, labels: Record<string, string> = {}) => total(after, name, labels) - total(before, name, labels);

        expect(delta('keystrata_http_requests_total', { method: 'POST', route: encryptRoute, status: '200' })).toBe(5);
        expect(delta('keystrata_http_requests_total', { method: 'POST', route: encryptRoute, status: '429' })).toBe(1);
        expect(delta('keystrata_http_requests_total', { method: 'GET', route: objectRoute, status: '200' })).toBe(1);
        expect(delta('keystrata_http_requests_total', { method: 'GET', route: objectRoute, status: '404' })).toBe(1);
        expect(delta('keystrata_http_requests_total', { method: 'GET', route: '/v1/workspaces/:ws', status: '401' })).toBe(2);
        // Route labels are patterns, never concrete URLs.
        const routes = new Set(after.filter((s) => s.name === 'keystrata_http_requests_total').map((s) => s.labels['route']!));
        for (const route of routes) expect(route).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-/);
        expect(routes).toContain(encryptRoute);

        expect(total(after, 'keystrata_key_cache_hits_total')).toBeGreaterThan(0);
        expect(total(after, 'keystrata_key_cache_misses_total')).toBeGreaterThan(0);
        expect(delta('keystrata_key_cache_hits_total')).toBeGreaterThan(0);
        expect(after.some((s) => s.name === 'keystrata_key_cache_entries')).toBe(true);
        expect(total(after, 'keystrata_provider_calls_total', { provider: 'platform' })).toBeGreaterThan(0);
        expect(delta('keystrata_auth_failures_total')).toBe(2);
        expect(delta('keystrata_auth_failures_total', { reason: 'unknown_token' })).toBe(1);
        expect(delta('keystrata_auth_failures_total', { reason: 'malformed' })).toBe(1);
        expect(delta('keystrata_rate_limited_total', { limit: 'client' })).toBe(1);
        expect(text).toContain('keystrata_rate_limited_total{limit="client"}');

        // Nothing identifying a tenant, and no credential.
        const ids = [ws, mws, object.id, app.client.id, app.tokenId, ...app.client.tokens.map((tk) => tk.id)];
        for (const id of ids) expect(text).not.toContain(id);
        for (const secret of [app.token, app.token.slice(4), TEST_ADMIN_TOKEN, METRICS_TOKEN, 'kst_']) expect(text).not.toContain(secret);
      });

      it('counts brute-force refusals separately', async () => {
        const tb = await openTestKeystrata({ store, env: { KEYSTRATA_AUTH_FAILURES_PER_MINUTE: '2' } });
        try {
          for (let i = 0; i < 3; i++) await as(tb, `kst_${'z'.repeat(43)}`, 'GET', '/v1/workspaces', undefined, { remoteAddress: '198.51.100.20' });
          const samples = parseMetrics((await tb.app.inject({ method: 'GET', url: '/metrics', headers: tb.auth })).body);
          expect(total(samples, 'keystrata_auth_failures_total', { reason: 'unknown_token' })).toBe(2);
          expect(total(samples, 'keystrata_rate_limited_total', { limit: 'auth_failures' })).toBe(1);
        } finally {
          await tb.destroy();
        }
      });
    });
  });
}
