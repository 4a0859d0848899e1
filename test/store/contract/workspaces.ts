import { describe, expect, it } from 'vitest';
import { newId } from '../../../src/core/bytes.js';
import { StoreConflictError } from '../../../src/store/store.js';
import { newEnvironment, newWorkspace } from '../fixtures.js';
import type { ContractContext } from './context.js';

/** Settings, workspaces and environments. */
export function workspaceContract(ctx: ContractContext): void {
  describe('settings', () => {
    it('putSettingIfAbsent keeps the first value, putSetting overwrites', async () => {
      const name = `s-${newId()}`;
      expect(await ctx.store.getSetting(name)).toBeUndefined();
      expect(await ctx.store.putSettingIfAbsent(name, 'first')).toBe('first');
      expect(await ctx.store.putSettingIfAbsent(name, 'second')).toBe('first');
      expect(await ctx.peer.getSetting(name)).toBe('first');
      await ctx.store.putSetting(name, '');
      expect(await ctx.store.getSetting(name)).toBe('');
      await ctx.store.putSetting(`${name}-new`, 'v');
      expect(await ctx.store.getSetting(`${name}-new`)).toBe('v');
    });

    it('concurrent putSettingIfAbsent calls all answer the one stored value', async () => {
      const name = `s-${newId()}`;
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? ctx.peer : ctx.store).putSettingIfAbsent(name, `v${i}`)));
      expect(new Set(results).size).toBe(1);
      expect(await ctx.store.getSetting(name)).toBe(results[0]);
    });
  });

  describe('workspaces and environments', () => {
    it('createWorkspace stores the workspace, its first environment, CMK and EK', async () => {
      const { workspace, first } = newWorkspace('Acme', new Date(Date.UTC(2024, 1, 29, 23, 59, 59, 999)));
      await ctx.store.createWorkspace(workspace, first);
      expect(await ctx.store.getWorkspace(workspace.id)).toEqual(workspace);
      expect(await ctx.store.listEnvironments(workspace.id)).toEqual([first.environment]);
      expect(await ctx.store.getEnvironment(first.environment.id)).toEqual(first.environment);
      expect(await ctx.store.getEnvironmentByName(workspace.id, 'production')).toEqual(first.environment);
      expect(await ctx.store.getEnvironmentByName(workspace.id, 'staging')).toBeUndefined();
      expect(await ctx.store.getCmk(first.cmk.id)).toEqual(first.cmk);
      expect(await ctx.store.getActiveCmk(first.environment.id)).toEqual(first.cmk);
      expect(await ctx.store.getActiveEk(first.environment.id)).toEqual(first.ek);
      expect(await ctx.store.getKey(first.environment.id, first.ek.id)).toEqual(first.ek);
      expect(await ctx.store.getWorkspace(newId())).toBeUndefined();
      expect(await ctx.store.getCmk(newId())).toBeUndefined();
      expect(await ctx.store.getActiveCmk(newId())).toBeUndefined();
    });

    it('createWorkspace is atomic: a failing EK insert leaves no workspace, environment or CMK', async () => {
      const a = newWorkspace();
      await ctx.store.createWorkspace(a.workspace, a.first);
      const b = newWorkspace();
      const clashing = { ...b.first, ek: { ...b.first.ek, id: a.first.ek.id } };
      await expect(ctx.store.createWorkspace(b.workspace, clashing)).rejects.toBeInstanceOf(StoreConflictError);
      expect(await ctx.store.getWorkspace(b.workspace.id)).toBeUndefined();
      expect(await ctx.store.getEnvironment(b.first.environment.id)).toBeUndefined();
      expect(await ctx.store.getCmk(b.first.cmk.id)).toBeUndefined();
      // The same records without the clash go in afterwards.
      await ctx.store.createWorkspace(b.workspace, b.first);
      expect(await ctx.store.getWorkspace(b.workspace.id)).toEqual(b.workspace);
    });

    it('createWorkspace refuses a duplicate id and records that contradict each other', async () => {
      const a = newWorkspace();
      await ctx.store.createWorkspace(a.workspace, a.first);
      const again = newWorkspace();
      await expect(ctx.store.createWorkspace(a.workspace, again.first)).rejects.toThrow(TypeError);
      const sameId = newEnvironment(a.workspace.id);
      await expect(ctx.store.createWorkspace(a.workspace, sameId)).rejects.toBeInstanceOf(StoreConflictError);
      expect(await ctx.store.getEnvironment(sameId.environment.id)).toBeUndefined();
      const wrongParent = { ...again.first, ek: { ...again.first.ek, parentId: newId() } };
      await expect(ctx.store.createWorkspace(again.workspace, wrongParent)).rejects.toThrow(TypeError);
      expect(await ctx.store.getWorkspace(again.workspace.id)).toBeUndefined();
    });

    it('environment names are unique per workspace, not across workspaces', async () => {
      const a = newWorkspace();
      const b = newWorkspace();
      await ctx.store.createWorkspace(a.workspace, a.first);
      await ctx.store.createWorkspace(b.workspace, b.first);
      const stagingA = newEnvironment(a.workspace.id, 'staging', new Date(a.workspace.createdAt.getTime() + 1));
      const stagingB = newEnvironment(b.workspace.id, 'staging');
      await ctx.store.createEnvironment(stagingA);
      await ctx.store.createEnvironment(stagingB);
      const duplicate = newEnvironment(a.workspace.id, 'staging');
      await expect(ctx.peer.createEnvironment(duplicate)).rejects.toBeInstanceOf(StoreConflictError);
      expect(await ctx.store.getCmk(duplicate.cmk.id)).toBeUndefined();
      expect(await ctx.store.getKey(duplicate.environment.id, duplicate.ek.id)).toBeUndefined();
      expect(await ctx.store.listEnvironments(a.workspace.id)).toEqual([a.first.environment, stagingA.environment]);
      expect(await ctx.store.getEnvironmentByName(b.workspace.id, 'staging')).toEqual(stagingB.environment);
      expect(await ctx.store.getActiveCmk(stagingB.environment.id)).toEqual(stagingB.cmk);
    });

    it('listWorkspaces pages through every workspace once, in (createdAt, id) order', async () => {
      const own = await (await ctx.freshLocation()).open();
      try {
        expect(await own.listWorkspaces({ limit: 5 })).toEqual({ items: [], nextCursor: null });
        const base = Date.UTC(2025, 0, 1);
        // Equal timestamps in threes, so the id has to break ties.
        const created = Array.from({ length: 12 }, (_, i) => newWorkspace(`w${i}`, new Date(base + Math.floor(i / 3) * 1000 + 7)));
        for (const w of [...created].reverse()) await own.createWorkspace(w.workspace, w.first);
        const expected = created.map((w) => w.workspace).sort((x, y) => x.createdAt.getTime() - y.createdAt.getTime() || (x.id < y.id ? -1 : 1));
        const seen = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await own.listWorkspaces({ limit: 5, cursor });
          expect(page.items.length).toBeLessThanOrEqual(5);
          seen.push(...page.items);
          cursor = page.nextCursor ?? undefined;
          pages++;
        } while (cursor !== undefined);
        expect(pages).toBe(3);
        expect(seen).toEqual(expected);
        const exact = await own.listWorkspaces({ limit: 12 });
        expect(exact.items).toHaveLength(12);
        expect(exact.nextCursor).toBeNull();
        await expect(own.listWorkspaces({ limit: 5, cursor: 'not a cursor' })).rejects.toThrow(/cursor/);
        await expect(own.listWorkspaces({ limit: 0 })).rejects.toThrow(TypeError);
      } finally {
        await own.close();
      }
    });
  });
}
