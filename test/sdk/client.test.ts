import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KeystrataApiError, KeystrataClient, isKeystrataApiError, type KeyStatus, type UpdateObjectRequest } from '../../sdk/index.js';
import { closedPortUrl, errorReply, startFakeApi, type FakeApi } from '../support/fake-api-server.js';

const TOKEN = 'ks_test_token_0123456789abcdef0123456789';
const WS = '0b6c7a52-3f4e-4c1a-9d7e-2f0a1b2c3d4e';
const OBJ = { id: 'f5c1d2e3-0000-4000-8000-000000000001', name: 'db', version: 1, context: { org: 'o1' }, metadata: {}, createdAt: 't', updatedAt: 't' };

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

function last() {
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

describe('KeystrataClient: requests', () => {
  it('sends the bearer token, accept and content-type headers with a JSON body', async () => {
    api.reply(() => ({ status: 201, body: { id: WS, name: 'acme', createdAt: 't', environments: [] } }));
    const ws = await client.createWorkspace({ name: 'acme' });
    expect(ws.id).toBe(WS);
    const req = last();
    expect(req.method).toBe('POST');
    expect(req.rawPath).toBe('/v1/workspaces');
    expect(req.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(req.headers.accept).toBe('application/json');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.json).toEqual({ name: 'acme' });
  });

  it('sends no body and no content-type on GET', async () => {
    await client.getWorkspace(WS);
    expect(last()).toMatchObject({ method: 'GET', rawPath: `/v1/workspaces/${WS}`, body: '' });
    expect(last().headers['content-type']).toBeUndefined();
  });

  it('maps every route to its method and path', async () => {
    const calls: [() => Promise<unknown>, string, string][] = [
      [() => client.listWorkspaces(), 'GET', '/v1/workspaces'],
      [() => client.listWorkspaces({ limit: 5, cursor: 'c/1' }), 'GET', '/v1/workspaces?limit=5&cursor=c%2F1'],
      [() => client.createEnvironment(WS, { name: 'staging' }), 'POST', `/v1/workspaces/${WS}/environments`],
      [() => client.keyStatus(WS, 'production'), 'GET', `/v1/workspaces/${WS}/environments/production/keys`],
      [() => client.getCmk(WS, 'production'), 'GET', `/v1/workspaces/${WS}/environments/production/cmk`],
      [() => client.getObject(WS, 'production', OBJ.id), 'GET', `/v1/workspaces/${WS}/environments/production/objects/${OBJ.id}`],
      [() => client.getObjectByName(WS, 'production', 'db'), 'GET', `/v1/workspaces/${WS}/environments/production/objects?name=db`],
      [() => client.listObjects(WS, 'production', { limit: 10 }), 'GET', `/v1/workspaces/${WS}/environments/production/objects?limit=10`],
      [() => client.listObjectVersions(WS, 'production', OBJ.id), 'GET', `/v1/workspaces/${WS}/environments/production/objects/${OBJ.id}/versions`],
      [() => client.getObjectVersion(WS, 'production', OBJ.id, 2), 'GET', `/v1/workspaces/${WS}/environments/production/objects/${OBJ.id}/versions/2`],
    ];
    for (const [call, method, path] of calls) {
      await call();
      expect({ method: last().method, path: last().rawPath }).toEqual({ method, path });
    }
  });

  it('creates and updates objects with exactly the fields the server accepts', async () => {
    api.reply(() => ({ status: 201, body: OBJ }));
    await client.createObject(WS, 'production', { name: 'db', value: 's3cret', context: { org: 'o1' }, metadata: { team: 'x' } });
    expect(last().json).toEqual({ name: 'db', value: 's3cret', context: { org: 'o1' }, metadata: { team: 'x' } });
    api.reply(() => ({ status: 200, body: { ...OBJ, version: 2 } }));
    const updated = await client.updateObject(WS, 'production', OBJ.id, { value: 'new', expectedVersion: 1 });
    expect(updated.version).toBe(2);
    expect(last()).toMatchObject({ method: 'PUT', rawPath: `/v1/workspaces/${WS}/environments/production/objects/${OBJ.id}` });
    expect(last().json).toEqual({ value: 'new', expectedVersion: 1 });
  });

  it('sends only value and expectedVersion on update, whatever else the request object carries', async () => {
    // PUT …/objects/{id} rejects any other field (docs/api.md). A JavaScript caller, or a spread of a
    // read object, can hand the SDK more than its type allows; none of it may reach the wire.
    api.reply(() => ({ status: 200, body: { ...OBJ, version: 2 } }));
    const read = { ...OBJ, value: 'old', metadata: { team: 'x' } };
    await client.updateObject(WS, 'production', OBJ.id, { ...read, value: 'new', expectedVersion: read.version });
    expect(last().json).toEqual({ value: 'new', expectedVersion: 1 });
    const untyped = { value: 'v', expectedVersion: 1, metadata: { team: 'y' } } as UpdateObjectRequest;
    await client.updateObject(WS, 'production', OBJ.id, untyped);
    expect(Object.keys(last().json as object).sort()).toEqual(['expectedVersion', 'value']);
  });

  it('sends rotateEnvironmentKey with a CMK change only when it is given', async () => {
    const cmk = { id: 'c1', provider: 'platform', state: 'active', createdAt: 't', config: {}, secretFields: [], keyVersion: null, health: null, repack: null };
    api.reply(() => ({ status: 200, body: cmk }));
    await client.putCmk(WS, 'production', { provider: 'platform' });
    expect(last()).toMatchObject({ method: 'PUT', rawPath: `/v1/workspaces/${WS}/environments/production/cmk` });
    expect(last().json).toEqual({ provider: 'platform' });
    await client.putCmk(WS, 'production', { provider: 'uploaded', config: { keyMaterial: 'k' }, rotateEnvironmentKey: true });
    expect(last().json).toEqual({ provider: 'uploaded', config: { keyMaterial: 'k' }, rotateEnvironmentKey: true });
  });

  it('returns the key status exactly as the server sends it', async () => {
    const hourlyKey = { id: 'h1', hourStart: '2026-11-22T14:00:00.000Z', state: 'active' } as const;
    const status = {
      environment: { id: 'e1', name: 'production' },
      cmk: { id: 'c1', provider: 'platform', state: 'active', createdAt: 't' },
      ek: { id: 'k1', state: 'active', createdAt: 't', wrappingKeyVersion: '1' },
      hourly: { periodSeconds: 3600, current: null, latest: { ...hourlyKey, state: 'decrypt-only' } },
      counts: { ek: 1, hourly: 1, job: 0, connection: 0, log: 0, context: 0 },
    } satisfies KeyStatus;
    api.reply(() => ({ status: 200, body: status }));
    const got = await client.keyStatus(WS, 'production');
    expect(got).toEqual(status);
    expect(got.hourly.latest?.state).toBe('decrypt-only');
  });

  it('deletes with DELETE and resolves to undefined on 204', async () => {
    api.reply(() => ({ status: 204 }));
    await expect(client.deleteObject(WS, 'production', OBJ.id)).resolves.toBeUndefined();
    expect(last().method).toBe('DELETE');
  });

  it('checks health without sending the token', async () => {
    api.reply(() => ({ status: 200, body: { status: 'ok', store: 'sqlite' } }));
    await expect(client.health()).resolves.toEqual({ status: 'ok', store: 'sqlite' });
    expect(last().rawPath).toBe('/healthz');
    expect(last().headers.authorization).toBeUndefined();
  });

  it('keeps a path prefix of the base URL and drops trailing slashes', async () => {
    const prefixed = new KeystrataClient({ baseUrl: `${api.url}/kms/`, token: TOKEN });
    await prefixed.getWorkspace(WS);
    expect(last().rawPath).toBe(`/kms/v1/workspaces/${WS}`);
  });
});

describe('KeystrataClient: encoding', () => {
  it('percent-encodes path segments so names cannot address another route', async () => {
    await client.keyStatus('a/b?c#d', 'prod uction/é');
    expect(last().rawPath).toBe('/v1/workspaces/a%2Fb%3Fc%23d/environments/prod%20uction%2F%C3%A9/keys');
  });

  it('encodes the name query of getObjectByName', async () => {
    await client.getObjectByName(WS, 'production', 'a&limit=1 é');
    expect(last().query.get('name')).toBe('a&limit=1 é');
    expect([...last().query.keys()]).toEqual(['name']);
  });

  it.each(['', '.', '..'])('refuses the path segment %j before sending anything', async (segment) => {
    const err = await rejection(client.getWorkspace(segment));
    expect(err).toMatchObject({ status: 0, code: 'invalid_request' });
    expect(api.requests).toHaveLength(0);
  });

  it('refuses an empty object name and a non-positive version before sending', async () => {
    expect(await rejection(client.getObjectByName(WS, 'production', ''))).toMatchObject({ code: 'invalid_request', field: 'name' });
    expect(await rejection(client.getObjectVersion(WS, 'production', OBJ.id, 0))).toMatchObject({ code: 'invalid_request', field: 'version' });
    expect(api.requests).toHaveLength(0);
  });

  it('sends string plaintexts as base64 of their UTF-8 bytes', async () => {
    api.reply(() => ({ status: 200, body: { ciphertext: 'ks1:abc', keyId: 'k1' } }));
    const result = await client.encrypt(WS, 'production', { scope: { type: 'job', id: 'job_1' }, plaintext: 'héllo' });
    expect(result).toEqual({ ciphertext: 'ks1:abc', keyId: 'k1' });
    expect(last().json).toEqual({ scope: { type: 'job', id: 'job_1' }, plaintext: Buffer.from('héllo', 'utf8').toString('base64') });
  });

  it('sends binary plaintexts byte for byte, large ones included', async () => {
    const bytes = new Uint8Array(200_000).map((_, i) => (i * 7) & 0xff);
    await client.encrypt(WS, 'production', { scope: { type: 'event', id: 'e' }, plaintext: bytes });
    const sent = (last().json as { plaintext: string }).plaintext;
    expect(Buffer.from(sent, 'base64').equals(Buffer.from(bytes))).toBe(true);
  });

  it('decodes the decrypted plaintext into bytes and sends scope only when given', async () => {
    const plain = Buffer.from([0, 255, 1, 128]);
    api.reply(() => ({ status: 200, body: { plaintext: plain.toString('base64'), scope: { type: 'log', id: 'l' } } }));
    const result = await client.decrypt(WS, 'production', { ciphertext: 'ks1:xyz' });
    expect(result.plaintext).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(result.plaintext).equals(plain)).toBe(true);
    expect(result.scope).toEqual({ type: 'log', id: 'l' });
    expect(last().json).toEqual({ ciphertext: 'ks1:xyz' });
    await client.decrypt(WS, 'production', { ciphertext: 'ks1:xyz', scope: { type: 'log', id: 'l' } });
    expect(last().json).toEqual({ ciphertext: 'ks1:xyz', scope: { type: 'log', id: 'l' } });
  });
});

