import { describe, expect, it } from 'vitest';
import { auditAppend, auditDraft, clientToken, cmkHealth, key, newClient, newObject, newWorkspace, objectVersion, wrappedKey } from '../fixtures.js';
import type { ContractContext } from './context.js';

/** Exact round trips of Dates and Buffers; reopening and migrating. */
export function persistenceContract(ctx: ContractContext): void {
  describe('round trips', () => {
    it('Dates round-trip exactly at millisecond precision', async () => {
      for (const when of [new Date(Date.UTC(1999, 11, 31, 23, 59, 59, 999)), new Date(1), new Date(Date.UTC(2100, 5, 15, 12, 0, 0, 1))]) {
        const { workspace, first } = newWorkspace('dates', when);
        await ctx.store.createWorkspace(workspace, first);
        expect((await ctx.store.getWorkspace(workspace.id))!.createdAt.getTime()).toBe(when.getTime());
        expect((await ctx.store.getActiveEk(first.environment.id))!.createdAt.getTime()).toBe(when.getTime());
        const { object, version } = newObject(first.environment.id, 'o', when);
        await ctx.store.createObject(object, version);
        expect(await ctx.store.getObject(first.environment.id, object.id)).toEqual(object);
        expect((await ctx.store.getObjectVersion(object.id, 1))!.createdAt.getTime()).toBe(when.getTime());
      }
    });

    it('Buffers round-trip byte-exact, zero bytes and empty buffers included', async () => {
      const env = await ctx.freshEnvironment();
      const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const zeros = Buffer.concat([Buffer.alloc(8), wrappedKey(), Buffer.alloc(8)]);
      const k = key(env.id, 'context', { scopeId: 'a'.repeat(64), wrapped: zeros });
      expect((await ctx.store.insertKeyIfAbsent(k)).wrapped.equals(zeros)).toBe(true);
      expect((await ctx.store.getKey(env.id, k.id))!.wrapped.equals(zeros)).toBe(true);
      const { object } = newObject(env.id, 'bytes');
      const version = { ...objectVersion(object.id, 1), wrappedDataKey: Buffer.alloc(0), ciphertext: everyByte };
      await ctx.store.createObject(object, version);
      const stored = (await ctx.store.getObjectVersion(object.id, 1))!;
      expect(Buffer.isBuffer(stored.ciphertext)).toBe(true);
      expect(stored.ciphertext.equals(everyByte)).toBe(true);
      expect(stored.wrappedDataKey.length).toBe(0);
    });
  });

  describe('opening and migrating', () => {
    it('reopening keeps the data; concurrent and repeated opens migrate once', async () => {
      const l = await ctx.freshLocation();
      const firstStore = await l.open();
      const { workspace, first } = newWorkspace('durable');
      await firstStore.createWorkspace(workspace, first);
      await firstStore.putSetting('root-check', 'abc');
      await firstStore.close();
      const reopened = await Promise.all([l.open(), l.open(), l.open()]);
      try {
        for (const s of reopened) {
          expect(await s.getWorkspace(workspace.id)).toEqual(workspace);
          expect(await s.getSetting('root-check')).toBe('abc');
        }
      } finally {
        for (const s of reopened) await s.close();
      }
      const versions = await l.appliedMigrations();
      expect(versions.length).toBeGreaterThan(0);
      expect(versions).toEqual(versions.map((_, i) => i + 1));
    });

    it('a database an older build migrated (version 1 only) is upgraded on open', async () => {
      const l = await ctx.freshLocation();
      await l.migrateOnly(1);
      expect(await l.appliedMigrations()).toEqual([1]);
      const { workspace, first } = newWorkspace('from v1');
      const { object, version } = newObject(first.environment.id, 'kept');
      const store = await l.open();
      try {
        expect(await l.appliedMigrations()).toEqual([1, 2, 3, 4, 5]);
        await store.createWorkspace(workspace, first);
        await store.createObject(object, version);
        // The tables of migration 2 are there and work.
        const client = newClient(workspace.id, 'after-upgrade');
        await store.createClient(client, clientToken(client.id), auditAppend(auditDraft(workspace.id)));
        expect((await store.getClient(workspace.id, client.id))?.name).toBe('after-upgrade');
        expect((await store.getAuditHead(workspace.id))?.seq).toBe(1);
        expect(await store.getObject(first.environment.id, object.id)).toEqual(object);
        // And the table of migration 3.
        const health = cmkHealth(first.cmk.id, 'healthy', new Date());
        expect(await store.putCmkHealth(health)).toEqual(health);
        // And the column and index of migration 4.
        const job = key(first.environment.id, 'job', { scopeId: 'after-upgrade' });
        expect((await store.insertKeyIfAbsent(job)).destroyAt).toBeNull();
        const at = new Date();
        const change = { environmentId: first.environment.id, keyId: job.id, from: ['active'] as const, to: 'scheduled-destruction' as const, destroyAt: at };
        expect((await store.setKeyState(change))?.destroyAt).toEqual(at);
        expect((await store.listDueDestructions(at, 10)).map((k) => k.id)).toEqual([job.id]);
        // And the table and index of migration 5.
        expect(await store.getRepack(first.environment.id)).toBeUndefined();
        expect((await store.listKeysUnder(first.environment.id, job.parentId, 10)).map((k) => k.id)).toEqual([job.id]);
      } finally {
        await store.close();
      }
    });

    it('concurrent first opens of an empty database all succeed', async () => {
      const l = await ctx.freshLocation();
      const stores = await Promise.all(Array.from({ length: 4 }, () => l.open()));
      for (const s of stores) await s.close();
      expect((await l.appliedMigrations()).length).toBeGreaterThan(0);
    });
  });
}
