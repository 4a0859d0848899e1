import { connect } from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startServer } from '../../src/server.js';
import { TEST_ADMIN_TOKEN } from '../support/test-keystrata.js';

it('a request still uploading its body when shutdown begins gets 503 shutting_down in the usual error body', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'keystrata-shutdown-'));
  const config = loadConfig({ KEYSTRATA_DATA_DIR: dataDir, PORT: '0', KEYSTRATA_LOG_LEVEL: 'silent', KEYSTRATA_ADMIN_TOKEN: TEST_ADMIN_TOKEN }, dataDir);
  const server = await startServer(config, { announce: () => {} });
  try {
    const { port } = new URL(server.url);
    const socket = connect(Number(port), '127.0.0.1');
    await once(socket, 'connect');
    const body = JSON.stringify({ name: 'late' });
    socket.write(
      `POST /v1/workspaces HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TEST_ADMIN_TOKEN}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closed = server.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    let response = '';
    socket.on('data', (chunk: Buffer) => (response += chunk.toString()));
    socket.write(body.slice(5));
    await closed;
    await once(socket, 'close');
    expect(response).toMatch(/^HTTP\/1\.1 503/);
    const json = JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as { error: { code: string; requestId: string } };
    expect(json.error.code).toBe('shutting_down');
    expect(json.error.requestId).toMatch(/^req_/);
  } finally {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
