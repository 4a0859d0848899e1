import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { testStoreHandle, testStores, type TestStoreHandle } from '../support/test-keystrata.js';

/**
 * Real sockets: startServer (src/server.ts) on port 0 over a fresh data directory and no
 * KEYSTRATA_ADMIN_TOKEN, driven with fetch.
 */

interface Started {
  readonly server: RunningServer;
  readonly messages: string[];
}

/** Try a TCP connection; resolves to the error code, or "connected". */
function tryConnect(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(2000);
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve('timeout');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
}

for (const store of testStores()) {
  describe(`keystrata server over a real socket (${store})`, () => {
    let handle: TestStoreHandle;
    let first: Started;
    let token: string;

    async function start(): Promise<Started> {
      const config = loadConfig({ KEYSTRATA_DATA_DIR: handle.dataDir, PORT: '0', KEYSTRATA_LOG_LEVEL: 'silent' }, handle.dataDir);
      const messages: string[] = [];
      // PostgreSQL needs the test's private schema, which only an injected store can name.
      const server = await startServer(config, { announce: (m) => messages.push(m), ...(store === 'postgres' ? { store: await handle.open() } : {}) });
      return { server, messages };
    }

    const api = (server: RunningServer, path: string, init: RequestInit & { token?: string | undefined } = {}) =>
      fetch(server.url + path, {
        ...init,
        headers: {
          ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(init.token === undefined ? {} : { authorization: `Bearer ${init.token}` }),
        },
      });

    beforeAll(async () => {
      handle = testStoreHandle(store);
      first = await start();
    });
    afterAll(async () => {
      await first?.server.close();
      await handle?.destroy();
    });

    it('announces a generated admin token exactly once, on first start', () => {
      const announced = first.messages.flatMap((m) => [...m.matchAll(/KEYSTRATA_TOKEN=(\S+)/g)].map((match) => match[1]!));
      expect(announced).toHaveLength(1);
      token = announced[0]!;
      expect(token).toMatch(/^ks_admin_[A-Za-z0-9_-]{43}$/);
      expect(first.messages.filter((m) => m.includes(token))).toHaveLength(1);
      expect(first.messages.join('\n')).toContain(`KEYSTRATA_URL=${first.server.url}`);
    });

    it('listens on 127.0.0.1 only', async () => {
      expect(first.server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const port = Number(new URL(first.server.url).port);
      expect(port).toBeGreaterThan(0);
      expect(await tryConnect('127.0.0.1', port)).toBe('connected');
      // Another loopback address reaches a socket bound to 0.0.0.0, but not one bound to 127.0.0.1.
      expect(await tryConnect('127.0.0.2', port)).toBe('ECONNREFUSED');
      const external = Object.values(networkInterfaces())
        .flat()
        .filter((i) => i !== undefined && i.family === 'IPv4' && !i.internal)
        .map((i) => i!.address);
      for (const address of external) expect(await tryConnect(address, port), address).not.toBe('connected');
      expect(await tryConnect('::1', port)).not.toBe('connected');
    });

    it('serves /healthz without a token and refuses /v1 without one', async () => {
      const health = await api(first.server, '/healthz');
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok', store });
      const denied = await api(first.server, '/v1/workspaces');
      expect(denied.status).toBe(401);
      const body = (await denied.json()) as { error: { code: string; requestId: string } };
      expect(body.error.code).toBe('unauthorized');
      expect(denied.headers.get('x-request-id')).toBe(body.error.requestId);
      expect(denied.headers.get('cache-control')).toBe('no-store');
      expect((await api(first.server, '/v1/workspaces', { token: 'ks_admin_wrong' })).status).toBe(401);
    });

    let workspaceId: string;
    let ciphertext: string;
    it('works with the announced token: workspace, encrypt, decrypt', async () => {
      const created = await api(first.server, '/v1/workspaces', { method: 'POST', token, body: JSON.stringify({ name: 'e2e' }) });
      expect(created.status).toBe(201);
      workspaceId = ((await created.json()) as { id: string }).id;
      const env = `/v1/workspaces/${workspaceId}/environments/production`;
      const plaintext = Buffer.from([0, 1, 2, 253, 254, 255]);
      const sealed = await api(first.server, `${env}/encrypt`, {
        method: 'POST',
        token,
        body: JSON.stringify({ scope: { type: 'job', id: 'job-e2e' }, plaintext: plaintext.toString('base64') }),
      });
      expect(sealed.status).toBe(200);
      ciphertext = ((await sealed.json()) as { ciphertext: string }).ciphertext;
      const opened = await api(first.server, `${env}/decrypt`, { method: 'POST', token, body: JSON.stringify({ ciphertext }) });
      expect(opened.status).toBe(200);
      expect(Buffer.from(((await opened.json()) as { plaintext: string }).plaintext, 'base64').equals(plaintext)).toBe(true);
    });

    it('after a restart: no new token is announced, and the old token and data still work', async () => {
      await first.server.close();
      const second = await start();
      try {
        const all = second.messages.join('\n');
        expect(all).not.toContain('KEYSTRATA_TOKEN=');
        expect(all).not.toContain(token);
        expect(all).toContain('listening on http://127.0.0.1:');
        const read = await api(second.server, `/v1/workspaces/${workspaceId}`, { token });
        expect(read.status).toBe(200);
        expect(((await read.json()) as { name: string }).name).toBe('e2e');
        const opened = await api(second.server, `/v1/workspaces/${workspaceId}/environments/production/decrypt`, {
          method: 'POST',
          token,
          body: JSON.stringify({ ciphertext, scope: { type: 'job', id: 'job-e2e' } }),
        });
        expect(opened.status).toBe(200);
        expect((await api(second.server, '/v1/workspaces', { token: token.slice(0, -1) })).status).toBe(401);
      } finally {
        await second.server.close();
      }
    });

    it('stops listening on close', async () => {
      const port = Number(new URL(first.server.url).port);
      expect(await tryConnect('127.0.0.1', port)).toBe('ECONNREFUSED');
    });
  });
}
