import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  KeystrataApiError,
  KeystrataClient,
  isKeystrataApiError,
  type ApiClient,
  type AuditEntry,
  type CreateClientRequest,
  type UpdateClientRequest,
} from '../../sdk/index.js';
import { parseRetryAfter } from '../../sdk/transport.js';
import { errorReply, startFakeApi, type FakeApi, type RecordedRequest } from '../support/fake-api-server.js';

// The access-control calls (API clients, JWTs, audit log) against a fake API on a real socket.

const TOKEN = 'ks_test_token_0123456789abcdef0123456789';
const WS = '0b6c7a52-3f4e-4c1a-9d7e-2f0a1b2c3d4e';
const CID = 'c1a2b3c4-0000-4000-8000-000000000001';
const T = '2025-01-01T00:00:00.000Z';
const CLIENT: ApiClient = {
  id: CID,
  workspaceId: WS,
  name: 'billing',
  role: 'app',
  environments: ['production'],
  allowedCidrs: ['10.0.0.0/8'],
  tokenTtlSeconds: 86_400,
  rateLimitPerSecond: null,
  disabled: false,
  createdAt: T,
  updatedAt: T,
  usage: { requests: 0, failures: 0, lastUsedAt: null, lastUsedIp: null },
  tokens: [{ id: 'tok-1', createdAt: T, expiresAt: '2025-01-02T00:00:00.000Z' }],
};

function entry(seq: number): AuditEntry {
  return { seq, id: `e${seq}`, at: T, environmentId: null, link: seq.toString(16).padStart(64, '0'), action: 'client.create', outcome: 'success' };
}

let api: FakeApi;
let client: KeystrataClient;

beforeAll(async () => {
  api = await startFakeApi();
});
afterAll(async () => {
  await api.close();
});
beforeEach(() => {
  api.requests.length = 0;
  api.reply(() => ({ status: 200, body: {} }));
  client = new KeystrataClient({ baseUrl: api.url, token: TOKEN });
});

function last(): RecordedRequest {
  const request = api.requests.at(-1);
  if (request === undefined) throw new Error('no request was made');
  return request;
}

async function rejection(promise: Promise<unknown>): Promise<KeystrataApiError> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isKeystrataApiError(err)) throw new Error(`expected a KeystrataApiError, got ${String(err)}`);
  return err;
}

/** Everything an async iterable yields. */
async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** Serves the audit log `entries` in pages, as the server does: cursor = the last seq of the page. */
function auditPages(entries: readonly AuditEntry[], defaultLimit = 100): void {
  api.reply((req) => {
    const after = Number(req.query.get('cursor') ?? '0');
    const limit = Number(req.query.get('limit') ?? defaultLimit);
    const items = entries.filter((e) => e.seq > after).slice(0, limit);
    const more = entries.some((e) => e.seq > (items.at(-1)?.seq ?? after));
    return { status: 200, body: { items, nextCursor: more ? String(items.at(-1)?.seq) : null } };
  });
}

