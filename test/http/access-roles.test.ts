import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROLES, as, asOk, clientsUrl, createClient, issueJwt, type CreatedClient, type Role } from '../support/access-helpers.js';
import { createWorkspace, envUrl, expectError, ok, type InjectResult, type Method } from '../support/http-helpers.js';
import { openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

/**
 * Who may call what: every route × every role, environment grants, workspace isolation, and the
 * admin token. The expected matrix is written out here, independently of src/…/permissions.ts,
 * and the route list is checked against the server's OpenAPI description so a new route without
 * an entry fails this suite.
 */

/** One request ready to send, and what a caller allowed to make it gets. */
interface Prepared {
  readonly url: string;
  readonly payload?: unknown;
  readonly status: number;
  /** After a refused request: checks the target was left as it was. */
  readonly unchanged?: () => Promise<void>;
}

interface RouteCase {
  readonly method: Method;
  /** Fastify pattern, as in the route definitions. */
  readonly path: string;
  /** Roles allowed (with environments "*"); every other role gets 403 forbidden. */
  readonly allowed: readonly Role[];
  /** Whether the route is in a workspace (…/workspaces/:ws/…): isolation applies. */
  readonly inWorkspace: boolean;
  /** Sets up what the request needs in workspace `ws`, environment `env` (as the admin token). */
  prepare(ws: string, env: string): Promise<Prepared>;
}

const ALL: readonly Role[] = ROLES;
const keyUrl = (ws: string, env: string, keyId: string) => `${envUrl(ws, env)}/keys/${keyId}`;
const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

for (const store of testStores()) {
  describe(`roles and isolation (${store})`, () => {
    let t: TestKeystrata;
    /** A fresh connection key in `env` (made with the admin token), for the key lifecycle routes. */
    const newKey = async (ws: string, env: string): Promise<string> =>
      (await ok<{ keyId: string }>(t, 'POST', `${envUrl(ws, env)}/encrypt`, { scope: { type: 'connection', id: unique('c') }, plaintext: 'eA==' })).keyId;
    /** The workspace the clients belong to, and another one with the same resources. */
    let wsA: string;
    let wsB: string;
    /** One client per role in workspace A, every environment. */
    const clients = {} as Record<Role, CreatedClient>;
    const jwts = {} as Record<Role, string>;

    const admin = <T>(method: Method, url: string, payload?: unknown, status = 200) => asOk<T>(t, t.token, method, url, payload, status);
    const createObject = (ws: string, env: string) =>
      admin<{ id: string; version: number }>('POST', `${envUrl(ws, env)}/objects`, { name: unique('obj'), value: 'secret value', context: { app: 'x' } }, 201);
    const createTarget = async (ws: string, env: string) =>
      (await admin<CreatedClient>('POST', clientsUrl(ws), { name: unique('target'), role: 'app', environments: [env] }, 201)).client;
    const objectExists = (ws: string, env: string, id: string) => async () => {
      const object = await admin<{ version: number; value: string }>('GET', `${envUrl(ws, env)}/objects/${id}`);
      expect(object).toMatchObject({ version: 1, value: 'secret value' });
    };
    const clientUnchanged = (ws: string, id: string, name: string) => async () => {
      const client = await admin<{ name: string; disabled: boolean; tokens: unknown[] }>('GET', clientsUrl(ws, id));
      expect(client).toMatchObject({ name, disabled: false });
      expect(client.tokens).toHaveLength(1);
    };

    const ROUTES: readonly RouteCase[] = [
      { method: 'POST', path: '/v1/workspaces', allowed: [], inWorkspace: false, prepare: async () => ({ url: '/v1/workspaces', payload: { name: unique('ws') }, status: 201 }) },
      { method: 'GET', path: '/v1/workspaces', allowed: [], inWorkspace: false, prepare: async () => ({ url: '/v1/workspaces', status: 200 }) },
      { method: 'GET', path: '/v1/workspaces/:ws', allowed: ['admin', 'operator', 'auditor'], inWorkspace: true, prepare: async (ws) => ({ url: `/v1/workspaces/${ws}`, status: 200 }) },
      {
        method: 'POST',
        path: '/v1/workspaces/:ws/environments',
        allowed: ['admin', 'operator'],
        inWorkspace: true,
        prepare: async (ws) => ({ url: `/v1/workspaces/${ws}/environments`, payload: { name: unique('env') }, status: 201 }),
      },
      { method: 'GET', path: '/v1/workspaces/:ws/environments/:env/keys', allowed: ['admin', 'operator', 'auditor'], inWorkspace: true, prepare: async (ws, env) => ({ url: `${envUrl(ws, env)}/keys`, status: 200 }) },
      { method: 'GET', path: '/v1/workspaces/:ws/environments/:env/cmk', allowed: ['admin', 'operator', 'auditor'], inWorkspace: true, prepare: async (ws, env) => ({ url: `${envUrl(ws, env)}/cmk`, status: 200 }) },
      { method: 'POST', path: '/v1/workspaces/:ws/environments/:env/cmk/rotate', allowed: ['admin', 'operator'], inWorkspace: true, prepare: async (ws, env) => ({ url: `${envUrl(ws, env)}/cmk/rotate`, payload: {}, status: 200 }) },
      {
        method: 'PUT',
        path: '/v1/workspaces/:ws/environments/:env/cmk',
        allowed: ['admin', 'operator'],
        inWorkspace: true,
        prepare: async (ws, env) => ({ url: `${envUrl(ws, env)}/cmk`, payload: { provider: 'uploaded', config: { keyMaterial: randomBytes(32).toString('base64') } }, status: 200 }),
      },
      {
        method: 'POST',
        path: '/v1/workspaces/:ws/environments/:env/encrypt',
        allowed: ['admin', 'app'],
        inWorkspace: true,
        prepare: async (ws, env) => ({ url: `${envUrl(ws, env)}/encrypt`, payload: { scope: { type: 'job', id: 'j1' }, plaintext: 'aGVsbG8=' }, status: 200 }),
      },
      {
        method: 'POST',
        path: '/v1/workspaces/:ws/environments/:env/decrypt',
        allowed: ['admin', 'app'],
        inWorkspace: true,
        prepare: async (ws, env) => {
          const { ciphertext } = await admin<{ ciphertext: string }>('POST', `${envUrl(ws, env)}/encrypt`, { scope: { type: 'job', id: 'j1' }, plaintext: 'aGVsbG8=' });
          return { url: `${envUrl(ws, env)}/decrypt`, payload: { ciphertext }, status: 200 };
        },
      },
      {
        method: 'POST',
        path: '/v1/workspaces/:ws/environments/:env/objects',
        allowed: ['admin', 'app'],
        inWorkspace: true,
        prepare: async (ws, env) => ({ url: `${envUrl(ws, env)}/objects`, payload: { name: unique('new'), value: 'v', context: { app: 'x' } }, status: 201 }),
      },
      { method: 'GET', path: '/v1/workspaces/:ws/environments/:env/objects', allowed: ['admin', 'app'], inWorkspace: true, prepare: async (ws, env) => ({ url: `${envUrl(ws, env)}/objects`, status: 200 }) },
      {
        method: 'GET',
        path: '/v1/workspaces/:ws/environments/:env/objects/:id',
        allowed: ['admin', 'app'],
        inWorkspace: true,
        prepare: async (ws, env) => ({ url: `${envUrl(ws, env)}/objects/${(await createObject(ws, env)).id}`, status: 200 }),
      },
      {
        method: 'PUT',
        path: '/v1/workspaces/:ws/environments/:env/objects/:id',
        allowed: ['admin', 'app'],
        inWorkspace: true,
        prepare: async (ws, env) => {
          const { id } = await createObject(ws, env);
          return { url: `${envUrl(ws, env)}/objects/${id}`, payload: { value: 'overwritten', expectedVersion: 1 }, status: 200, unchanged: objectExists(ws, env, id) };
        },
      },
      {
        method: 'DELETE',
        path: '/v1/workspaces/:ws/environments/:env/objects/:id',
        allowed: ['admin', 'app'],
        inWorkspace: true,
        prepare: async (ws, env) => {
          const { id } = await createObject(ws, env);
          return { url: `${envUrl(ws, env)}/objects/${id}`, status: 204, unchanged: objectExists(ws, env, id) };
        },
      },
      {
        method: 'GET',
        path: '/v1/workspaces/:ws/environments/:env/objects/:id/versions',
        allowed: ['admin', 'app'],
        inWorkspace: true,
        prepare: async (ws, env) => ({ url: `${envUrl(ws, env)}/objects/${(await createObject(ws, env)).id}/versions`, status: 200 }),
      },
      {
        method: 'GET',
        path: '/v1/workspaces/:ws/environments/:env/objects/:id/versions/:version',
        allowed: ['admin', 'app'],
        inWorkspace: true,
        prepare: async (ws, env) => ({ url: `${envUrl(ws, env)}/objects/${(await createObject(ws, env)).id}/versions/1`, status: 200 }),
      },
      {
        method: 'POST',
        path: '/v1/workspaces/:ws/clients',
        allowed: ['admin'],
        inWorkspace: true,
        prepare: async (ws, env) => ({ url: clientsUrl(ws), payload: { name: unique('made'), role: 'app', environments: [env] }, status: 201 }),
      },
      { method: 'GET', path: '/v1/workspaces/:ws/clients', allowed: ['admin', 'auditor'], inWorkspace: true, prepare: async (ws) => ({ url: clientsUrl(ws), status: 200 }) },
      {
        method: 'GET',
        path: '/v1/workspaces/:ws/clients/:id',
        allowed: ['admin', 'auditor'],
        inWorkspace: true,
        prepare: async (ws, env) => ({ url: clientsUrl(ws, (await createTarget(ws, env)).id), status: 200 }),
      },
      {
        method: 'PATCH',
        path: '/v1/workspaces/:ws/clients/:id',
        allowed: ['admin'],
        inWorkspace: true,
        prepare: async (ws, env) => {
          const target = await createTarget(ws, env);
          return { url: clientsUrl(ws, target.id), payload: { disabled: true }, status: 200, unchanged: clientUnchanged(ws, target.id, target.name) };
        },
      },
      {
        method: 'DELETE',
        path: '/v1/workspaces/:ws/clients/:id',
        allowed: ['admin'],
        inWorkspace: true,
        prepare: async (ws, env) => {
          const target = await createTarget(ws, env);
          return { url: clientsUrl(ws, target.id), status: 204, unchanged: clientUnchanged(ws, target.id, target.name) };
        },
      },
      {
        method: 'POST',
        path: '/v1/workspaces/:ws/clients/:id/tokens',
        allowed: ['admin'],
        inWorkspace: true,
        prepare: async (ws, env) => {
          const target = await createTarget(ws, env);
          return { url: `${clientsUrl(ws, target.id)}/tokens`, payload: { graceSeconds: 0 }, status: 201, unchanged: clientUnchanged(ws, target.id, target.name) };
        },
      },
      { method: 'GET', path: '/v1/workspaces/:ws/environments/:env/keys/:keyId', allowed: ['admin', 'operator', 'auditor'], inWorkspace: true, prepare: async (ws, env) => ({ url: keyUrl(ws, env, await newKey(ws, env)), status: 200 }) },
      { method: 'POST', path: '/v1/workspaces/:ws/environments/:env/keys/:keyId/disable', allowed: ['admin', 'operator'], inWorkspace: true, prepare: async (ws, env) => ({ url: `${keyUrl(ws, env, await newKey(ws, env))}/disable`, payload: {}, status: 200 }) },
      {
        method: 'POST',
        path: '/v1/workspaces/:ws/environments/:env/keys/:keyId/enable',
        allowed: ['admin', 'operator'],
        inWorkspace: true,
        prepare: async (ws, env) => {
          const url = keyUrl(ws, env, await newKey(ws, env));
          await ok(t, 'POST', `${url}/disable`, {});
          return { url: `${url}/enable`, payload: {}, status: 200 };
        },
      },
      { method: 'POST', path: '/v1/workspaces/:ws/environments/:env/keys/:keyId/schedule-destruction', allowed: ['admin'], inWorkspace: true, prepare: async (ws, env) => ({ url: `${keyUrl(ws, env, await newKey(ws, env))}/schedule-destruction`, payload: {}, status: 200 }) },
      {
        method: 'POST',
        path: '/v1/workspaces/:ws/environments/:env/keys/:keyId/cancel-destruction',
        allowed: ['admin'],
        inWorkspace: true,
        prepare: async (ws, env) => {
          const url = keyUrl(ws, env, await newKey(ws, env));
          await ok(t, 'POST', `${url}/schedule-destruction`, {});
          return { url: `${url}/cancel-destruction`, payload: {}, status: 200 };
        },
      },
      {
        method: 'POST',
        path: '/v1/workspaces/:ws/environments/:env/contexts/shred',
        allowed: ['admin'],
        inWorkspace: true,
        prepare: async (ws, env) => {
          const context = { tenant: unique('ctx') };
          await ok(t, 'POST', `${envUrl(ws, env)}/objects`, { name: unique('obj'), value: 'v', context }, 201);
          return { url: `${envUrl(ws, env)}/contexts/shred`, payload: { context }, status: 200 };
        },
      },
      {
        method: 'POST',
        path: '/v1/workspaces/:ws/environments/:env/shred',
        allowed: ['admin'],
        inWorkspace: true,
        // A fresh environment each time: shredding one must not break the other cases.
        prepare: async (ws) => {
          const name = unique('doomed');
          await ok(t, 'POST', `/v1/workspaces/${ws}/environments`, { name }, 201);
          return { url: `${envUrl(ws, name)}/shred`, payload: {}, status: 200 };
        },
      },
      { method: 'GET', path: '/v1/workspaces/:ws/audit', allowed: ['admin', 'auditor'], inWorkspace: true, prepare: async (ws) => ({ url: `/v1/workspaces/${ws}/audit`, status: 200 }) },
      { method: 'GET', path: '/v1/workspaces/:ws/audit/verify', allowed: ['admin', 'auditor'], inWorkspace: true, prepare: async (ws) => ({ url: `/v1/workspaces/${ws}/audit/verify`, status: 200 }) },
      // Every client may trade its API token for a JWT; the admin token may not (see the attacks suite).
      { method: 'POST', path: '/v1/auth/token', allowed: ALL, inWorkspace: false, prepare: async () => ({ url: '/v1/auth/token', payload: {}, status: 200 }) },
    ];

    beforeAll(async () => {
      t = await openTestKeystrata({ store });
      wsA = (await createWorkspace(t, 'tenant-a')).id;
      wsB = (await createWorkspace(t, 'tenant-b')).id;
      for (const ws of [wsA, wsB]) await ok(t, 'POST', `/v1/workspaces/${ws}/environments`, { name: 'staging' }, 201);
      for (const role of ROLES) {
        clients[role] = await createClient(t, wsA, { name: `${role}-all`, role });
        jwts[role] = (await issueJwt(t, clients[role].token)).token;
      }
    });
    afterAll(async () => {
      await t?.destroy();
    });

    it('the route list covers every route the server documents (besides /healthz and /metrics)', async () => {
      const spec = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json<{ paths: Record<string, Record<string, unknown>> }>();
      const documented = Object.entries(spec.paths)
        .flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`))
        .filter((route) => !['GET /healthz', 'GET /metrics'].includes(route))
        .sort();
      expect(ROUTES.map((r) => `${r.method} ${r.path}`).sort()).toEqual(documented);
    });

    describe('every route × every role (environments "*")', () => {
      for (const route of ROUTES) {
        it(`${route.method} ${route.path}: allowed for ${route.allowed.join(', ') || 'no client role'}`, async () => {
          for (const role of ROLES) {
            const prepared = await route.prepare(wsA, 'production');
            const response = await as(t, clients[role].token, route.method, prepared.url, prepared.payload);
            if (route.allowed.includes(role)) {
              expect(response.statusCode, `${role}: ${response.body}`).toBe(prepared.status);
            } else {
              expectError(response, 403, 'forbidden');
              await prepared.unchanged?.();
            }
          }
        });
      }
    });

    it('a JWT carries exactly its client’s role', async () => {
      for (const route of ROUTES) {
        // A JWT may not be traded for another JWT (covered in the attacks suite).
        if (route.path === '/v1/auth/token') continue;
        for (const role of ROLES) {
          const prepared = await route.prepare(wsA, 'production');
          const response = await as(t, jwts[role], route.method, prepared.url, prepared.payload);
          if (route.allowed.includes(role)) expect(response.statusCode, `${role} ${route.method} ${route.path}: ${response.body}`).toBe(prepared.status);
          else expectError(response, 403, 'forbidden');
        }
      }
    });

    it('the admin token may do everything, in every workspace, except trade itself for a JWT', async () => {
      for (const route of ROUTES) {
        for (const ws of [wsA, wsB]) {
          const prepared = await route.prepare(ws, 'staging');
          const response = await as(t, t.token, route.method, prepared.url, prepared.payload);
          if (route.path === '/v1/auth/token') expectError(response, 403, 'forbidden');
          else expect(response.statusCode, `${route.method} ${prepared.url}: ${response.body}`).toBe(prepared.status);
        }
      }
    });

    describe('environment grants', () => {
      let stagingApp: CreatedClient;
      let stagingOperator: CreatedClient;
      let stagingAuditor: CreatedClient;
      beforeAll(async () => {
        stagingApp = await createClient(t, wsA, { role: 'app', environments: ['staging'] });
        stagingOperator = await createClient(t, wsA, { role: 'operator', environments: ['staging'] });
        stagingAuditor = await createClient(t, wsA, { role: 'auditor', environments: ['staging'] });
      });
      const envRoutes = () => ROUTES.filter((r) => r.path.includes('/:env/'));

      it('an app client uses only its environments, and only data-plane routes', async () => {
        for (const route of envRoutes()) {
          const inStaging = await route.prepare(wsA, 'staging');
          const response = await as(t, stagingApp.token, route.method, inStaging.url, inStaging.payload);
          if (route.allowed.includes('app')) expect(response.statusCode, `${route.method} ${inStaging.url}: ${response.body}`).toBe(inStaging.status);
          else expectError(response, 403, 'forbidden');

          const inProduction = await route.prepare(wsA, 'production');
          expectError(await as(t, stagingApp.token, route.method, inProduction.url, inProduction.payload), 403, 'forbidden');
          await inProduction.unchanged?.();
        }
        // Outside the data plane, nothing, even in its own environment's workspace.
        for (const route of ROUTES.filter((r) => !r.path.includes('/:env/') && r.path !== '/v1/auth/token')) {
          const prepared = await route.prepare(wsA, 'staging');
          expectError(await as(t, stagingApp.token, route.method, prepared.url, prepared.payload), 403, 'forbidden');
        }
      });

      it('an environment that is not granted answers like one that does not exist: 403, whether or not it exists', async () => {
        const body = { scope: { type: 'job', id: 'j' }, plaintext: '' };
        const existing = expectError(await as(t, stagingApp.token, 'POST', `${envUrl(wsA, 'production')}/encrypt`, body), 403, 'forbidden');
        const missing = expectError(await as(t, stagingApp.token, 'POST', `${envUrl(wsA, 'no-such-env')}/encrypt`, body), 403, 'forbidden');
        expect(missing.message.replace('no-such-env', 'ENV')).toBe(existing.message.replace('production', 'ENV'));
      });

      it('an environment created later is not granted to a client with named environments, but is to "*"', async () => {
        const name = unique('later');
        await ok(t, 'POST', `/v1/workspaces/${wsA}/environments`, { name }, 201);
        const body = { scope: { type: 'job', id: 'j' }, plaintext: '' };
        expectError(await as(t, stagingApp.token, 'POST', `${envUrl(wsA, name)}/encrypt`, body), 403, 'forbidden');
        expect((await as(t, clients.app.token, 'POST', `${envUrl(wsA, name)}/encrypt`, body)).statusCode).toBe(200);
      });

      it('operator and auditor read keys only in their environments; an operator without "*" cannot add environments', async () => {
        for (const client of [stagingOperator, stagingAuditor]) {
          for (const suffix of ['keys', 'cmk']) {
            expect((await as(t, client.token, 'GET', `${envUrl(wsA, 'staging')}/${suffix}`)).statusCode).toBe(200);
            expectError(await as(t, client.token, 'GET', `${envUrl(wsA, 'production')}/${suffix}`), 403, 'forbidden');
          }
          // Workspace-level reads are not environment-scoped.
          expect((await as(t, client.token, 'GET', `/v1/workspaces/${wsA}`)).statusCode).toBe(200);
        }
        expect((await as(t, stagingAuditor.token, 'GET', `/v1/workspaces/${wsA}/audit`)).statusCode).toBe(200);
        const name = unique('env');
        expectError(await as(t, stagingOperator.token, 'POST', `/v1/workspaces/${wsA}/environments`, { name }), 403, 'forbidden');
        const workspace = await asOk<{ environments: { name: string }[] }>(t, t.token, 'GET', `/v1/workspaces/${wsA}`);
        expect(workspace.environments.map((e) => e.name)).not.toContain(name);
      });

      it('a JWT carries exactly its client’s environments', async () => {
        const jwt = (await issueJwt(t, stagingApp.token)).token;
        const body = { scope: { type: 'job', id: 'j' }, plaintext: '' };
        expect((await as(t, jwt, 'POST', `${envUrl(wsA, 'staging')}/encrypt`, body)).statusCode).toBe(200);
        expectError(await as(t, jwt, 'POST', `${envUrl(wsA, 'production')}/encrypt`, body), 403, 'forbidden');
      });
    });

    describe('workspace isolation', () => {
      /** The error a request gets, with the workspace id in it replaced, for comparison. */
      const errorShape = (response: InjectResult, ws: string) => {
        const error = expectError(response, 404, 'workspace_not_found');
        return { code: error.code, field: error.field, details: error.details, message: error.message.replaceAll(ws, '<ws>') };
      };

      it('another workspace answers every route exactly like a workspace that does not exist, for every role', async () => {
        for (const route of ROUTES.filter((r) => r.inWorkspace)) {
          for (const role of ROLES) {
            for (const credential of [clients[role].token, jwts[role]]) {
              // Real resources in B (an object, a client) so nothing depends on them being missing.
              const inB = await route.prepare(wsB, 'production');
              const other = await as(t, credential, route.method, inB.url, inB.payload);
              const ghost = randomUUID();
              const inGhost = inB.url.replace(wsB, ghost);
              const missing = await as(t, credential, route.method, inGhost, inB.payload);
              expect(errorShape(other, wsB), `${role} ${route.method} ${inB.url}`).toEqual(errorShape(missing, ghost));
              await inB.unchanged?.();
            }
          }
        }
      });

      it('an environment-restricted client gets the same 404 for another workspace’s environments', async () => {
        const stagingApp = await createClient(t, wsA, { role: 'app', environments: ['staging'] });
        const body = { scope: { type: 'job', id: 'j' }, plaintext: '' };
        for (const env of ['staging', 'production', 'no-such-env']) {
          expectError(await as(t, stagingApp.token, 'POST', `${envUrl(wsB, env)}/encrypt`, body), 404, 'workspace_not_found');
        }
      });

      it('the admin token gets the same code for a workspace that does not exist', async () => {
        for (const route of ROUTES.filter((r) => r.inWorkspace)) {
          const prepared = await route.prepare(wsA, 'production');
          const response = await as(t, t.token, route.method, prepared.url.replace(wsA, randomUUID()), prepared.payload);
          expectError(response, 404, 'workspace_not_found');
        }
      });

      it('ids of another workspace’s objects and clients are not found inside one’s own workspace', async () => {
        const objectB = await createObject(wsB, 'production');
        const clientB = await createTarget(wsB, 'production');
        const token = clients.admin.token;
        for (const method of ['GET', 'DELETE'] as const) {
          expectError(await as(t, token, method, `${envUrl(wsA, 'production')}/objects/${objectB.id}`), 404, 'object_not_found');
        }
        expectError(await as(t, token, 'PUT', `${envUrl(wsA, 'production')}/objects/${objectB.id}`, { value: 'x', expectedVersion: 1 }), 404, 'object_not_found');
        expectError(await as(t, token, 'GET', `${envUrl(wsA, 'production')}/objects/${objectB.id}/versions`), 404, 'object_not_found');
        await objectExists(wsB, 'production', objectB.id)();

        for (const [method, suffix, payload] of [
          ['GET', '', undefined],
          ['PATCH', '', { disabled: true }],
          ['DELETE', '', undefined],
          ['POST', '/tokens', { graceSeconds: 0 }],
        ] as const) {
          const response = await as(t, token, method, `${clientsUrl(wsA, clientB.id)}${suffix}`, payload);
          expectError(response, 404, 'client_not_found');
          expect(response.body).not.toContain('kst_');
        }
        await clientUnchanged(wsB, clientB.id, clientB.name)();
      });

      it('a client never appears in another workspace’s client list', async () => {
        const listB = await asOk<{ items: { id: string }[] }>(t, t.token, 'GET', `${clientsUrl(wsB)}?limit=1000`);
        const idsB = listB.items.map((c) => c.id);
        for (const role of ROLES) expect(idsB).not.toContain(clients[role].client.id);
      });
    });
  });
}
