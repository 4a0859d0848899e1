import { describe, expect, it } from 'vitest';
import { newId } from '../../../src/core/bytes.js';
import { StoreConflictError } from '../../../src/store/store.js';
import { newObject, objectVersion } from '../fixtures.js';
import type { ContractContext } from './context.js';

/** Vault objects: CRUD, name uniqueness, compare-and-set versions, pagination. */
export function objectContract(ctx: ContractContext): void {
  describe('vault objects', () => {
    it('create, read by id and by name, only within the environment', async () => {
      const env = await ctx.freshEnvironment();
      const other = await ctx.freshEnvironment();
      const { object, version } = newObject(env.id, 'db/password');
      await ctx.store.createObject(object, version);
      expect(await ctx.store.getObject(env.id, object.id)).toEqual(object);
      expect(await ctx.store.getObjectByName(env.id, 'db/password')).toEqual(object);
      expect(await ctx.store.getObjectVersion(object.id, 1)).toEqual(version);
      expect(await ctx.store.getObject(other.id, object.id)).toBeUndefined();
      expect(await ctx.store.getObjectByName(other.id, 'db/password')).toBeUndefined();
      expect(await ctx.store.getObject(env.id, newId())).toBeUndefined();
    });

    it('object names are unique per environment; a refused create leaves nothing behind', async () => {
      const env = await ctx.freshEnvironment();
      const other = await ctx.freshEnvironment();
      await ctx.store.createObject(...pair(newObject(env.id, 'api-key')));
      const duplicate = newObject(env.id, 'api-key');
      await expect(ctx.peer.createObject(duplicate.object, duplicate.version)).rejects.toBeInstanceOf(StoreConflictError);
      expect(await ctx.store.getObjectVersion(duplicate.object.id, 1)).toBeUndefined();
      await ctx.store.createObject(...pair(newObject(other.id, 'api-key')));
    });

    it('addObjectVersion is a compare-and-set', async () => {
      const env = await ctx.freshEnvironment();
      const { object, version } = newObject(env.id, 'cas');
      await ctx.store.createObject(object, version);
      const updatedAt = new Date(object.createdAt.getTime() + 1234);
      const v2 = objectVersion(object.id, 2, updatedAt);
      expect(await ctx.store.addObjectVersion(env.id, object.id, 1, v2, updatedAt)).toEqual({ ...object, version: 2, updatedAt });
      expect(await ctx.store.addObjectVersion(env.id, object.id, 1, objectVersion(object.id, 2), new Date())).toBeUndefined();
      expect(await ctx.store.addObjectVersion((await ctx.freshEnvironment()).id, object.id, 2, objectVersion(object.id, 3), new Date())).toBeUndefined();
      const missing = newId();
      expect(await ctx.store.addObjectVersion(env.id, missing, 2, objectVersion(missing, 3), new Date())).toBeUndefined();
      await expect(ctx.store.addObjectVersion(env.id, object.id, 2, objectVersion(object.id, 5), new Date())).rejects.toThrow(TypeError);
      expect(await ctx.store.getObjectVersion(object.id, 2)).toEqual(v2);
      expect((await ctx.store.listObjectVersions(object.id)).map((v) => v.version)).toEqual([2, 1]);
    });

    it('of 10 concurrent updates with the same expected version exactly one wins', async () => {
      const env = await ctx.freshEnvironment();
      const { object, version } = newObject(env.id, 'race');
      await ctx.store.createObject(object, version);
      const attempts = Array.from({ length: 10 }, () => objectVersion(object.id, 2));
      const results = await Promise.all(attempts.map((v, i) => (i % 2 ? ctx.peer : ctx.store).addObjectVersion(env.id, object.id, 1, v, new Date())));
      const winners = results.filter((r) => r !== undefined);
      expect(winners).toHaveLength(1);
      expect(winners[0]!.version).toBe(2);
      const stored = await ctx.store.listObjectVersions(object.id);
      expect(stored.map((v) => v.version)).toEqual([2, 1]);
      expect(attempts.filter((a) => a.dataKeyId === stored[0]!.dataKeyId)).toHaveLength(1);
    });

    it('deleteObject removes the object and its versions', async () => {
      const env = await ctx.freshEnvironment();
      const { object, version } = newObject(env.id, 'doomed');
      await ctx.store.createObject(object, version);
      await ctx.store.addObjectVersion(env.id, object.id, 1, objectVersion(object.id, 2), new Date());
      expect(await ctx.store.deleteObject((await ctx.freshEnvironment()).id, object.id)).toBe(false);
      expect(await ctx.store.deleteObject(env.id, object.id)).toBe(true);
      expect(await ctx.store.getObject(env.id, object.id)).toBeUndefined();
      expect(await ctx.store.getObjectVersion(object.id, 1)).toBeUndefined();
      expect(await ctx.store.listObjectVersions(object.id)).toEqual([]);
      expect(await ctx.store.deleteObject(env.id, object.id)).toBe(false);
      // The name is free again.
      await ctx.store.createObject(...pair(newObject(env.id, 'doomed')));
    });

    it('hostile cursors are invalid_request on every backend, never a database error', async () => {
      const env = await ctx.freshEnvironment();
      const cursor = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
      const objectCursors = [cursor(['\u0000']), cursor(['a\ud800']), cursor([1]), cursor(['a', 'b']), cursor({}), 'not base64!', 'x'.repeat(3000)];
      for (const bad of objectCursors) {
        await expect(ctx.store.listObjects(env.id, { limit: 5, cursor: bad })).rejects.toMatchObject({ code: 'invalid_request', field: 'cursor' });
      }
      const workspaceCursors = [cursor([9e15, newId()]), cursor([1, '\u0000']), cursor([1, 'not-a-uuid']), cursor([1.5, newId()]), cursor(['1', newId()])];
      for (const bad of workspaceCursors) {
        await expect(ctx.store.listWorkspaces({ limit: 5, cursor: bad })).rejects.toMatchObject({ code: 'invalid_request', field: 'cursor' });
      }
    });

    it('listObjects pages through every object once, in name order', async () => {
      const env = await ctx.freshEnvironment();
      const other = await ctx.freshEnvironment();
      await ctx.store.createObject(...pair(newObject(other.id, 'a-elsewhere')));
      const names = Array.from({ length: 25 }, (_, i) => `obj-${String(i).padStart(2, '0')}${i % 3 ? '/x' : ''}`);
      for (const name of [...names].sort(() => Math.random() - 0.5)) await ctx.store.createObject(...pair(newObject(env.id, name)));
      for (const limit of [10, 5, 25]) {
        const seen: string[] = [];
        let cursor: string | undefined;
        let last;
        do {
          last = await ctx.store.listObjects(env.id, { limit, cursor });
          expect(last.items.length).toBeLessThanOrEqual(limit);
          seen.push(...last.items.map((o) => o.name));
          cursor = last.nextCursor ?? undefined;
        } while (cursor !== undefined);
        expect(seen).toEqual([...names].sort());
        expect(last.items.length).toBe(limit === 10 ? 5 : limit);
      }
      expect(await ctx.store.listObjects((await ctx.freshEnvironment()).id, { limit: 10 })).toEqual({ items: [], nextCursor: null });
      await expect(ctx.store.listObjects(env.id, { limit: 10, cursor: '%%%' })).rejects.toThrow(/cursor/);
    });
  });
}

function pair(o: ReturnType<typeof newObject>): [ReturnType<typeof newObject>['object'], ReturnType<typeof newObject>['version']] {
  return [o.object, o.version];
}
