import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { closedPortUrl, errorReply, startFakeApi, type FakeApi, type RecordedRequest } from '../support/fake-api-server.js';
import type { KeyStatus } from '../../sdk/index.js';
import { runCli } from '../../src/cli/main.js';
import { run, type RunOptions } from './run.js';

const TOKEN = 'ks_cli_token_0123456789abcdef0123';
const WS = '0b6c7a52-3f4e-4c1a-9d7e-2f0a1b2c3d4e';
const ID = 'f5c1d2e3-0000-4000-8000-000000000001';
const ENVS = `/v1/workspaces/${WS}/environments/production`;
const OBJECT = { id: ID, name: 'db', version: 3, context: { org: 'o1' }, metadata: {}, createdAt: '2025-01-01T00:00:00Z', updatedAt: '2025-01-02T00:00:00Z' };
const WORKSPACE = { id: WS, name: 'acme', createdAt: '2025-01-01T00:00:00Z', environments: [{ id: 'e1', name: 'production', createdAt: '2025-01-01T00:00:00Z' }] };

let api: FakeApi;
let dir: string;

beforeAll(async () => {
  api = await startFakeApi();
  dir = await mkdtemp(join(tmpdir(), 'keystrata-cli-'));
});
afterAll(async () => {
  await api.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  api.requests.length = 0;
  api.reply(() => ({ status: 500 }));
});

/** Runs against the fake API, with the token in the environment as a user would set it. */
function cli(argv: string[], options: RunOptions = {}) {
  return run(argv, { ...options, env: { KEYSTRATA_URL: api.url, KEYSTRATA_TOKEN: TOKEN, ...options.env } });
}

function routes(table: Record<string, (req: RecordedRequest) => { status: number; body?: unknown }>): void {
  api.reply((req) => {
    const handler = table[`${req.method} ${req.rawPath}`];
    return handler === undefined ? errorReply(404, 'route_not_found', `no fake for ${req.method} ${req.rawPath}`) : handler(req);
  });
}

function calls(): string[] {
  return api.requests.map((r) => `${r.method} ${r.rawPath}`);
}

