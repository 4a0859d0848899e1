import { describe, expect, it } from 'vitest';
import { newId } from '../../../src/core/bytes.js';
import { StoreConflictError } from '../../../src/store/store.js';
import { key } from '../fixtures.js';
import type { ContractContext } from './context.js';

/** Keys of the hierarchy and the uniqueness rules the database enforces for them. */
export function keyContract(ctx: ContractContext): void {
  describe('keys', () => {
    it('getKey finds a key only in its own environment', async () => {
      const env = await ctx.freshEnvironment();
      const other = await ctx.freshEnvironment();
      const k = key(env.id, 'connection', { scopeId: 'conn-1' });
      expect(await ctx.store.insertKeyIfAbsent(k)).toEqual(k);
      expect(await ctx.store.getKey(env.id, k.id)).toEqual(k);
      expect(await ctx.store.getKey(other.id, k.id)).toBeUndefined();
      expect(await ctx.store.getKey(env.id, newId())).toBeUndefined();
    });

    it('20 concurrent inserts of the same hourly key from two nodes store exactly one', async () => {
      const env = await ctx.freshEnvironment();
      const hour = 1_767_225_600;
      const candidates = Array.from({ length: 20 }, () => key(env.id, 'hourly', { hourStart: hour }));
      const results = await Promise.all(candidates.map((k, i) => (i % 2 ? ctx.peer : ctx.store).insertKeyIfAbsent(k)));
      const winnerId = results[0]!.id;
      expect(results.every((r) => r.id === winnerId)).toBe(true);
      const winner = candidates.find((c) => c.id === winnerId)!;
      expect(results[0]).toEqual(winner);
      expect(await ctx.store.getHourlyKey(env.id, hour)).toEqual(winner);
      expect((await ctx.store.keyStats(env.id)).counts.hourly).toBe(1);
      expect(await ctx.store.getHourlyKey(env.id, hour + 3600)).toBeUndefined();
    });

    it('one key per job, connection and context scope; kinds and environments do not collide', async () => {
      const env = await ctx.freshEnvironment();
      const other = await ctx.freshEnvironment();
      for (const kind of ['job', 'connection', 'context'] as const) {
        const a = key(env.id, kind, { scopeId: 'scope-1' });
        const results = await Promise.all([a, key(env.id, kind, { scopeId: 'scope-1' }), key(env.id, kind, { scopeId: 'scope-1' })]
          .map((k, i) => (i % 2 ? ctx.peer : ctx.store).insertKeyIfAbsent(k)));
        expect(new Set(results.map((r) => r.id)).size).toBe(1);
        expect(await ctx.store.findScopedKey(env.id, kind, 'scope-1')).toEqual(results[0]);
        expect(await ctx.store.findScopedKey(env.id, kind, 'scope-2')).toBeUndefined();
        expect(await ctx.store.findScopedKey(env.id, kind, null)).toBeUndefined();
        const elsewhere = key(other.id, kind, { scopeId: 'scope-1' });
        expect(await ctx.store.insertKeyIfAbsent(elsewhere)).toEqual(elsewhere);
      }
      const { counts } = await ctx.store.keyStats(env.id);
      expect(counts).toEqual({ ek: 1, hourly: 0, job: 1, connection: 1, log: 0, context: 1 });
    });

    it('one active log key per environment; retired log keys may accumulate', async () => {
      const env = await ctx.freshEnvironment();
      const active = key(env.id, 'log');
      expect(await ctx.store.insertKeyIfAbsent(active)).toEqual(active);
      expect(await ctx.peer.insertKeyIfAbsent(key(env.id, 'log'))).toEqual(active);
      const retired = key(env.id, 'log', { state: 'decrypt-only' });
      expect(await ctx.store.insertKeyIfAbsent(retired)).toEqual(retired);
      expect(await ctx.store.findScopedKey(env.id, 'log', null)).toEqual(active);
      expect((await ctx.store.keyStats(env.id)).counts.log).toBe(2);
    });

    it('one active EK per environment', async () => {
      const env = await ctx.freshEnvironment();
      const ek = await ctx.store.getActiveEk(env.id);
      expect(await ctx.store.insertKeyIfAbsent(key(env.id, 'ek'))).toEqual(ek);
      expect(await ctx.store.findScopedKey(env.id, 'ek', null)).toEqual(ek);
      expect((await ctx.store.keyStats(env.id)).counts.ek).toBe(1);
    });

    it('a retried insert returns the stored key; an id reused for another key is a conflict', async () => {
      const env = await ctx.freshEnvironment();
      const retired = key(env.id, 'log', { state: 'decrypt-only' });
      await ctx.store.insertKeyIfAbsent(retired);
      expect(await ctx.store.insertKeyIfAbsent(retired)).toEqual(retired);
      await expect(ctx.store.insertKeyIfAbsent(key(env.id, 'job', { id: retired.id, scopeId: 'j' }))).rejects.toBeInstanceOf(StoreConflictError);
      await expect(ctx.store.insertKeyIfAbsent(key(env.id, 'hourly'))).rejects.toThrow(TypeError);
      await expect(ctx.store.insertKeyIfAbsent(key(env.id, 'job'))).rejects.toThrow(TypeError);
    });

    it('keyStats counts keys by kind and names the newest hourly key', async () => {
      const env = await ctx.freshEnvironment();
      expect(await ctx.store.keyStats(env.id)).toEqual({
        counts: { ek: 1, hourly: 0, job: 0, connection: 0, log: 0, context: 0 }, latestHourly: undefined,
      });
      const hours = [7200, 3600, 10800, 0].map((h) => key(env.id, 'hourly', { hourStart: 1_700_000_000 + h }));
      for (const h of hours) await ctx.store.insertKeyIfAbsent(h);
      for (let i = 0; i < 3; i++) await ctx.store.insertKeyIfAbsent(key(env.id, 'job', { scopeId: `job-${i}`, parentId: hours[0]!.id }));
      const stats = await ctx.store.keyStats(env.id);
      expect(stats.counts).toEqual({ ek: 1, hourly: 4, job: 3, connection: 0, log: 0, context: 0 });
      expect(stats.latestHourly).toEqual(hours[2]);
    });
  });
}
