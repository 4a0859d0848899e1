import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { run } from './run.js';

// `init` and `serve` against the real server code on a real socket, driven through runCli in-process.
// The shutdown signal is delivered with process.emit, which reaches only the listeners serve added.

const QUIET = { KEYSTRATA_LOG_LEVEL: 'silent' };
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keystrata-cli-e2e-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('keystrata init', () => {
  it('creates the data directory and prints the admin token once', async () => {
    const dataDir = join(dir, 'init');
    const first = await run(['init', '--data-dir', dataDir], { env: QUIET });
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`data directory  ${dataDir}`);
    expect(first.stdout).toMatch(/shown this once/);
    const token = /\n {2}(\S+)\n/.exec(first.stdout.split('Admin token')[1] ?? '')?.[1];
    expect(token).toBeDefined();

    const again = await run(['init', '--data-dir', dataDir], { env: QUIET });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/already initialised/);
    expect(again.stdout).not.toContain(token);
  });
});

describe('keystrata serve', () => {
  it('serves the API to the client verbs and stops cleanly on SIGTERM', async () => {
    const dataDir = join(dir, 'serve');
    let stdout = '';
    let stderr = '';
    const serving = runCli(['serve', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir], {
      stdout: (s) => (stdout += s),
      stderr: (s) => (stderr += s),
      env: QUIET,
    });
    let exited = false;
    void serving.finally(() => (exited = true));
    await until(() => /listening on http:\/\/\S+/.test(stdout) || exited, 'the server to listen');
    expect(stderr).toBe('');
    const url = /listening on (http:\/\/[^\s]+)/.exec(stdout)?.[1] ?? '';
    // First start without init: the server generated an admin token and announced it through io.
    const token = /KEYSTRATA_TOKEN=(\S+)/.exec(stdout)?.[1];
    expect(token).toBeDefined();
    const env = { KEYSTRATA_URL: url, KEYSTRATA_TOKEN: token };

    const ws = await run(['workspace', 'create', 'acme'], { env });
    expect(ws.code).toBe(0);
    const wsId = (JSON.parse(ws.stdout) as { id: string }).id;

    const enc = await run(['encrypt', wsId, 'production', '--scope', 'job:j1', '--text', 'hello'], { env });
    expect(enc.stdout).toMatch(/^ks1:\S+\n$/);
    const dec = await run(['decrypt', wsId, 'production', enc.stdout.trim(), '--scope', 'job:j1'], { env });
    expect(dec).toMatchObject({ code: 0 });
    expect(dec.bytes.toString()).toBe('hello');
    const wrongScope = await run(['decrypt', wsId, 'production', enc.stdout.trim(), '--scope', 'job:j2'], { env });
    expect(wrongScope).toMatchObject({ code: 1, stderr: expect.stringMatching(/^error: decryption_failed:/) as unknown });

    const put = await run(['secret', 'put', wsId, 'production', 'db', '--context', 'org=o1'], { env, stdin: 'pw1' });
    expect(put.code).toBe(0);
    await run(['secret', 'put', wsId, 'production', 'db', '--context', 'org=o1', '--value', 'pw2', '--update'], { env });
    expect((await run(['secret', 'get', wsId, 'production', 'db'], { env })).stdout).toBe('pw2');
    expect((await run(['secret', 'get', wsId, 'production', 'db', '--version', '1'], { env })).stdout).toBe('pw1');
    const denied = await run(['workspace', 'list', '--token', 'not_a_real_token_123'], { env });
    expect(denied).toMatchObject({ code: 1, stderr: expect.stringMatching(/^error: unauthorized:/) as unknown });

    expect(exited).toBe(false);
    process.emit('SIGTERM');
    await expect(serving).resolves.toBe(0);
    expect(process.listenerCount('SIGTERM') + process.listenerCount('SIGINT')).toBe(0);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  it('fails with the configuration error code when the configuration is invalid', async () => {
    const result = await run(['serve', '--data-dir', join(dir, 'bad')], { env: { ...QUIET, KEYSTRATA_DATABASE_URL: 'mysql://x' } });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: configuration_invalid: KEYSTRATA_DATABASE_URL/);
    expect(process.listenerCount('SIGTERM')).toBe(0);
  });

  it('refuses a PostgreSQL schema that is not a plain identifier, or without a database URL', async () => {
    const url = 'postgres://postgres@127.0.0.1:5432/test';
    for (const [extra, message] of [
      [{ KEYSTRATA_DATABASE_URL: url, KEYSTRATA_DATABASE_SCHEMA: 'ks"; DROP TABLE keys; --' }, /KEYSTRATA_DATABASE_SCHEMA must be a lower-case PostgreSQL identifier/],
      [{ KEYSTRATA_DATABASE_SCHEMA: 'tenant_a' }, /KEYSTRATA_DATABASE_SCHEMA needs KEYSTRATA_DATABASE_URL/],
    ] as const) {
      const result = await run(['serve', '--data-dir', join(dir, 'bad-schema')], { env: { ...QUIET, ...extra } });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(message);
    }
  });
});
