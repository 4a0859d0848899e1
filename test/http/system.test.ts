import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Body } from '../support/http-helpers.js';
import { openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

/** Every route of the HTTP contract (docs/api-contract-draft.md), as OpenAPI paths. */
const CONTRACT: Readonly<Record<string, readonly string[]>> = {
  '/healthz': ['get'],
  '/v1/workspaces': ['get', 'post'],
  '/v1/workspaces/{ws}': ['get'],
  '/v1/workspaces/{ws}/environments': ['post'],
  '/v1/workspaces/{ws}/environments/{env}/keys': ['get'],
  '/v1/workspaces/{ws}/environments/{env}/cmk': ['get'],
  '/v1/workspaces/{ws}/environments/{env}/encrypt': ['post'],
  '/v1/workspaces/{ws}/environments/{env}/decrypt': ['post'],
  '/v1/workspaces/{ws}/environments/{env}/objects': ['get', 'post'],
  '/v1/workspaces/{ws}/environments/{env}/objects/{id}': ['delete', 'get', 'put'],
  '/v1/workspaces/{ws}/environments/{env}/objects/{id}/versions': ['get'],
  '/v1/workspaces/{ws}/environments/{env}/objects/{id}/versions/{version}': ['get'],
};

const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace']);

for (const store of testStores()) {
  describe(`/healthz and /openapi.json (${store})`, () => {
    let t: TestKeystrata;
    beforeAll(async () => {
      t = await openTestKeystrata({ store });
    });
    afterAll(async () => {
      await t?.destroy();
    });

    it('/healthz answers without authentication and names the store', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/healthz' });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ status: 'ok', store });
      // A token does not change the answer, and a wrong one is not an error here.
      const withBadToken = await t.app.inject({ method: 'GET', url: '/healthz', headers: { authorization: 'Bearer nope' } });
      expect(withBadToken.statusCode).toBe(200);
    });

    it('/openapi.json is a valid OpenAPI 3 document with every route of the contract', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/openapi.json' });
      expect(response.statusCode).toBe(200);
      expect(String(response.headers['content-type'])).toMatch(/^application\/json/);
      const doc = response.json();
      expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
      expect(typeof doc.info.title).toBe('string');
      expect(typeof doc.info.version).toBe('string');
      expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });

      for (const [path, methods] of Object.entries(CONTRACT)) {
        expect(doc.paths, path).toHaveProperty([path]);
        const documented = Object.keys(doc.paths[path]).filter((m) => METHODS.has(m)).sort();
        expect(documented, path).toEqual(expect.arrayContaining([...methods]));
      }

      // Structural validity: every operation has responses; every path parameter is declared
      // and required; every $ref resolves inside the document.
      for (const [path, item] of Object.entries<Record<string, Body>>(doc.paths)) {
        const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
        for (const [method, operation] of Object.entries<Body>(item)) {
          if (!METHODS.has(method)) continue;
          expect(Object.keys(operation.responses ?? {}).length, `${method} ${path}`).toBeGreaterThan(0);
          const declared = (operation.parameters ?? []).filter((p: Body) => p.in === 'path');
          expect(declared.map((p: Body) => p.name).sort(), `${method} ${path}`).toEqual([...templated].sort());
          for (const p of declared) expect(p.required).toBe(true);
        }
      }
      const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]!);
      expect(refs.length).toBeGreaterThan(0);
      for (const ref of refs) {
        expect(ref).toMatch(/^#\/components\/schemas\//);
        expect(doc.components.schemas, ref).toHaveProperty([ref.split('/').pop()!]);
      }
      // The document describes the body of encrypt as the server validates it.
      const encrypt = doc.paths['/v1/workspaces/{ws}/environments/{env}/encrypt'].post;
      expect(encrypt.requestBody.content['application/json'].schema.required).toEqual(expect.arrayContaining(['scope', 'plaintext']));
      expect(doc.components.schemas.Error.properties.error.required).toEqual(expect.arrayContaining(['code', 'message', 'requestId']));
    });

    it('/openapi.json needs no token', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/openapi.json', headers: {} });
      expect(response.statusCode).toBe(200);
    });
  });
}