describe('KeystrataClient: API clients', () => {
  it('maps every access route to its method and path', async () => {
    const calls: [() => Promise<unknown>, string, string][] = [
      [() => client.listClients(WS), 'GET', `/v1/workspaces/${WS}/clients`],
      [() => client.listClients(WS, { limit: 5, cursor: 'c/1' }), 'GET', `/v1/workspaces/${WS}/clients?limit=5&cursor=c%2F1`],
      [() => client.getClient(WS, CID), 'GET', `/v1/workspaces/${WS}/clients/${CID}`],
      [() => client.updateClient(WS, CID, { name: 'x' }), 'PATCH', `/v1/workspaces/${WS}/clients/${CID}`],
      [() => client.rotateClientToken(WS, CID), 'POST', `/v1/workspaces/${WS}/clients/${CID}/tokens`],
      [() => client.issueJwt(), 'POST', '/v1/auth/token'],
      [() => client.listAuditEntries(WS), 'GET', `/v1/workspaces/${WS}/audit`],
      [() => client.listAuditEntries(WS, { limit: 1000, cursor: '42' }), 'GET', `/v1/workspaces/${WS}/audit?limit=1000&cursor=42`],
      [() => client.verifyAudit(WS), 'GET', `/v1/workspaces/${WS}/audit/verify`],
    ];
    for (const [call, method, path] of calls) {
      await call();
      expect({ method: last().method, path: last().rawPath }).toEqual({ method, path });
      expect(last().headers.authorization).toBe(`Bearer ${TOKEN}`);
    }
  });

  it('percent-encodes the workspace and client id, and refuses empty ones before sending', async () => {
    await client.getClient('a/b', 'c?d');
    expect(last().rawPath).toBe('/v1/workspaces/a%2Fb/clients/c%3Fd');
    api.requests.length = 0;
    expect(await rejection(client.deleteClient(WS, ''))).toMatchObject({ status: 0, code: 'invalid_request' });
    expect(await rejection(client.rotateClientToken('..', CID))).toMatchObject({ status: 0, code: 'invalid_request' });
    expect(api.requests).toHaveLength(0);
  });

  it('creates a client with exactly the members the server accepts, and returns the token', async () => {
    const answer = { client: CLIENT, token: 'ks_new_token', tokenId: 'tok-1', expiresAt: CLIENT.tokens[0]?.expiresAt };
    api.reply(() => ({ status: 201, body: answer }));
    const full: CreateClientRequest = {
      name: 'billing',
      role: 'app',
      environments: ['production', 'staging'],
      allowedCidrs: ['10.0.0.0/8'],
      tokenTtlSeconds: 3600,
      rateLimitPerSecond: 50,
    };
    await expect(client.createClient(WS, full)).resolves.toEqual(answer);
    expect(last()).toMatchObject({ method: 'POST', rawPath: `/v1/workspaces/${WS}/clients` });
    expect(last().headers['content-type']).toBe('application/json');
    expect(last().json).toEqual(full);

    // Absent members are not sent (the server applies its defaults); null is sent as null.
    await client.createClient(WS, { name: 'ops', role: 'operator', rateLimitPerSecond: null });
    expect(last().json).toEqual({ name: 'ops', role: 'operator', rateLimitPerSecond: null });
    // The body is additionalProperties: false on the server; nothing else the object carries is sent.
    await client.createClient(WS, { name: 'x', role: 'auditor', id: 'chosen', disabled: true } as CreateClientRequest);
    expect(last().json).toEqual({ name: 'x', role: 'auditor' });
  });

  it('updates with PATCH and exactly the members given, null and false included', async () => {
    api.reply(() => ({ status: 200, body: { ...CLIENT, disabled: true } }));
    const updated = await client.updateClient(WS, CID, { disabled: true });
    expect(updated.disabled).toBe(true);
    expect(last().json).toEqual({ disabled: true });
    await client.updateClient(WS, CID, { rateLimitPerSecond: null, disabled: false });
    expect(last().json).toEqual({ rateLimitPerSecond: null, disabled: false });
    const all: UpdateClientRequest = {
      name: 'n',
      role: 'admin',
      environments: ['*'],
      allowedCidrs: ['::/0'],
      tokenTtlSeconds: 300,
      rateLimitPerSecond: 1,
      disabled: false,
    };
    await client.updateClient(WS, CID, { ...all, workspaceId: 'other' } as UpdateClientRequest);
    expect(last().json).toEqual(all);
  });

  it('refuses an update that changes nothing, before sending', async () => {
    const err = await rejection(client.updateClient(WS, CID, {}));
    expect(err).toMatchObject({ status: 0, code: 'invalid_request' });
    expect(err.message).toMatch(/at least one/);
    await rejection(client.updateClient(WS, CID, { name: undefined }));
    expect(api.requests).toHaveLength(0);
  });

  it('deletes with DELETE and resolves to undefined on 204', async () => {
    api.reply(() => ({ status: 204 }));
    await expect(client.deleteClient(WS, CID)).resolves.toBeUndefined();
    expect(last()).toMatchObject({ method: 'DELETE', rawPath: `/v1/workspaces/${WS}/clients/${CID}`, body: '' });
  });

  it('rotates a token with an empty JSON object, or the grace period', async () => {
    const answer = { token: 'ks_rotated', tokenId: 'tok-2', expiresAt: T, previousTokensExpireBy: T };
    api.reply(() => ({ status: 201, body: answer }));
    await expect(client.rotateClientToken(WS, CID)).resolves.toEqual(answer);
    // A JSON body is always sent: the route has a body schema, and an empty body with a JSON type is refused.
    expect(last()).toMatchObject({ body: '{}', headers: { 'content-type': 'application/json' } });
    await client.rotateClientToken(WS, CID, { graceSeconds: 0 });
    expect(last().json).toEqual({ graceSeconds: 0 });
  });

  it('issues a JWT with the configured token and returns it as sent', async () => {
    const answer = { token: 'eyJhbGciOiJIUzI1NiJ9.e30.sig', tokenType: 'Bearer', expiresAt: T };
    api.reply(() => ({ status: 200, body: answer }));
    await expect(client.issueJwt({ ttlSeconds: 900 })).resolves.toEqual(answer);
    expect(last()).toMatchObject({ method: 'POST', rawPath: '/v1/auth/token', json: { ttlSeconds: 900 } });
    expect(last().headers.authorization).toBe(`Bearer ${TOKEN}`);
    await client.issueJwt();
    expect(last().body).toBe('{}');
  });
});

