import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnServer } from '../support/spawn-server.js';

/**
 * The path a user takes: `npm start` runs the COMPILED server (bin/keystrata.js → dist/). Module
 * cycles and other load-order faults can pass under vitest's loader and still break that path,
 * so this suite boots the compiled binary in a child process. `npm test` builds dist/ first.
 */
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const bin = join(repoRoot, 'bin/keystrata.js');
const dataDir = mkdtempSync(join(tmpdir(), 'keystrata-compiled-'));
const env = { ...process.env, KEYSTRATA_DATA_DIR: dataDir, PORT: '0', KEYSTRATA_LOG_LEVEL: 'warn', KEYSTRATA_ADMIN_TOKEN: '' };

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('the compiled server (what npm start runs)', () => {
  it('is built', () => {
    expect(existsSync(join(repoRoot, 'dist/src/cli/main.js')), 'run `npm run build` (npm test does it)').toBe(true);
  });

  let token = '';

  it('first start prints a one-time admin token that works, and creates root.key with mode 0600', async () => {
    const server = await spawnServer(process.execPath, [bin, 'serve'], env);
    try {
      const match = /KEYSTRATA_TOKEN=(ks_admin_[A-Za-z0-9_-]{43})/.exec(server.output());
      expect(match, server.output()).not.toBeNull();
      token = match![1]!;
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(statSync(join(dataDir, 'root.key')).mode & 0o777).toBe(0o600);

      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      const created = await fetch(`${server.url}/v1/workspaces`, { method: 'POST', headers, body: JSON.stringify({ name: 'compiled' }) });
      expect(created.status).toBe(201);
      const workspace = (await created.json()) as { id: string };
      const base = `${server.url}/v1/workspaces/${workspace.id}/environments/production`;
      const sealed = await fetch(`${base}/encrypt`, { method: 'POST', headers, body: JSON.stringify({ scope: { type: 'job', id: 'j1' }, plaintext: 'aGVsbG8=' }) });
      const { ciphertext } = (await sealed.json()) as { ciphertext: string };
      const opened = await fetch(`${base}/decrypt`, { method: 'POST', headers, body: JSON.stringify({ ciphertext }) });
      expect(await opened.json()).toEqual({ plaintext: 'aGVsbG8=', scope: { type: 'job', id: 'j1' } });
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  it('a restart announces no new token and the first one still works', async () => {
    expect(token).not.toBe('');
    const server = await spawnServer(process.execPath, [bin, 'serve'], env);
    try {
      expect(server.output()).not.toContain('KEYSTRATA_TOKEN=');
      const listed = await fetch(`${server.url}/v1/workspaces`, { headers: { authorization: `Bearer ${token}` } });
      expect(listed.status).toBe(200);
      expect(((await listed.json()) as { items: unknown[] }).items).toHaveLength(1);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });
});
