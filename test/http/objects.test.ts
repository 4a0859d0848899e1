import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createWorkspace, envUrl, expectError, keyStatus, ok } from '../support/http-helpers.js';
import { openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

/** Vault objects (DESIGN §4) over HTTP, on every store. */
for (const store of testStores()) {
  describe(`vault objects over HTTP (${store})`, () => {
    let t: TestKeystrata;
    let ws: string;
    let objects: string;
    beforeAll(async () => {
      t = await openTestKeystrata({ store });
      ws = (await createWorkspace(t, 'vault')).id;
      objects = `${envUrl(ws)}/objects`;
    });
    afterAll(async () => {
      await t?.destroy();
    });

    const create = (body: Record<string, unknown>) => ok(t, 'POST', objects, body, 201);

    it('creates an object without echoing its value, and reads it by id and by name', async () => {
      const value = 'postgres://app:s3cr3t-VALUE@db/prod';
      const response = await call(t, 'POST', objects, { name: 'db-url', value, context: { organization_id: 'org_1' }, metadata: { owner: 'team-a', n: 3 } });
      expect(response.statusCode).toBe(201);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.body).not.toContain('s3cr3t-VALUE');
      const created = response.json();
      expect(created).not.toHaveProperty('value');
      expect(created).toMatchObject({ name: 'db-url', version: 1, context: { organization_id: 'org_1' }, metadata: { owner: 'team-a', n: 3 } });
      expect(created.createdAt).toBe(created.updatedAt);

      const byId = await ok(t, 'GET', `${objects}/${created.id}`, undefined);
      expect(byId).toEqual({ ...created, value });
      const byName = await ok(t, 'GET', `${objects}?name=db-url`, undefined);
      expect(byName).toEqual(byId);
    });

    it('keeps unicode, empty and large values intact', async () => {
      for (const [name, value] of [
        ['unicode', 'pässwörd — 秘密 🔑'],
        ['empty', ''],
        ['large', 'x'.repeat(200_000)],
      ]) {
        const created = await create({ name: `value-${name}`, value, context: { k: 'v' } });
        expect((await ok(t, 'GET', `${objects}/${created.id}`, undefined)).value).toBe(value);
      }
    });

    it('lists 25 objects 10 at a time: every object exactly once, without values', async () => {
      const other = (await createWorkspace(t, 'listing')).id;
      const base = `${envUrl(other)}/objects`;
      const names = Array.from({ length: 25 }, (_, i) => `item-${String(i).padStart(2, '0')}`);
      for (const name of names) await ok(t, 'POST', base, { name, value: `v-${name}`, context: { list: 'yes' } }, 201);

      const seen: string[] = [];
      const sizes: number[] = [];
      let cursor: string | null = null;
      do {
        const url: string = `${base}?limit=10${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
        const page: { items: { name: string }[]; nextCursor: string | null } = await ok(t, 'GET', url, undefined);
        for (const item of page.items) expect(item).not.toHaveProperty('value');
        sizes.push(page.items.length);
        seen.push(...page.items.map((o) => o.name));
        cursor = page.nextCursor;
      } while (cursor !== null && sizes.length < 10);
      expect(sizes).toEqual([10, 10, 5]);
      expect([...seen].sort()).toEqual(names);
      expect(new Set(seen).size).toBe(25);
    });

    it('updates with expectedVersion, keeps versions, and reads an old version', async () => {
      const created = await create({ name: 'api-key', value: 'first', context: { svc: 'a' } });
      const updated = await ok(t, 'PUT', `${objects}/${created.id}`, { value: 'second', expectedVersion: 1 });
      expect(updated).toMatchObject({ id: created.id, version: 2, name: 'api-key' });
      expect(updated).not.toHaveProperty('value');
      await ok(t, 'PUT', `${objects}/${created.id}`, { value: 'third', expectedVersion: 2 });

      expect((await ok(t, 'GET', `${objects}/${created.id}`, undefined)).value).toBe('third');
      const versions = await ok(t, 'GET', `${objects}/${created.id}/versions`, undefined);
      expect(versions.items.map((v: { version: number }) => v.version)).toEqual([3, 2, 1]);
      for (const v of versions.items) expect(Date.parse(v.createdAt)).not.toBeNaN();

      const v1 = await ok(t, 'GET', `${objects}/${created.id}/versions/1`, undefined);
      expect(v1).toMatchObject({ id: created.id, version: 1, value: 'first' });
      expect((await ok(t, 'GET', `${objects}/${created.id}/versions/2`, undefined)).value).toBe('second');
    });

    it('rejects a stale expectedVersion with 409 version_conflict and the current version', async () => {
      const created = await create({ name: 'stale', value: 'v1', context: { svc: 'a' } });
      await ok(t, 'PUT', `${objects}/${created.id}`, { value: 'v2', expectedVersion: 1 });
      const stale = expectError(await call(t, 'PUT', `${objects}/${created.id}`, { value: 'lost', expectedVersion: 1 }), 409, 'version_conflict');
      expect(stale.details).toEqual({ currentVersion: 2 });
      const ahead = expectError(await call(t, 'PUT', `${objects}/${created.id}`, { value: 'lost', expectedVersion: 7 }), 409, 'version_conflict');
      expect(ahead.details).toEqual({ currentVersion: 2 });
      expect((await ok(t, 'GET', `${objects}/${created.id}`, undefined)).value).toBe('v2');
    });

    it('lets exactly one of 10 concurrent updates with the same expectedVersion win', async () => {
      const created = await create({ name: 'contended', value: 'v1', context: { svc: 'race' } });
      const responses = await Promise.all(
        Array.from({ length: 10 }, (_, i) => call(t, 'PUT', `${objects}/${created.id}`, { value: `writer-${i}`, expectedVersion: 1 })),
      );
      const statuses = responses.map((r) => r.statusCode);
      expect(statuses.filter((s) => s === 200)).toHaveLength(1);
      expect(statuses.filter((s) => s === 409)).toHaveLength(9);
      for (const response of responses.filter((r) => r.statusCode === 409)) {
        expect(expectError(response, 409, 'version_conflict').details).toEqual({ currentVersion: 2 });
      }
      const winner = responses.findIndex((r) => r.statusCode === 200);
      const read = await ok(t, 'GET', `${objects}/${created.id}`, undefined);
      expect(read).toMatchObject({ version: 2, value: `writer-${winner}` });
      const versions = await ok(t, 'GET', `${objects}/${created.id}/versions`, undefined);
      expect(versions.items.map((v: { version: number }) => v.version)).toEqual([2, 1]);
    });

    it('deletes: 204, then 404 everywhere', async () => {
      const created = await create({ name: 'doomed', value: 'bye', context: { svc: 'a' } });
      await ok(t, 'PUT', `${objects}/${created.id}`, { value: 'bye 2', expectedVersion: 1 });
      const response = await call(t, 'DELETE', `${objects}/${created.id}`);
      expect(response.statusCode).toBe(204);
      expect(response.body).toBe('');
      expectError(await call(t, 'GET', `${objects}/${created.id}`), 404, 'object_not_found');
      expectError(await call(t, 'GET', `${objects}?name=doomed`), 404, 'object_not_found');
      expectError(await call(t, 'GET', `${objects}/${created.id}/versions`), 404, 'object_not_found');
      expectError(await call(t, 'GET', `${objects}/${created.id}/versions/1`), 404, 'object_not_found');
      expectError(await call(t, 'DELETE', `${objects}/${created.id}`), 404, 'object_not_found');
      expectError(await call(t, 'PUT', `${objects}/${created.id}`, { value: 'x', expectedVersion: 2 }), 404, 'object_not_found');
      // The name is free again.
      await create({ name: 'doomed', value: 'again', context: { svc: 'a' } });
    });

    it('rejects a duplicate name with 409 already_exists, per environment', async () => {
      await create({ name: 'unique', value: 'a', context: { svc: 'a' } });
      expectError(await call(t, 'POST', objects, { name: 'unique', value: 'b', context: { svc: 'other' } }), 409, 'already_exists');
      expect((await ok(t, 'GET', `${objects}?name=unique`, undefined)).value).toBe('a');
      await ok(t, 'POST', `/v1/workspaces/${ws}/environments`, { name: 'dup-env' }, 201);
      await ok(t, 'POST', `${envUrl(ws, 'dup-env')}/objects`, { name: 'unique', value: 'c', context: { svc: 'a' } }, 201);
    });

    it('gives distinct contexts distinct context keys, and shares one for the same context in any key order', async () => {
      const fresh = (await createWorkspace(t, 'contexts')).id;
      const base = `${envUrl(fresh)}/objects`;
      const contextCount = async () => (await keyStatus(t, fresh)).counts.context as number;
      expect(await contextCount()).toBe(0);
      await ok(t, 'POST', base, { name: 'a', value: '1', context: { org: 'o1', region: 'eu' } }, 201);
      expect(await contextCount()).toBe(1);
      await ok(t, 'POST', base, { name: 'b', value: '2', context: { region: 'eu', org: 'o1' } }, 201);
      expect(await contextCount()).toBe(1);
      await ok(t, 'POST', base, { name: 'c', value: '3', context: { org: 'o2', region: 'eu' } }, 201);
      expect(await contextCount()).toBe(2);
      await ok(t, 'POST', base, { name: 'd', value: '4', context: { org: 'o1' } }, 201);
      expect(await contextCount()).toBe(3);
      // An update writes a new data key under the same context key.
      const a = await ok(t, 'GET', `${base}?name=a`, undefined);
      await ok(t, 'PUT', `${base}/${a.id}`, { value: '1b', expectedVersion: 1 });
      expect(await contextCount()).toBe(3);

      // The stored objects point at the context key their context names.
      const envId = (await ok(t, 'GET', `/v1/workspaces/${fresh}`, undefined)).environments[0].id;
      const record = async (name: string) => (await t.ks.store.getObjectByName(envId, name))!;
      expect((await record('a')).contextKeyId).toBe((await record('b')).contextKeyId);
      expect((await record('a')).contextKeyId).not.toBe((await record('c')).contextKeyId);
      expect((await record('a')).contextKeyId).not.toBe((await record('d')).contextKeyId);
      // The canonical context is returned, whatever order it was sent in.
      expect(Object.keys((await ok(t, 'GET', `${base}?name=b`, undefined)).context)).toEqual(['org', 'region']);
    });

    it('does not let another environment or workspace read an object by id', async () => {
      const created = await create({ name: 'prod-only', value: 'prod secret', context: { svc: 'a' } });
      await ok(t, 'POST', `/v1/workspaces/${ws}/environments`, { name: 'qa' }, 201);
      const otherEnv = `${envUrl(ws, 'qa')}/objects`;
      expectError(await call(t, 'GET', `${otherEnv}/${created.id}`), 404, 'object_not_found');
      expectError(await call(t, 'GET', `${otherEnv}/${created.id}/versions/1`), 404, 'object_not_found');
      expectError(await call(t, 'GET', `${otherEnv}?name=prod-only`), 404, 'object_not_found');
      expectError(await call(t, 'PUT', `${otherEnv}/${created.id}`, { value: 'x', expectedVersion: 1 }), 404, 'object_not_found');
      expectError(await call(t, 'DELETE', `${otherEnv}/${created.id}`), 404, 'object_not_found');
      const otherWs = (await createWorkspace(t, 'stranger')).id;
      expectError(await call(t, 'GET', `${envUrl(otherWs)}/objects/${created.id}`), 404, 'object_not_found');
      // Still intact where it belongs.
      expect((await ok(t, 'GET', `${objects}/${created.id}`, undefined)).value).toBe('prod secret');
    });
  });
}