describe('KeystrataClient: audit log', () => {
  it('lists one page as sent', async () => {
    const page = { items: [entry(1), { seq: 2, id: 'e2', at: T, environmentId: 'env-1', link: 'ab', unreadable: 'cmk_unavailable' }], nextCursor: '2' };
    api.reply(() => ({ status: 200, body: page }));
    await expect(client.listAuditEntries(WS, { limit: 2 })).resolves.toEqual(page);
  });

  it('auditEntries pages through the whole log in seq order, passing the page size on every page', async () => {
    const entries = Array.from({ length: 7 }, (_, i) => entry(i + 1));
    auditPages(entries);
    const got = await collect(client.auditEntries(WS, { limit: 3 }));
    expect(got.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(api.requests.map((r) => r.rawPath)).toEqual([
      `/v1/workspaces/${WS}/audit?limit=3`,
      `/v1/workspaces/${WS}/audit?limit=3&cursor=3`,
      `/v1/workspaces/${WS}/audit?limit=3&cursor=6`,
    ]);
  });

  it('auditEntries starts after a given cursor, and ends on an empty log', async () => {
    auditPages(Array.from({ length: 5 }, (_, i) => entry(i + 1)));
    expect((await collect(client.auditEntries(WS, { cursor: '3' }))).map((e) => e.seq)).toEqual([4, 5]);
    auditPages([]);
    expect(await collect(client.auditEntries(WS))).toEqual([]);
  });

  it('auditEntries fetches a page only when the loop gets to it', async () => {
    auditPages(Array.from({ length: 10 }, (_, i) => entry(i + 1)), 2);
    const iterator = client.auditEntries(WS);
    expect(api.requests).toHaveLength(0);
    for await (const e of iterator) {
      if (e.seq === 2) break;
    }
    expect(api.requests).toHaveLength(1);
  });

  it('auditEntries rejects pages that go back in seq or repeat the cursor (no endless or disordered export)', async () => {
    api.reply((req) => ({
      status: 200,
      body: req.query.get('cursor') === null ? { items: [entry(1), entry(2)], nextCursor: '2' } : { items: [entry(2)], nextCursor: '3' },
    }));
    const backwards = await rejection(collect(client.auditEntries(WS)));
    expect(backwards).toMatchObject({ code: 'invalid_response' });
    expect(backwards.message).toMatch(/seq 2 to 2/);

    api.reply(() => ({ status: 200, body: { items: [], nextCursor: '5' } }));
    expect(await rejection(collect(client.auditEntries(WS, { cursor: '3' })))).toMatchObject({ code: 'invalid_response' });
    expect(api.requests.at(-1)?.rawPath).toBe(`/v1/workspaces/${WS}/audit?cursor=5`);
  });

  it('auditEntries passes on a failure of a later page', async () => {
    api.reply((req) =>
      req.query.get('cursor') === null
        ? { status: 200, body: { items: [entry(1)], nextCursor: '1' } }
        : errorReply(403, 'forbidden', 'The client may not read the audit log.'),
    );
    const seen: number[] = [];
    const err = await rejection(
      (async () => {
        for await (const e of client.auditEntries(WS)) seen.push(e.seq);
      })(),
    );
    expect(err).toMatchObject({ status: 403, code: 'forbidden' });
    expect(seen).toEqual([1]);
  });

  it('verifyAudit returns a broken chain as an answer, not an error', async () => {
    const broken = { ok: false, checked: 41, firstBadEntry: 42, reason: 'link mismatch', head: { seq: 50, link: 'ff' } };
    api.reply(() => ({ status: 200, body: broken }));
    await expect(client.verifyAudit(WS)).resolves.toEqual(broken);
  });
});

describe('KeystrataClient: access errors', () => {
  it.each([
    [401, 'unauthorized'],
    [403, 'forbidden'],
    [404, 'client_not_found'],
  ])('maps %i %s', async (status, code) => {
    api.reply(() => errorReply(status, code, 'no'));
    const err = await rejection(client.getClient(WS, CID));
    expect(err).toMatchObject({ status, code, requestId: 'req-1', retryAfterSeconds: undefined });
  });

  it('carries the Retry-After seconds of a 429 rate_limited', async () => {
    api.reply(() => ({ ...errorReply(429, 'rate_limited', 'Too many requests.'), headers: { 'retry-after': '7' } }));
    const err = await rejection(client.issueJwt());
    expect(err).toMatchObject({ status: 429, code: 'rate_limited', message: 'Too many requests.', retryAfterSeconds: 7 });
  });

  it('carries Retry-After on an answer without a keystrata body too (a proxy)', async () => {
    api.reply(() => ({ status: 503, raw: 'busy', headers: { 'retry-after': '120' } }));
    expect(await rejection(client.listClients(WS))).toMatchObject({ status: 503, code: 'invalid_response', retryAfterSeconds: 120 });
  });

  it('reads Retry-After as delta-seconds or an HTTP date, and ignores anything else', () => {
    const now = Date.parse('2025-01-01T00:00:00.000Z');
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter(' 30 ', now)).toBe(30);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:10 GMT', now)).toBe(10);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:59:00 GMT', now)).toBe(0);
    for (const bad of [null, '', '-1', '1.5', 'soon', '2025-01-01T00:00:10Z', '99999999999999999999']) {
      expect(parseRetryAfter(bad, now)).toBeUndefined();
    }
  });
});
