import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createWorkspace, encrypt, envUrl, expectError, ok } from '../support/http-helpers.js';
import { TEST_ADMIN_TOKEN, openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

/** Request-level failures: each with its status, its code, the field at fault and the error shape. */
for (const store of testStores()) {
  describe(`request errors (${store})`, () => {
    let t: TestKeystrata;
    let ws: string;
    let objects: string;
    beforeAll(async () => {
      // A small body limit so the 413 test needs no megabyte payloads.
      t = await openTestKeystrata({ store, env: { KEYSTRATA_BODY_LIMIT_BYTES: '2048' } });
      ws = (await createWorkspace(t, 'errors')).id;
      objects = `${envUrl(ws)}/objects`;
    });
    afterAll(async () => {
      await t?.destroy();
    });

    it('404 with the specific code for an unknown workspace, environment, object or version', async () => {
      const unknownWs = randomUUID();
      const unknownId = randomUUID();
      expectError(await call(t, 'POST', `${envUrl(unknownWs)}/encrypt`, { scope: { type: 'job', id: 'j' }, plaintext: '' }), 404, 'workspace_not_found');
      expectError(await call(t, 'POST', `${envUrl(ws, 'nope')}/encrypt`, { scope: { type: 'job', id: 'j' }, plaintext: '' }), 404, 'environment_not_found');
      expectError(await call(t, 'POST', `${envUrl(ws, 'nope')}/decrypt`, { ciphertext: 'ks1:AAAA' }), 404, 'environment_not_found');
      expectError(await call(t, 'GET', `${envUrl(ws, 'nope')}/keys`), 404, 'environment_not_found');
      expectError(await call(t, 'GET', `${envUrl(unknownWs)}/objects`), 404, 'workspace_not_found');
      expectError(await call(t, 'GET', `${objects}/${unknownId}`), 404, 'object_not_found');
      expectError(await call(t, 'GET', `${objects}?name=missing`), 404, 'object_not_found');
      expectError(await call(t, 'PUT', `${objects}/${unknownId}`, { value: 'v', expectedVersion: 1 }), 404, 'object_not_found');
      expectError(await call(t, 'DELETE', `${objects}/${unknownId}`), 404, 'object_not_found');
      expectError(await call(t, 'GET', `${objects}/${unknownId}/versions`), 404, 'object_not_found');
      const object = await ok(t, 'POST', objects, { name: 'o', value: 'v', context: { a: 'b' } }, 201);
      expectError(await call(t, 'GET', `${objects}/${object.id}/versions/2`), 404, 'object_version_not_found');
    });

    it('413 payload_too_large for a body over KEYSTRATA_BODY_LIMIT_BYTES', async () => {
      const plaintext = Buffer.alloc(3000, 1).toString('base64');
      expectError(await call(t, 'POST', `${envUrl(ws)}/encrypt`, { scope: { type: 'job', id: 'j' }, plaintext }), 413, 'payload_too_large');
      expectError(await call(t, 'POST', objects, { name: 'big', value: 'x'.repeat(4000), context: { a: 'b' } }), 413, 'payload_too_large');
      // Just under the limit is accepted.
      await encrypt(t, ws, { type: 'job', id: 'j' }, Buffer.alloc(1000, 1));
    });

    it('400 invalid_request for malformed JSON, and for an empty JSON body', async () => {
      const raw = (payload: string) =>
        t.app.inject({ method: 'POST', url: `${envUrl(ws)}/encrypt`, headers: { ...t.auth, 'content-type': 'application/json' }, payload });
      for (const payload of ['{"scope":', '{scope: 1}', 'nul', '{"a":1}}']) {
        expectError(await raw(payload), 400, 'invalid_request');
      }
      expectError(await raw(''), 400, 'invalid_request');
      expectError(await raw('[]'), 400, 'invalid_request');
    });

    it.each([
      ['scope.id is a number', { scope: { type: 'job', id: 5 }, plaintext: '' }, 'scope.id'],
      ['scope.id is empty', { scope: { type: 'job', id: '' }, plaintext: '' }, 'scope.id'],
      ['scope.id is too long', { scope: { type: 'job', id: 'x'.repeat(129) }, plaintext: '' }, 'scope.id'],
      ['scope.id has a control character', { scope: { type: 'job', id: 'a\nb' }, plaintext: '' }, 'scope.id'],
      ['scope.type is unknown', { scope: { type: 'object', id: 'x' }, plaintext: '' }, 'scope.type'],
      ['scope is missing', { plaintext: '' }, 'scope'],
      ['scope.id is missing', { scope: { type: 'job' }, plaintext: '' }, 'scope.id'],
      ['plaintext is missing', { scope: { type: 'job', id: 'x' } }, 'plaintext'],
      ['plaintext is a number', { scope: { type: 'job', id: 'x' }, plaintext: 7 }, 'plaintext'],
      ['plaintext is not base64 (alphabet)', { scope: { type: 'job', id: 'x' }, plaintext: 'not base64!' }, 'plaintext'],
      ['plaintext is not base64 (url alphabet)', { scope: { type: 'job', id: 'x' }, plaintext: 'ab-_' }, 'plaintext'],
      ['plaintext is not base64 (length)', { scope: { type: 'job', id: 'x' }, plaintext: 'abc' }, 'plaintext'],
      ['an unknown top-level field', { scope: { type: 'job', id: 'x' }, plaintext: '', key: 'k' }, 'key'],
      ['an unknown scope field', { scope: { type: 'job', id: 'x', tenant: 't' }, plaintext: '' }, 'scope.tenant'],
    ])('encrypt: 400 invalid_request when %s', async (_why, payload, field) => {
      const error = expectError(await call(t, 'POST', `${envUrl(ws)}/encrypt`, payload), 400, 'invalid_request');
      expect(error.field).toBe(field);
    });

    it.each([
      ['ciphertext is missing', {}, 'ciphertext'],
      ['ciphertext is a number', { ciphertext: 1 }, 'ciphertext'],
      ['ciphertext is empty', { ciphertext: '' }, 'ciphertext'],
      ['scope has a bad type', { ciphertext: 'ks1:AA', scope: { type: 'nope', id: 'x' } }, 'scope.type'],
      ['an unknown field', { ciphertext: 'ks1:AA', plaintext: 'x' }, 'plaintext'],
    ])('decrypt: 400 invalid_request when %s', async (_why, payload, field) => {
      const error = expectError(await call(t, 'POST', `${envUrl(ws)}/decrypt`, payload), 400, 'invalid_request');
      expect(error.field).toBe(field);
    });

    it.each([
      ['POST', 'name is missing', { value: 'v', context: { a: 'b' } }, 'name'],
      ['POST', 'value is a number', { name: 'n', value: 1, context: { a: 'b' } }, 'value'],
      ['POST', 'context is missing', { name: 'n', value: 'v' }, 'context'],
      ['POST', 'context is empty', { name: 'n', value: 'v', context: {} }, 'context'],
      ['POST', 'context is nested', { name: 'n', value: 'v', context: { a: { b: 'c' } } }, 'context.a'],
      ['POST', 'context has a number', { name: 'n', value: 'v', context: { a: 1 } }, 'context.a'],
      ['POST', 'an unknown field', { name: 'n', value: 'v', context: { a: 'b' }, owner: 'x' }, 'owner'],
      ['PUT', 'expectedVersion is a string', { value: 'v', expectedVersion: '1' }, 'expectedVersion'],
      ['PUT', 'expectedVersion is missing', { value: 'v' }, 'expectedVersion'],
      ['PUT', 'expectedVersion is 0', { value: 'v', expectedVersion: 0 }, 'expectedVersion'],
      ['PUT', 'expectedVersion is fractional', { value: 'v', expectedVersion: 1.5 }, 'expectedVersion'],
      ['PUT', 'value is missing', { expectedVersion: 1 }, 'value'],
    ] as const)('objects %s: 400 invalid_request when %s', async (method, _why, payload, field) => {
      const url = method === 'POST' ? objects : `${objects}/${randomUUID()}`;
      const error = expectError(await call(t, method, url, payload), 400, 'invalid_request');
      expect(error.field).toBe(field);
    });

    it('400 with the field for bad path and query parameters', async () => {
      expect(expectError(await call(t, 'GET', `${objects}/not-a-uuid`), 400, 'invalid_request').field).toBe('id');
      expect(expectError(await call(t, 'GET', `${envUrl(ws, 'Bad Env')}/keys`), 400, 'invalid_request').field).toBe('env');
      expect(expectError(await call(t, 'GET', `${objects}?limit=abc`), 400, 'invalid_request').field).toBe('limit');
      expect(expectError(await call(t, 'GET', `${objects}?bogus=1`), 400, 'invalid_request').field).toBe('bogus');
    });

    it('415 unsupported_media_type for a non-JSON body', async () => {
      for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
        const response = await t.app.inject({
          method: 'POST',
          url: `${envUrl(ws)}/encrypt`,
          headers: { ...t.auth, 'content-type': contentType },
          payload: 'scope=job&plaintext=',
        });
        expectError(response, 415, 'unsupported_media_type');
      }
    });

    it('401 unauthorized without a valid token, never echoing what was sent', async () => {
      const wrong = 'wrong-token-' + 'z'.repeat(40);
      const attempts: Record<string, string>[] = [
        {},
        { authorization: `Bearer ${wrong}` },
        { authorization: wrong },
        { authorization: `Basic ${Buffer.from(`admin:${wrong}`).toString('base64')}` },
        { authorization: `Bearer ${TEST_ADMIN_TOKEN.slice(0, -1)}` },
        { authorization: `Bearer ${TEST_ADMIN_TOKEN}x` },
        { authorization: `bearer  ${TEST_ADMIN_TOKEN}` },
        { 'x-api-key': TEST_ADMIN_TOKEN },
      ];
      for (const headers of attempts) {
        for (const [method, url] of [
          ['GET', `/v1/workspaces/${ws}`],
          ['POST', `${envUrl(ws)}/encrypt`],
          ['GET', '/v1/workspaces'],
        ] as const) {
          const response = await t.app.inject({ method, url, headers, ...(method === 'POST' ? { payload: { scope: { type: 'job', id: 'j' }, plaintext: '' } } : {}) });
          expectError(response, 401, 'unauthorized');
          expect(response.body).not.toContain(wrong);
          expect(response.body).not.toContain(TEST_ADMIN_TOKEN.slice(0, 20));
          expect(JSON.stringify(response.headers)).not.toContain(wrong);
        }
      }
    });

    it('401 comes before validation and before any lookup', async () => {
      const response = await t.app.inject({ method: 'POST', url: `${envUrl(randomUUID())}/encrypt`, payload: { bogus: true } });
      expectError(response, 401, 'unauthorized');
    });

    it('404 route_not_found for an unknown route', async () => {
      for (const [method, url] of [
        ['GET', '/v1/nothing-here'],
        ['GET', '/'],
        ['POST', `/v1/workspaces/${ws}/environments/production/nothing`],
      ] as const) {
        const error = expectError(await call(t, method, url), 404, 'route_not_found');
        expect(error.message).toContain(method);
      }
    });

    it('405 method_not_allowed with an Allow header for a known path and the wrong method', async () => {
      for (const [method, url, allow] of [
        ['DELETE', `/v1/workspaces/${ws}`, 'GET'],
        ['POST', `${envUrl(ws)}/keys`, 'GET'],
        ['GET', `${envUrl(ws)}/encrypt`, 'POST'],
        ['PATCH', `${envUrl(ws)}/objects/00000000-0000-4000-8000-000000000000`, 'PUT'],
      ] as const) {
        const response = await call(t, method, url);
        const error = expectError(response, 405, 'method_not_allowed');
        expect(error.message).toContain(method);
        expect(String(response.headers.allow).split(', ')).toContain(allow);
      }
    });

    it('sets cache-control: no-store and an x-request-id on successful responses', async () => {
      const responses = [
        await call(t, 'GET', `/v1/workspaces/${ws}`),
        await call(t, 'POST', `${envUrl(ws)}/encrypt`, { scope: { type: 'job', id: 'j' }, plaintext: 'AA==' }),
        await call(t, 'GET', `${envUrl(ws)}/keys`),
        await t.app.inject({ method: 'GET', url: '/healthz' }),
      ];
      const ids = new Set<string>();
      for (const response of responses) {
        expect(response.statusCode).toBe(200);
        expect(response.headers['cache-control']).toBe('no-store');
        expect(String(response.headers['x-request-id'])).toMatch(/^req_\w+$/);
        ids.add(String(response.headers['x-request-id']));
      }
      expect(ids.size).toBe(responses.length);
    });
  });
}