describe('KeystrataClient: errors', () => {
  it('parses the error body: status, code, message, requestId, field, details', async () => {
    api.reply(() => errorReply(409, 'version_conflict', 'The object has moved on.', { field: 'expectedVersion', details: { currentVersion: 4 } }));
    const err = await rejection(client.updateObject(WS, 'production', OBJ.id, { value: 'v', expectedVersion: 3 }));
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({
      name: 'KeystrataApiError',
      status: 409,
      code: 'version_conflict',
      message: 'The object has moved on.',
      requestId: 'req-1',
      field: 'expectedVersion',
      details: { currentVersion: 4 },
    });
  });

  it('reports a non-keystrata error answer as invalid_response with its status', async () => {
    api.reply(() => ({ status: 502, raw: '<html>bad gateway</html>', headers: { 'x-request-id': 'proxy-9' } }));
    const err = await rejection(client.getWorkspace(WS));
    expect(err).toMatchObject({ status: 502, code: 'invalid_response', requestId: 'proxy-9' });
  });

  it('reports a 2xx answer that is not JSON as invalid_response', async () => {
    api.reply(() => ({ status: 200, raw: 'not json' }));
    expect(await rejection(client.getWorkspace(WS))).toMatchObject({ status: 200, code: 'invalid_response' });
  });

  it('does not follow redirects (the token must not be replayed elsewhere)', async () => {
    api.reply((req) => (req.rawPath === '/elsewhere' ? { status: 200, body: {} } : { status: 307, headers: { location: '/elsewhere' } }));
    const err = await rejection(client.getWorkspace(WS));
    expect(err).toMatchObject({ status: 307, code: 'invalid_response' });
    expect(api.requests.map((r) => r.rawPath)).toEqual([`/v1/workspaces/${WS}`]);
  });

  it('turns a refused connection into network_error with status 0, without the token', async () => {
    const offline = new KeystrataClient({ baseUrl: await closedPortUrl(), token: TOKEN });
    const err = await rejection(offline.listWorkspaces());
    expect(err).toMatchObject({ status: 0, code: 'network_error', requestId: undefined });
    expect(err.message).toMatch(/ECONNREFUSED/);
    expect(err.message).not.toContain(TOKEN);
  });

  it('uses an injected fetch and redacts the token from any message', async () => {
    const leaky = new KeystrataClient({
      baseUrl: 'http://kms.invalid',
      token: TOKEN,
      fetch: (_url, init) => Promise.reject(new Error(`boom ${JSON.stringify(init.headers)}`)),
    });
    const err = await rejection(leaky.getWorkspace(WS));
    expect(err.code).toBe('network_error');
    expect(err.message).toContain('[redacted]');
    expect(err.message).not.toContain(TOKEN);
    const authed = new KeystrataClient({
      baseUrl: 'http://kms.invalid',
      token: TOKEN,
      fetch: () => Promise.resolve(new Response(JSON.stringify({ error: { code: 'unauthorized', message: `bad token ${TOKEN}`, requestId: 'r' } }), { status: 401 })),
    });
    const err2 = await rejection(authed.getWorkspace(WS));
    expect(err2).toMatchObject({ status: 401, code: 'unauthorized' });
    expect(err2.message).not.toContain(TOKEN);
  });

  it('validates its options without echoing the token', () => {
    expect(() => new KeystrataClient({ baseUrl: 'not a url', token: TOKEN })).toThrow(TypeError);
    expect(() => new KeystrataClient({ baseUrl: 'ftp://x', token: TOKEN })).toThrow(/protocol/);
    expect(() => new KeystrataClient({ baseUrl: 'http://u:p@x', token: TOKEN })).toThrow(/user name/);
    expect(() => new KeystrataClient({ baseUrl: 'http://x', token: '' })).toThrow(/non-empty/);
    const bad = `${TOKEN}\r\nx-evil: 1`;
    expect(() => new KeystrataClient({ baseUrl: 'http://x', token: bad })).toThrow(TypeError);
    try {
      new KeystrataClient({ baseUrl: 'http://x', token: bad });
    } catch (err) {
      expect(String(err)).not.toContain(TOKEN);
    }
  });
});
