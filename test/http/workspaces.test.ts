import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createWorkspace, expectError, ok } from '../support/http-helpers.js';
import { openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

for (const store of testStores()) {
  describe(`workspaces over HTTP (${store})`, () => {
    let t: TestKeystrata;
    beforeAll(async () => {
      t = await openTestKeystrata({ store });
    });
    afterAll(async () => {
      await t?.destroy();
    });

    it('creates a workspace with a "production" environment, and reads it back', async () => {
      const created = await createWorkspace(t, 'acme corp');
      expect(created.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(created.name).toBe('acme corp');
      expect(created.environments.map((e) => e.name)).toEqual(['production']);

      const read = await ok(t, 'GET', `/v1/workspaces/${created.id}`, undefined);
      expect(read).toMatchObject({ id: created.id, name: 'acme corp' });
      expect(read.environments).toHaveLength(1);
      expect(read.environments[0]).toMatchObject({ id: created.environments[0]!.id, name: 'production' });
      expect(Date.parse(read.createdAt)).not.toBeNaN();
    });

    it('lists workspaces page by page, each exactly once', async () => {
      const own = new Set<string>();
      for (let i = 0; i < 7; i++) own.add((await createWorkspace(t, `paged-${i}`)).id);
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query: string = cursor === null ? '?limit=3' : `?limit=3&cursor=${encodeURIComponent(cursor)}`;
        const page: { items: { id: string; name: string }[]; nextCursor: string | null } = await ok(t, 'GET', `/v1/workspaces${query}`, undefined);
        expect(page.items.length).toBeLessThanOrEqual(3);
        for (const item of page.items) expect(item).not.toHaveProperty('environments');
        seen.push(...page.items.map((w) => w.id));
        cursor = page.nextCursor;
        pages += 1;
        expect(pages).toBeLessThan(20);
      } while (cursor !== null);
      expect(new Set(seen).size).toBe(seen.length);
      for (const id of own) expect(seen).toContain(id);
      expect(pages).toBeGreaterThanOrEqual(3);
    });

    it('answers 404 workspace_not_found for an unknown workspace', async () => {
      const unknown = randomUUID();
      const error = expectError(await call(t, 'GET', `/v1/workspaces/${unknown}`), 404, 'workspace_not_found');
      expect(error.message).toContain(unknown);
      expectError(await call(t, 'POST', `/v1/workspaces/${unknown}/environments`, { name: 'staging' }), 404, 'workspace_not_found');
      expectError(await call(t, 'GET', `/v1/workspaces/${unknown}/environments/production/keys`), 404, 'workspace_not_found');
    });

    it('adds an environment, rejects a duplicate with 409 already_exists', async () => {
      const ws = await createWorkspace(t, 'envs');
      const staging = await ok(t, 'POST', `/v1/workspaces/${ws.id}/environments`, { name: 'staging' }, 201);
      expect(staging).toMatchObject({ name: 'staging' });
      expect(staging.id).not.toBe(ws.environments[0]!.id);

      const read = await ok(t, 'GET', `/v1/workspaces/${ws.id}`, undefined);
      expect(read.environments.map((e: { name: string }) => e.name).sort()).toEqual(['production', 'staging']);

      expectError(await call(t, 'POST', `/v1/workspaces/${ws.id}/environments`, { name: 'staging' }), 409, 'already_exists');
      expectError(await call(t, 'POST', `/v1/workspaces/${ws.id}/environments`, { name: 'production' }), 409, 'already_exists');
      // The same name in another workspace is fine: names are unique per workspace only.
      const other = await createWorkspace(t, 'other');
      await ok(t, 'POST', `/v1/workspaces/${other.id}/environments`, { name: 'staging' }, 201);
    });

    it('gives every environment its own CMK and EK', async () => {
      const ws = await createWorkspace(t, 'isolated');
      await ok(t, 'POST', `/v1/workspaces/${ws.id}/environments`, { name: 'dev' }, 201);
      const prod = await ok(t, 'GET', `/v1/workspaces/${ws.id}/environments/production/keys`, undefined);
      const dev = await ok(t, 'GET', `/v1/workspaces/${ws.id}/environments/dev/keys`, undefined);
      expect(prod.cmk.id).not.toBe(dev.cmk.id);
      expect(prod.ek.id).not.toBe(dev.ek.id);
      expect(prod.cmk.provider).toBe('platform');
    });

    it.each([
      ['upper case', 'Staging'],
      ['a space', 'my env'],
      ['leading dash', '-dev'],
      ['empty', ''],
      ['too long', 'a'.repeat(64)],
      ['a slash', 'a/b'],
    ])('rejects an environment name with %s: 400 field name', async (_why, name) => {
      const ws = await createWorkspace(t, 'names');
      const error = expectError(await call(t, 'POST', `/v1/workspaces/${ws.id}/environments`, { name }), 400, 'invalid_request');
      expect(error.field).toBe('name');
    });

    it('rejects bad workspace bodies with the field named', async () => {
      expect(expectError(await call(t, 'POST', '/v1/workspaces', {}), 400, 'invalid_request').field).toBe('name');
      expect(expectError(await call(t, 'POST', '/v1/workspaces', { name: 42 }), 400, 'invalid_request').field).toBe('name');
      expect(expectError(await call(t, 'POST', '/v1/workspaces', { name: 'x', extra: true }), 400, 'invalid_request').field).toBe('extra');
      expect(expectError(await call(t, 'GET', '/v1/workspaces/not-a-uuid'), 400, 'invalid_request').field).toBe('ws');
    });
  });
}
