import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ApiClient, AuditEntry } from '../../sdk/index.js';
import { errorReply, startFakeApi, type FakeApi, type FakeReply, type RecordedRequest } from '../support/fake-api-server.js';
import { run, type RunOptions } from './run.js';

// The access-control verbs (client, jwt, audit) against the fake API, run in-process.

const TOKEN = 'ks_cli_token_0123456789abcdef0123';
const WS = '0b6c7a52-3f4e-4c1a-9d7e-2f0a1b2c3d4e';
const CID = 'c1a2b3c4-0000-4000-8000-000000000001';
const CLIENTS = `/v1/workspaces/${WS}/clients`;
const AUDIT = `/v1/workspaces/${WS}/audit`;
const NEW_TOKEN = 'ks_issued_Zx9-abcdefghijklmnopqrstuvwxyz012345';
const CLIENT: ApiClient = {
  id: CID,
  workspaceId: WS,
  name: 'billing',
  role: 'app',
  environments: ['production', 'staging'],
  allowedCidrs: ['10.0.0.0/8'],
  tokenTtlSeconds: 86_400,
  rateLimitPerSecond: 50,
  disabled: false,
  createdAt: '2025-01-01T00:00:00.000Z',
  updatedAt: '2025-01-01T00:00:00.000Z',
  usage: { requests: 12, failures: 1, lastUsedAt: '2025-01-03T10:00:00.000Z', lastUsedIp: '10.1.2.3' },
  tokens: [{ id: 'tok-1', createdAt: '2025-01-01T00:00:00.000Z', expiresAt: '2025-01-02T00:00:00.000Z' }],
};

function entry(seq: number): AuditEntry {
  return {
    seq,
    id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
    at: '2025-01-01T00:00:00.000Z',
    environmentId: null,
    link: seq.toString(16).padStart(64, '0'),
    actor: { type: 'client', id: CID, name: 'billing', role: 'app' },
    action: 'data.encrypt',
    target: { scope: `job:${seq}` },
    sourceIp: '10.1.2.3',
    requestId: `req-${seq}`,
    outcome: 'success',
    status: 200,
  };
}

let api: FakeApi;
let dir: string;

beforeAll(async () => {
  api = await startFakeApi();
  dir = await mkdtemp(join(tmpdir(), 'keystrata-cli-access-'));
});
afterAll(async () => {
  await api.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  api.requests.length = 0;
  api.reply(() => ({ status: 500 }));
});

function cli(argv: string[], options: RunOptions = {}) {
  return run(argv, { ...options, env: { KEYSTRATA_URL: api.url, KEYSTRATA_TOKEN: TOKEN, ...options.env } });
}

function routes(table: Record<string, (req: RecordedRequest) => FakeReply>): void {
  api.reply((req) => {
    const handler = table[`${req.method} ${req.rawPath}`];
    return handler === undefined ? errorReply(404, 'route_not_found', `no fake for ${req.method} ${req.rawPath}`) : handler(req);
  });
}

/** Serves `entries` as the audit listing does: pages after the cursor (a seq), nextCursor = last seq of the page. */
function auditLog(entries: readonly AuditEntry[], fail?: (req: RecordedRequest) => FakeReply | undefined): void {
  api.reply((req) => {
    if (req.pathname !== AUDIT) return errorReply(404, 'route_not_found', req.rawPath);
    const failure = fail?.(req);
    if (failure !== undefined) return failure;
    const after = Number(req.query.get('cursor') ?? '0');
    const items = entries.filter((e) => e.seq > after).slice(0, Number(req.query.get('limit') ?? '100'));
    const last = items.at(-1)?.seq;
    return { status: 200, body: { items, nextCursor: last !== undefined && entries.some((e) => e.seq > last) ? String(last) : null } };
  });
}