describe('connection options', () => {
  it('uses --url and --token over the environment, and sends the token as a bearer token', async () => {
    routes({ 'GET /v1/workspaces': () => ({ status: 200, body: { items: [], nextCursor: null } }) });
    const result = await run(['workspace', 'list', '--url', api.url, '--token', 'tok_flag_0123456789'], {
      env: { KEYSTRATA_URL: 'http://127.0.0.1:9', KEYSTRATA_TOKEN: TOKEN },
    });
    expect(result.code).toBe(0);
    expect(api.requests[0]?.headers.authorization).toBe('Bearer tok_flag_0123456789');
  });

  it('reports a network failure as network_error, exit 1, without the token', async () => {
    const result = await run(['workspace', 'list', '--url', await closedPortUrl(), '--token', TOKEN]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: network_error: Could not reach keystrata/);
    expect(result.stderr + result.stdout).not.toContain(TOKEN);
  });

  it('prints API errors as error: <code>: <message> (field), with details, exit 1', async () => {
    api.reply(() => errorReply(400, 'invalid_request', 'The name is too long.', { field: 'name', details: { max: 64 } }));
    const result = await cli(['workspace', 'create', 'x'.repeat(100)]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('error: invalid_request: The name is too long. (field: name)\ndetails: {"max":64}\n');
    expect(result.stdout).toBe('');
  });

  it('scrubs the token from anything written to stderr', async () => {
    api.reply(() => errorReply(401, 'unauthorized', `token ${TOKEN} is unknown`));
    const result = await run(['workspace', 'list', '--url', api.url, `--token=${TOKEN}`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('error: unauthorized:');
    expect(result.stderr).not.toContain(TOKEN);
  });
});

describe('workspace, env and keys', () => {
  it('workspace create posts the name and prints JSON', async () => {
    routes({ 'POST /v1/workspaces': () => ({ status: 201, body: WORKSPACE }) });
    const result = await cli(['workspace', 'create', 'acme']);
    expect(result.code).toBe(0);
    expect(api.requests[0]?.json).toEqual({ name: 'acme' });
    expect(JSON.parse(result.stdout)).toEqual(WORKSPACE);
  });

  it('workspace get --output text prints fields', async () => {
    routes({ [`GET /v1/workspaces/${WS}`]: () => ({ status: 200, body: WORKSPACE }) });
    const result = await cli(['workspace', 'get', WS, '-o', 'text']);
    expect(result.stdout).toContain(`id:           ${WS}`);
    expect(result.stdout).toContain('environments: production (e1)');
  });

  it('workspace list passes paging and prints a table, with the next cursor on stderr', async () => {
    routes({
      'GET /v1/workspaces?limit=2&cursor=abc': () => ({ status: 200, body: { items: [WORKSPACE], nextCursor: 'def' } }),
    });
    const result = await cli(['workspace', 'list', '--limit', '2', '--cursor', 'abc', '--output', 'text']);
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+CREATED$/);
    expect(result.stdout).toContain(`${WS}  acme  2025-01-01T00:00:00Z`);
    expect(result.stderr).toContain('--cursor def');
  });

  it('env create encodes the workspace and posts the name', async () => {
    routes({ 'POST /v1/workspaces/a%2Fb/environments': () => ({ status: 201, body: { id: 'e2', name: 'staging', createdAt: 't' } }) });
    const result = await cli(['env', 'create', 'a/b', 'staging']);
    expect(result.code).toBe(0);
    expect(api.requests[0]?.json).toEqual({ name: 'staging' });
    expect(JSON.parse(result.stdout)).toMatchObject({ name: 'staging' });
  });

  it('keys status and keys cmk read the environment', async () => {
    // The server's KeyStatusResponse: no hourly key in this period yet, an older one that is now decrypt-only.
    const status = {
      environment: { id: 'e1', name: 'production' },
      cmk: { id: 'c1', provider: 'platform', state: 'active', createdAt: 't' },
      ek: { id: 'k1', state: 'active', createdAt: 't', wrappingKeyVersion: '1' },
      hourly: { periodSeconds: 3600, current: null, latest: { id: 'h0', hourStart: '2025-01-01T13:00:00.000Z', state: 'decrypt-only' } },
      counts: { ek: 1, hourly: 1, job: 0, connection: 0, log: 0, context: 0 },
    } satisfies KeyStatus;
    routes({
      [`GET ${ENVS}/keys`]: () => ({ status: 200, body: status }),
      [`GET ${ENVS}/cmk`]: () => ({ status: 200, body: status.cmk }),
    });
    expect(JSON.parse((await cli(['keys', 'status', WS, 'production'])).stdout)).toEqual(status);
    const text = await cli(['keys', 'status', WS, 'production', '-o', 'text']);
    expect(text.stdout).toMatch(/^hourly key: +\(none in this period yet\)$/m);
    expect(text.stdout).toMatch(/^latest hourly: +h0 decrypt-only from 2025-01-01T13:00:00.000Z$/m);
    expect(JSON.parse((await cli(['keys', 'cmk', WS, 'production'])).stdout)).toEqual(status.cmk);
  });
});

describe('encrypt and decrypt', () => {
  const encrypted = { ciphertext: 'ks1:AAAA', keyId: 'h1' };

  it('sends --context pairs with encrypt and decrypt', async () => {
    routes({
      [`POST ${ENVS}/encrypt`]: () => ({ status: 200, body: encrypted }),
      [`POST ${ENVS}/decrypt`]: () => ({ status: 200, body: { plaintext: Buffer.from('hi').toString('base64'), scope: { type: 'job', id: 'j' } } }),
    });
    await cli(['encrypt', WS, 'production', '--scope', 'job:j', '--text', 'hi', '--context', 'org=o1', '--context', 'region=eu']);
    await cli(['decrypt', WS, 'production', 'ks1:AAAA', '--context', 'org=o1', '--context', 'region=eu']);
    expect(api.requests[0]?.json).toMatchObject({ context: { org: 'o1', region: 'eu' } });
    expect(api.requests[1]?.json).toEqual({ ciphertext: 'ks1:AAAA', context: { org: 'o1', region: 'eu' } });
  });

  it('encrypts --text and prints only the ciphertext', async () => {
    routes({ [`POST ${ENVS}/encrypt`]: () => ({ status: 200, body: encrypted }) });
    const result = await cli(['encrypt', WS, 'production', '--scope', 'job:job:42', '--text', 'héllo']);
    expect(result).toMatchObject({ code: 0, stdout: 'ks1:AAAA\n' });
    expect(api.requests[0]?.json).toEqual({ scope: { type: 'job', id: 'job:42' }, plaintext: Buffer.from('héllo').toString('base64') });
  });

  it('encrypts a file byte for byte, and stdin, and prints JSON on request', async () => {
    routes({ [`POST ${ENVS}/encrypt`]: () => ({ status: 200, body: encrypted }) });
    const bytes = Buffer.from([0, 1, 254, 255]);
    const file = join(dir, 'blob.bin');
    await writeFile(file, bytes);
    await cli(['encrypt', WS, 'production', '--scope', 'event:e1', '--file', file]);
    expect(api.requests[0]?.json).toMatchObject({ plaintext: bytes.toString('base64') });
    const result = await cli(['encrypt', WS, 'production', '--scope', 'log:l1', '--output', 'json'], { stdin: 'from stdin' });
    expect(api.requests[1]?.json).toMatchObject({ plaintext: Buffer.from('from stdin').toString('base64') });
    expect(JSON.parse(result.stdout)).toEqual(encrypted);
  });

  it('reports an unreadable file with exit 1', async () => {
    const result = await cli(['encrypt', WS, 'production', '--scope', 'job:1', '--file', join(dir, 'missing')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: file_unreadable: cannot read .*missing \(ENOENT\)/);
    expect(api.requests).toHaveLength(0);
  });

  it('decrypts an argument to raw bytes, sending the scope', async () => {
    const plain = Buffer.from([0, 255, 10]);
    routes({ [`POST ${ENVS}/decrypt`]: () => ({ status: 200, body: { plaintext: plain.toString('base64'), scope: { type: 'job', id: 'j' } } }) });
    const result = await cli(['decrypt', WS, 'production', 'ks1:AAAA', '--scope', 'job:j']);
    expect(result.code).toBe(0);
    expect(result.bytes.equals(plain)).toBe(true);
    expect(result.stdout).toBe('');
    expect(api.requests[0]?.json).toEqual({ ciphertext: 'ks1:AAAA', scope: { type: 'job', id: 'j' } });
  });

  it('decrypts stdin (trimmed), with --base64, and as text without a byte channel', async () => {
    routes({ [`POST ${ENVS}/decrypt`]: () => ({ status: 200, body: { plaintext: Buffer.from('hi').toString('base64'), scope: { type: 'job', id: 'j' } } }) });
    const b64 = await cli(['decrypt', WS, 'production', '--base64'], { stdin: 'ks1:AAAA\n' });
    expect(api.requests[0]?.json).toEqual({ ciphertext: 'ks1:AAAA' });
    expect(b64.stdout).toBe('aGk=\n');
    const text = await cli(['decrypt', WS, 'production', 'ks1:AAAA'], { bytes: false });
    expect(text.stdout).toBe('hi');
  });

  it('refuses to write binary plaintext to a text-only output', async () => {
    routes({ [`POST ${ENVS}/decrypt`]: () => ({ status: 200, body: { plaintext: Buffer.from([0xff, 0xfe]).toString('base64'), scope: { type: 'job', id: 'j' } } }) });
    const result = await cli(['decrypt', WS, 'production', 'ks1:AAAA'], { bytes: false });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/binary_output: .*--base64/);
  });

  it('shows decryption_failed as the server reports it', async () => {
    api.reply(() => errorReply(400, 'decryption_failed', 'The ciphertext could not be decrypted.'));
    const result = await cli(['decrypt', WS, 'production', 'ks1:tampered']);
    expect(result).toMatchObject({ code: 1, stderr: 'error: decryption_failed: The ciphertext could not be decrypted.\n' });
  });
});

describe('secret', () => {
  it('put creates from --value with context and metadata', async () => {
    routes({ [`POST ${ENVS}/objects`]: () => ({ status: 201, body: OBJECT }) });
    const result = await cli(['secret', 'put', WS, 'production', 'db', '--context', 'org=o1', '--context', 'app=a=b', '--value', 'pw', '--metadata', '{"team":"x"}']);
    expect(result.code).toBe(0);
    expect(api.requests[0]?.json).toEqual({ name: 'db', value: 'pw', context: { org: 'o1', app: 'a=b' }, metadata: { team: 'x' } });
    expect(JSON.parse(result.stdout)).toEqual(OBJECT);
  });

  it('put reads the value from stdin exactly', async () => {
    routes({ [`POST ${ENVS}/objects`]: () => ({ status: 201, body: OBJECT }) });
    const result = await cli(['secret', 'put', WS, 'production', 'db', '--context', 'org=o1', '-o', 'text'], { stdin: 'line1\nline2\n' });
    expect(api.requests[0]?.json).toMatchObject({ value: 'line1\nline2\n' });
    expect(result.stdout).toBe(`stored db version 3 (${ID})\n`);
  });

  it('put without --update reports an existing name', async () => {
    api.reply(() => errorReply(409, 'already_exists', 'An object named "db" exists.'));
    const result = await cli(['secret', 'put', WS, 'production', 'db', '--context', 'org=o1', '--value', 'pw']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: already_exists:/);
    expect(calls()).toEqual([`POST ${ENVS}/objects`]);
  });

  it('put --update reads the current version and updates from it', async () => {
    routes({
      [`POST ${ENVS}/objects`]: () => errorReply(409, 'already_exists', 'exists'),
      [`GET ${ENVS}/objects?name=db`]: () => ({ status: 200, body: { ...OBJECT, value: 'old' } }),
      [`PUT ${ENVS}/objects/${ID}`]: () => ({ status: 200, body: { ...OBJECT, version: 4 } }),
    });
    const result = await cli(['secret', 'put', WS, 'production', 'db', '--context', 'org=o1', '--value', 'new', '--update']);
    expect(result.code).toBe(0);
    expect(calls()).toEqual([`POST ${ENVS}/objects`, `GET ${ENVS}/objects?name=db`, `PUT ${ENVS}/objects/${ID}`]);
    expect(api.requests[2]?.json).toEqual({ value: 'new', expectedVersion: 3 });
    expect(JSON.parse(result.stdout)).toMatchObject({ version: 4 });
  });

  it('put --update with --metadata is a usage error, before reading input or sending anything', async () => {
    // The server's update takes exactly { value, expectedVersion }: metadata is set only on creation.
    let stdinRead = false;
    let stderr = '';
    const code = await runCli(['secret', 'put', WS, 'production', 'db', '--context', 'org=o1', '--update', '--metadata', '{"team":"x"}'], {
      stdout: () => undefined,
      stderr: (s) => (stderr += s),
      stdin: () => {
        stdinRead = true;
        return Promise.resolve(Buffer.from('pw'));
      },
      env: { KEYSTRATA_URL: api.url, KEYSTRATA_TOKEN: TOKEN },
    });
    expect(code).toBe(2);
    expect(stderr).toMatch(/^error: --metadata cannot be combined with --update: metadata can only be set when the secret is created/);
    expect(stdinRead).toBe(false);
    expect(api.requests).toHaveLength(0);
    const withValue = await cli(['secret', 'put', WS, 'production', 'db', '--context', 'org=o1', '--value', 'pw', '--metadata', '{}', '--update']);
    expect(withValue).toMatchObject({ code: 2, stdout: '' });
    expect(api.requests).toHaveLength(0);
  });

  it('put --update refuses to change the key context', async () => {
    routes({
      [`POST ${ENVS}/objects`]: () => errorReply(409, 'already_exists', 'exists'),
      [`GET ${ENVS}/objects?name=db`]: () => ({ status: 200, body: { ...OBJECT, value: 'old' } }),
    });
    const result = await cli(['secret', 'put', WS, 'production', 'db', '--context', 'org=o2', '--value', 'new', '--update']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: context_mismatch:/);
    expect(calls()).not.toContain(`PUT ${ENVS}/objects/${ID}`);
  });

  it('get prints the value exactly, by name or by id; --json prints the object', async () => {
    routes({
      [`GET ${ENVS}/objects?name=my+db`]: () => ({ status: 200, body: { ...OBJECT, value: 'pw\n' } }),
      [`GET ${ENVS}/objects/${ID}`]: () => ({ status: 200, body: { ...OBJECT, value: 'pw2' } }),
    });
    expect((await cli(['secret', 'get', WS, 'production', 'my db'])).stdout).toBe('pw\n');
    expect((await cli(['secret', 'get', WS, 'production', ID])).stdout).toBe('pw2');
    expect(JSON.parse((await cli(['secret', 'get', WS, 'production', ID, '--json'])).stdout)).toEqual({ ...OBJECT, value: 'pw2' });
  });

  it('get --version resolves a name to its id first', async () => {
    routes({
      [`GET ${ENVS}/objects?name=db`]: () => ({ status: 200, body: { ...OBJECT, value: 'current' } }),
      [`GET ${ENVS}/objects/${ID}/versions/2`]: () => ({ status: 200, body: { ...OBJECT, version: 2, value: 'older' } }),
    });
    const result = await cli(['secret', 'get', WS, 'production', 'db', '--version', '2']);
    expect(result.stdout).toBe('older');
    expect(calls()).toEqual([`GET ${ENVS}/objects?name=db`, `GET ${ENVS}/objects/${ID}/versions/2`]);
  });

  it('get of a missing name exits 1 with object_not_found', async () => {
    api.reply(() => errorReply(404, 'object_not_found', 'No such object.'));
    const result = await cli(['secret', 'get', WS, 'production', 'nope']);
    expect(result).toMatchObject({ code: 1, stdout: '', stderr: 'error: object_not_found: No such object.\n' });
  });

  it('list pages and prints a table in text mode', async () => {
    routes({ [`GET ${ENVS}/objects?limit=1`]: () => ({ status: 200, body: { items: [OBJECT], nextCursor: null } }) });
    const result = await cli(['secret', 'list', WS, 'production', '--limit', '1', '-o', 'text']);
    expect(result.stdout).toBe(`NAME  VERSION  ID${' '.repeat(ID.length)}UPDATED\ndb    3        ${ID}  2025-01-02T00:00:00Z\n`);
    expect(result.stderr).toBe('');
  });

  it('delete resolves a name and deletes by id', async () => {
    routes({
      [`GET ${ENVS}/objects?name=db`]: () => ({ status: 200, body: { ...OBJECT, value: 'x' } }),
      [`DELETE ${ENVS}/objects/${ID}`]: () => ({ status: 204 }),
    });
    const result = await cli(['secret', 'delete', WS, 'production', 'db']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ deleted: true, id: ID });
    expect(calls()).toEqual([`GET ${ENVS}/objects?name=db`, `DELETE ${ENVS}/objects/${ID}`]);
  });

  it('versions lists versions of an id without a name lookup', async () => {
    const versions = { items: [{ version: 3, createdAt: 't3' }, { version: 2, createdAt: 't2' }] };
    routes({ [`GET ${ENVS}/objects/${ID}/versions`]: () => ({ status: 200, body: versions }) });
    const result = await cli(['secret', 'versions', WS, 'production', ID, '-o', 'text']);
    expect(result.stdout).toBe('VERSION  CREATED\n3        t3\n2        t2\n');
    expect(calls()).toHaveLength(1);
  });
});