describe('keystrata client create', () => {
  const created = { client: CLIENT, token: NEW_TOKEN, tokenId: 'tok-1', expiresAt: '2025-01-02T00:00:00.000Z' };

  it('sends every setting and prints the client, then the token once on a line of its own', async () => {
    routes({ [`POST ${CLIENTS}`]: () => ({ status: 201, body: created }) });
    const result = await cli([
      'client', 'create', WS, '--name', 'billing', '--role', 'app', '--env', 'production', '--env', 'staging',
      '--cidr', '10.0.0.0/8', '--token-ttl', '86400', '--rate-limit', '50',
    ]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(api.requests[0]?.json).toEqual({
      name: 'billing',
      role: 'app',
      environments: ['production', 'staging'],
      allowedCidrs: ['10.0.0.0/8'],
      tokenTtlSeconds: 86_400,
      rateLimitPerSecond: 50,
    });
    const lines = result.stdout.split('\n');
    expect(lines).toContain(NEW_TOKEN);
    expect(result.stdout.split(NEW_TOKEN)).toHaveLength(2);
    expect(result.stdout).toMatch(/^id: +c1a2b3c4-0000-4000-8000-000000000001$/m);
    expect(result.stdout).toMatch(/^environments: +production, staging$/m);
    expect(result.stdout).toMatch(/^rate limit: +50\/s$/m);
    expect(result.stdout).toContain('API token of client "billing" (id tok-1, expires 2025-01-02T00:00:00.000Z):\n');
    expect(result.stdout).toMatch(/^Store this token now: it is not shown again/m);
  });

  it('sends only name and role when nothing else is given', async () => {
    routes({ [`POST ${CLIENTS}`]: () => ({ status: 201, body: created }) });
    expect((await cli(['client', 'create', WS, '--name', 'ops', '--role', 'operator'])).code).toBe(0);
    expect(api.requests[0]?.json).toEqual({ name: 'ops', role: 'operator' });
  });

  it('--output json prints the whole answer (token included) and the reminder on stderr', async () => {
    routes({ [`POST ${CLIENTS}`]: () => ({ status: 201, body: created }) });
    const result = await cli(['client', 'create', WS, '--name', 'billing', '--role', 'app', '-o', 'json']);
    expect(JSON.parse(result.stdout)).toEqual(created);
    expect(result.stderr).toMatch(/not shown again/);
  });

  it('passes on the server refusing a name that exists', async () => {
    api.reply(() => errorReply(409, 'already_exists', 'An API client named "billing" already exists in this workspace.'));
    const result = await cli(['client', 'create', WS, '--name', 'billing', '--role', 'app']);
    expect(result).toMatchObject({ code: 1, stdout: '' });
    expect(result.stderr).toMatch(/^error: already_exists:/);
  });
});

describe('keystrata client list, show, update, delete', () => {
  it('list passes paging, prints JSON by default and a table in text mode', async () => {
    const page = { items: [CLIENT, { ...CLIENT, id: 'c2', name: 'ops', role: 'operator', disabled: true, usage: { ...CLIENT.usage, lastUsedAt: null } }], nextCursor: 'n2' };
    routes({ [`GET ${CLIENTS}?limit=2&cursor=abc`]: () => ({ status: 200, body: page }) });
    expect(JSON.parse((await cli(['client', 'list', WS, '--limit', '2', '--cursor', 'abc'])).stdout)).toEqual(page);
    const text = await cli(['client', 'list', WS, '--limit', '2', '--cursor', 'abc', '-o', 'text']);
    const [header, first, second] = text.stdout.split('\n');
    expect(header).toMatch(/^ID +NAME +ROLE +ENVIRONMENTS +STATUS +REQUESTS +LAST USED$/);
    expect(first).toMatch(new RegExp(`^${CID} +billing +app +production,staging +enabled +12 +2025-01-03T10:00:00.000Z$`));
    expect(second).toMatch(/^c2 +ops +operator +production,staging +disabled +12 +never$/);
    expect(text.stderr).toContain('--cursor n2');
  });

  it('show prints usage (requests, failures, last used at and from) and each token with its expiry', async () => {
    const twoTokens = { ...CLIENT, tokens: [...CLIENT.tokens, { id: 'tok-2', createdAt: '2025-01-01T12:00:00.000Z', expiresAt: '2025-01-02T12:00:00.000Z' }] };
    routes({ [`GET ${CLIENTS}/${CID}`]: () => ({ status: 200, body: twoTokens }) });
    const result = await cli(['client', 'show', WS, CID, '-o', 'text']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^requests: +12$/m);
    expect(result.stdout).toMatch(/^failures: +1$/m);
    expect(result.stdout).toMatch(/^last used: +2025-01-03T10:00:00.000Z from 10.1.2.3$/m);
    expect(result.stdout).toMatch(/^token: +tok-1 expires 2025-01-02T00:00:00.000Z \(created 2025-01-01T00:00:00.000Z\)$/m);
    expect(result.stdout).toMatch(/^token: +tok-2 expires 2025-01-02T12:00:00.000Z/m);
    expect(JSON.parse((await cli(['client', 'show', WS, CID])).stdout)).toEqual(twoTokens);
  });

  it('show of a client never used, with every environment, the default rate limit and no working token', async () => {
    const idle = { ...CLIENT, environments: ['*'], rateLimitPerSecond: null, usage: { requests: 0, failures: 0, lastUsedAt: null, lastUsedIp: null }, tokens: [] };
    routes({ [`GET ${CLIENTS}/${CID}`]: () => ({ status: 200, body: idle }) });
    const result = await cli(['client', 'show', WS, CID, '-o', 'text']);
    expect(result.stdout).toMatch(/^environments: +\* \(every environment\)$/m);
    expect(result.stdout).toMatch(/^rate limit: +server default$/m);
    expect(result.stdout).toMatch(/^last used: +never$/m);
    expect(result.stdout).toMatch(/^tokens: +\(none working\)$/m);
  });

  it('show reports client_not_found', async () => {
    api.reply(() => errorReply(404, 'client_not_found', `No API client ${CID} in this workspace.`));
    expect(await cli(['client', 'show', WS, CID])).toMatchObject({ code: 1, stdout: '', stderr: `error: client_not_found: No API client ${CID} in this workspace.\n` });
  });

  it('update sends exactly what was given', async () => {
    routes({ [`PATCH ${CLIENTS}/${CID}`]: (req) => ({ status: 200, body: { ...CLIENT, ...(req.json as object) } }) });
    const cases: [string[], unknown][] = [
      [['--disable'], { disabled: true }],
      [['--enable'], { disabled: false }],
      [['--rate-limit', 'default'], { rateLimitPerSecond: null }],
      [['--rate-limit', '1000000'], { rateLimitPerSecond: 1_000_000 }],
      [['--name', 'billing-2', '--role', 'auditor'], { name: 'billing-2', role: 'auditor' }],
      [['--env', '*', '--cidr', '10.0.0.0/8', '--cidr', '::1/128', '--token-ttl', '300'], { environments: ['*'], allowedCidrs: ['10.0.0.0/8', '::1/128'], tokenTtlSeconds: 300 }],
    ];
    for (const [flags, body] of cases) {
      const result = await cli(['client', 'update', WS, CID, ...flags]);
      expect(result.code).toBe(0);
      expect(api.requests.at(-1)).toMatchObject({ method: 'PATCH', rawPath: `${CLIENTS}/${CID}` });
      expect(api.requests.at(-1)?.json).toEqual(body);
    }
    const text = await cli(['client', 'update', WS, CID, '--disable', '-o', 'text']);
    expect(text.stdout).toMatch(/^status: +disabled$/m);
  });

  it('update with nothing to change is a usage error, sent nowhere', async () => {
    const result = await cli(['client', 'update', WS, CID]);
    expect(result).toMatchObject({ code: 2, stdout: '' });
    expect(result.stderr).toMatch(/nothing to update/);
    expect(api.requests).toHaveLength(0);
  });

  it('update passes on forbidden (a client disabling itself)', async () => {
    api.reply(() => errorReply(403, 'forbidden', 'A client cannot disable itself or drop its own admin role; use another admin client or the admin token.'));
    const result = await cli(['client', 'update', WS, CID, '--disable']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: forbidden: A client cannot disable itself/);
  });

  it('delete sends DELETE and confirms', async () => {
    routes({ [`DELETE ${CLIENTS}/${CID}`]: () => ({ status: 204 }) });
    expect(JSON.parse((await cli(['client', 'delete', WS, CID])).stdout)).toEqual({ deleted: true, id: CID });
    expect((await cli(['client', 'delete', WS, CID, '-o', 'text'])).stdout).toBe(`deleted client ${CID}\n`);
    expect(api.requests.map((r) => r.method)).toEqual(['DELETE', 'DELETE']);
  });
});

describe('keystrata client rotate-token', () => {
  const rotated = { token: NEW_TOKEN, tokenId: 'tok-2', expiresAt: '2025-02-01T00:00:00.000Z', previousTokensExpireBy: '2025-01-01T01:00:00.000Z' };

  it('sends the grace period and prints the new token on its own line, with when the old ones stop', async () => {
    routes({ [`POST ${CLIENTS}/${CID}/tokens`]: () => ({ status: 201, body: rotated }) });
    const result = await cli(['client', 'rotate-token', WS, CID, '--grace', '3600']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(api.requests[0]?.json).toEqual({ graceSeconds: 3600 });
    expect(result.stdout.split('\n')).toContain(NEW_TOKEN);
    expect(result.stdout).toMatch(/^Store this token now: it is not shown again/m);
    expect(result.stdout).toContain('The previous tokens stop working at 2025-01-01T01:00:00.000Z.');
  });

  it('sends an empty object without --grace (the server default), and --grace 0', async () => {
    routes({ [`POST ${CLIENTS}/${CID}/tokens`]: () => ({ status: 201, body: rotated }) });
    await cli(['client', 'rotate-token', WS, CID]);
    await cli(['client', 'rotate-token', WS, CID, '--grace', '0']);
    expect(api.requests.map((r) => r.body)).toEqual(['{}', '{"graceSeconds":0}']);
  });

  it('--output json prints the answer', async () => {
    routes({ [`POST ${CLIENTS}/${CID}/tokens`]: () => ({ status: 201, body: rotated }) });
    const result = await cli(['client', 'rotate-token', WS, CID, '-o', 'json']);
    expect(JSON.parse(result.stdout)).toEqual(rotated);
    expect(result.stderr).toMatch(/not shown again/);
  });
});

describe('keystrata jwt', () => {
  const jwt = { token: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjMSJ9.c2ln', tokenType: 'Bearer', expiresAt: '2025-01-01T00:15:00.000Z' };

  it('prints the JWT alone, for TOKEN=$(keystrata jwt), authenticated with the configured token', async () => {
    routes({ 'POST /v1/auth/token': () => ({ status: 200, body: jwt }) });
    const result = await cli(['jwt']);
    expect(result).toEqual({ code: 0, stdout: `${jwt.token}\n`, stderr: '', bytes: Buffer.alloc(0) });
    expect(api.requests[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(api.requests[0]?.body).toBe('{}');
  });

  it('sends --ttl and prints JSON on request', async () => {
    routes({ 'POST /v1/auth/token': () => ({ status: 200, body: jwt }) });
    const result = await cli(['jwt', '--ttl', '900', '-o', 'json']);
    expect(api.requests[0]?.json).toEqual({ ttlSeconds: 900 });
    expect(JSON.parse(result.stdout)).toEqual(jwt);
  });

  it('shows when to retry a rate-limited call', async () => {
    api.reply(() => ({ ...errorReply(429, 'rate_limited', 'Too many requests for this client.'), headers: { 'retry-after': '7' } }));
    const result = await cli(['jwt']);
    expect(result).toMatchObject({ code: 1, stdout: '' });
    expect(result.stderr).toBe('error: rate_limited: Too many requests for this client.\nretry after: 7s\n');
  });

  it('passes on the refusal of a token that cannot be exchanged (the admin token, a JWT), printing nothing on stdout', async () => {
    const message = 'JWTs are issued to API clients in exchange for their API token (not for a JWT or the admin token).';
    api.reply(() => errorReply(403, 'forbidden', message));
    expect(await cli(['jwt'])).toMatchObject({ code: 1, stdout: '', stderr: `error: forbidden: ${message}\n` });
  });
});

describe('keystrata audit list and verify', () => {
  it('list passes paging and prints JSON, or a table with unreadable entries marked', async () => {
    const unreadable: AuditEntry = { seq: 5, id: 'e5', at: '2025-01-01T00:00:05.000Z', environmentId: 'env-1', link: 'ab', unreadable: 'cmk_unavailable' };
    const failed: AuditEntry = { ...entry(6), actor: { type: 'admin', id: null, name: null, role: null }, action: 'client.delete', outcome: 'failure', status: 404, errorCode: 'client_not_found', target: { clientId: CID } };
    const page = { items: [entry(4), unreadable, failed], nextCursor: '6' };
    routes({ [`GET ${AUDIT}?limit=3&cursor=3`]: () => ({ status: 200, body: page }) });
    expect(JSON.parse((await cli(['audit', 'list', WS, '--limit', '3', '--cursor', '3'])).stdout)).toEqual(page);
    const text = await cli(['audit', 'list', WS, '--limit', '3', '--cursor', '3', '-o', 'text']);
    const lines = text.stdout.split('\n');
    expect(lines[0]).toMatch(/^SEQ +AT +ACTOR +ACTION +OUTCOME +SOURCE +TARGET$/);
    expect(lines[1]).toMatch(/^4 +2025-01-01T00:00:00.000Z +billing \(app\) +data.encrypt +success 200 +10.1.2.3 +scope=job:4$/);
    expect(lines[2]).toMatch(/^5 +\S+ +- +\(unreadable: cmk_unavailable\) +- +- +-$/);
    expect(lines[3]).toMatch(new RegExp(`^6 +\\S+ +admin +client.delete +failure 404 client_not_found +10.1.2.3 +clientId=${CID}$`));
    expect(text.stderr).toContain('--cursor 6');
  });

  it('verify prints ok, checked and head, exit 0', async () => {
    routes({ [`GET ${AUDIT}/verify`]: () => ({ status: 200, body: { ok: true, checked: 50, head: { seq: 50, link: 'c0ffee' } } }) });
    const result = await cli(['audit', 'verify', WS]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toBe('ok:      yes\nchecked: 50 entries\nhead:    seq 50, link c0ffee\n');
  });

  it('verify of a broken chain prints the first bad entry and reason, and exits 3', async () => {
    const broken = { ok: false, checked: 41, firstBadEntry: 42, reason: 'the link does not match the entry', head: { seq: 50, link: 'c0ffee' } };
    routes({ [`GET ${AUDIT}/verify`]: () => ({ status: 200, body: broken }) });
    const result = await cli(['audit', 'verify', WS]);
    expect(result.code).toBe(3);
    expect(result.stdout).toMatch(/^ok: +no$/m);
    expect(result.stdout).toMatch(/^first bad entry: +seq 42$/m);
    expect(result.stdout).toMatch(/^reason: +the link does not match the entry$/m);
    expect(result.stderr).toBe(`error: audit_chain_broken: the audit log of ${WS} does not verify at seq 42: the link does not match the entry\n`);
    const json = await cli(['audit', 'verify', WS, '-o', 'json']);
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).toEqual(broken);
  });

  it('verify that cannot be made exits 1, not 3', async () => {
    api.reply(() => errorReply(403, 'forbidden', 'A client with role "app" may not do this (audit.read).'));
    expect((await cli(['audit', 'verify', WS])).code).toBe(1);
  });
});

describe('keystrata audit export', () => {
  // 2,345 entries: three pages of 1,000, and several output chunks.
  const entries = Array.from({ length: 2345 }, (_, i) => entry(i + 1));

  function parseLines(text: string): unknown[] {
    expect(text.endsWith('\n')).toBe(true);
    return text.slice(0, -1).split('\n').map((line) => JSON.parse(line) as unknown);
  }

  it('writes every entry as one JSON line, in seq order, across pages', async () => {
    auditLog(entries);
    const result = await cli(['audit', 'export', WS]);
    expect(result.code).toBe(0);
    expect(parseLines(result.stdout)).toEqual(entries);
    expect(api.requests.map((r) => r.rawPath)).toEqual([`${AUDIT}?limit=1000`, `${AUDIT}?limit=1000&cursor=1000`, `${AUDIT}?limit=1000&cursor=2000`]);
    expect(result.stderr).toBe('exported 2345 audit entries\n');
  });

  it('exports an empty log as nothing', async () => {
    auditLog([]);
    expect(await cli(['audit', 'export', WS])).toMatchObject({ code: 0, stdout: '', stderr: 'exported 0 audit entries\n' });
  });

  it('--file creates a new file with mode 0600', async () => {
    auditLog(entries);
    const file = join(dir, 'audit.jsonl');
    const result = await cli(['audit', 'export', WS, '--file', file]);
    expect(result).toMatchObject({ code: 0, stdout: '', stderr: `exported 2345 audit entries to ${file}\n` });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(parseLines(await readFile(file, 'utf8'))).toEqual(entries);
  });

  it('--file refuses to overwrite an existing file, before asking the server', async () => {
    const file = join(dir, 'exists.jsonl');
    await writeFile(file, 'earlier export\n');
    auditLog(entries);
    const result = await cli(['audit', 'export', WS, '--file', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: file_exists: .*exists\.jsonl already exists/);
    expect(await readFile(file, 'utf8')).toBe('earlier export\n');
    expect(api.requests).toHaveLength(0);
  });

  it('a failure part-way exits 1 and removes the partial --file', async () => {
    auditLog(entries, (req) => (req.query.get('cursor') === '2000' ? errorReply(503, 'store_unavailable', 'The store is unavailable.') : undefined));
    const file = join(dir, 'partial.jsonl');
    const result = await cli(['audit', 'export', WS, '--file', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: store_unavailable:/);
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a failure part-way to standard output exits 1 after every complete entry received', async () => {
    auditLog(entries, (req) => (req.query.get('cursor') === '2000' ? errorReply(403, 'forbidden', 'no') : undefined));
    const result = await cli(['audit', 'export', WS]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('error: forbidden: no\n');
    expect(parseLines(result.stdout)).toEqual(entries.slice(0, 2000));
  });
});
