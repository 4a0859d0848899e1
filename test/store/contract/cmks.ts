import { describe, expect, it } from 'vitest';
import { newId } from '../../../src/core/bytes.js';
import {
  StoreConflictError, type AuditEntryRecord, type CmkRecord, type CmkReplacement, type EkRewrap, type EnvironmentRecord, type KeyRecord, type Store,
} from '../../../src/store/store.js';
import { auditAppend, auditDraft, cmkHealth, key, newCmk, newEnvironment, newWorkspace, wrappedKey } from '../fixtures.js';
import type { ContractContext } from './context.js';

/** The environment's current CMK and EK, as a caller reads them before changing either. */
async function current(store: Store, environmentId: string): Promise<{ cmk: CmkRecord; ek: KeyRecord }> {
  const cmk = await store.getActiveCmk(environmentId);
  const ek = await store.getActiveEk(environmentId);
  if (!cmk || !ek) throw new Error(`environment ${environmentId} has no active CMK or EK`);
  return { cmk, ek };
}

/** A replacement of the environment's CMK by a new one, the EK re-wrapped (random bytes: the store never reads them). */
function replacement(env: EnvironmentRecord, from: CmkRecord, ek: KeyRecord, cmk = newCmk(env.id)): CmkReplacement {
  return { environmentId: env.id, fromCmkId: from.id, cmk, ekId: ek.id, wrapped: wrappedKey(), wrappingKeyVersion: `${cmk.id}/v1` };
}

function rewrap(ek: KeyRecord, fields: Partial<EkRewrap> = {}): EkRewrap {
  return {
    environmentId: ek.environmentId, ekId: ek.id, cmkId: ek.parentId, expectedWrapped: ek.wrapped, wrapped: wrappedKey(), wrappingKeyVersion: 'v2',
    ...fields,
  };
}

async function auditIds(store: Store, workspaceId: string): Promise<string[]> {
  const entries: readonly AuditEntryRecord[] = await store.listAuditEntries(workspaceId, { afterSeq: 0, limit: 1000 });
  return entries.map((e) => e.id);
}

/** Customer-managed CMKs: replacing an environment's CMK, re-wrapping its EK, the health probe's list and results. */
export function cmkContract(ctx: ContractContext): void {
  describe('CMK replacement and EK re-wrap', () => {
    it('replaceCmk moves the environment to the new CMK: old one decrypt-only, EK re-parented and re-wrapped, audit written', async () => {
      const env = await ctx.freshEnvironment();
      const { cmk: old, ek } = await current(ctx.store, env.id);
      const change = replacement(env, old, ek);
      const entry = auditDraft(env.workspaceId, { environmentId: env.id });
      expect(await ctx.store.replaceCmk(change, auditAppend(entry))).toBe(true);

      expect(await ctx.store.getActiveCmk(env.id)).toEqual(change.cmk);
      expect(await ctx.peer.getCmk(change.cmk.id)).toEqual(change.cmk);
      expect(await ctx.store.getCmk(old.id)).toEqual({ ...old, state: 'decrypt-only' });
      const moved: KeyRecord = { ...ek, parentId: change.cmk.id, wrapped: change.wrapped, wrappingKeyVersion: change.wrappingKeyVersion };
      expect(await ctx.store.getKey(env.id, ek.id)).toEqual(moved);
      expect(await ctx.peer.getActiveEk(env.id)).toEqual(moved);
      expect((await ctx.store.keyStats(env.id)).counts.ek).toBe(1);
      expect(await auditIds(ctx.store, env.workspaceId)).toEqual([entry.id]);

      // The new CMK can be replaced in turn (here without audit); the first stays decrypt-only.
      const next = replacement(env, change.cmk, moved, newCmk(env.id, 'gcp-kms'));
      expect(await ctx.peer.replaceCmk(next)).toBe(true);
      expect(await ctx.store.getActiveCmk(env.id)).toEqual(next.cmk);
      expect(await ctx.store.getCmk(change.cmk.id)).toEqual({ ...change.cmk, state: 'decrypt-only' });
      expect(await ctx.store.getCmk(old.id)).toEqual({ ...old, state: 'decrypt-only' });
      expect((await ctx.store.getKey(env.id, ek.id))!.parentId).toBe(next.cmk.id);
      expect(await auditIds(ctx.store, env.workspaceId)).toEqual([entry.id]);
    });

    it('replaceCmk from a CMK the environment is no longer on, or through another EK, returns false and writes nothing', async () => {
      const env = await ctx.freshEnvironment();
      const other = await ctx.freshEnvironment();
      const { cmk: original, ek } = await current(ctx.store, env.id);
      const { cmk: otherCmk, ek: otherEk } = await current(ctx.store, other.id);
      const first = replacement(env, original, ek);
      expect(await ctx.store.replaceCmk(first)).toBe(true);
      const after = await current(ctx.store, env.id);

      const refused: CmkReplacement[] = [
        // A second caller that read the environment before the first replacement.
        replacement(env, original, ek),
        // The right CMK, but a key that is not the environment's active EK.
        replacement(env, after.cmk, key(env.id, 'ek', { parentId: after.cmk.id })),
        { ...replacement(env, after.cmk, after.ek), ekId: otherEk.id },
        // Another environment's CMK, and an environment that does not exist.
        replacement(env, otherCmk, after.ek),
        replacement({ ...env, id: newId() }, after.cmk, after.ek),
      ];
      for (const [i, change] of refused.entries()) {
        const entry = auditDraft(env.workspaceId);
        expect(await (i % 2 ? ctx.peer : ctx.store).replaceCmk(change, auditAppend(entry))).toBe(false);
        expect(await ctx.store.getCmk(change.cmk.id)).toBeUndefined();
      }
      expect(await current(ctx.store, env.id)).toEqual(after);
      expect(await ctx.store.getCmk(original.id)).toEqual({ ...original, state: 'decrypt-only' });
      expect(await current(ctx.store, other.id)).toEqual({ cmk: otherCmk, ek: otherEk });
      expect(await ctx.store.getAuditHead(env.workspaceId)).toBeUndefined();
    });

    it('replaceCmk refuses contradicting records; a failing insert or append rolls the whole replacement back', async () => {
      const env = await ctx.freshEnvironment();
      const before = await current(ctx.store, env.id);
      const base = replacement(env, before.cmk, before.ek);
      const contradictions: CmkReplacement[] = [
        { ...base, cmk: { ...base.cmk, environmentId: newId() } },
        { ...base, cmk: { ...base.cmk, state: 'decrypt-only' } },
        { ...base, cmk: { ...base.cmk, id: before.cmk.id } },
        { ...base, wrapped: Buffer.alloc(0) },
      ];
      for (const change of contradictions) await expect(ctx.store.replaceCmk(change)).rejects.toThrow(TypeError);

      // A new CMK id that is taken (here by another environment's CMK): the retire and EK update are undone.
      const { cmk: taken } = await current(ctx.store, (await ctx.freshEnvironment()).id);
      await expect(ctx.peer.replaceCmk({ ...base, cmk: { ...base.cmk, id: taken.id } })).rejects.toBeInstanceOf(StoreConflictError);
      // Audit about another workspace is refused with the change.
      await expect(ctx.store.replaceCmk(base, auditAppend(auditDraft(newId())))).rejects.toThrow(TypeError);
      expect(await current(ctx.store, env.id)).toEqual(before);
      expect(await ctx.store.getCmk(base.cmk.id)).toBeUndefined();
      expect(await ctx.store.getAuditHead(env.workspaceId)).toBeUndefined();
      // The same change, well-formed, then goes through.
      expect(await ctx.store.replaceCmk(base)).toBe(true);
    });

    it('of concurrent replacements of one CMK from two nodes exactly one wins, with its audit alone', async () => {
      const env = await ctx.freshEnvironment();
      const { cmk: old, ek } = await current(ctx.store, env.id);
      const attempts = Array.from({ length: 8 }, () => ({ change: replacement(env, old, ek), entry: auditDraft(env.workspaceId, { environmentId: env.id }) }));
      const results = await Promise.all(attempts.map((a, i) => (i % 2 ? ctx.peer : ctx.store).replaceCmk(a.change, auditAppend(a.entry))));
      expect(results.filter((r) => r)).toHaveLength(1);
      const winner = attempts[results.indexOf(true)]!;
      expect(await ctx.store.getActiveCmk(env.id)).toEqual(winner.change.cmk);
      const stored = (await ctx.store.getActiveEk(env.id))!;
      expect(stored.wrapped.equals(winner.change.wrapped)).toBe(true);
      expect(stored.parentId).toBe(winner.change.cmk.id);
      for (const loser of attempts.filter((a) => a !== winner)) expect(await ctx.store.getCmk(loser.change.cmk.id)).toBeUndefined();
      expect(await auditIds(ctx.store, env.workspaceId)).toEqual([winner.entry.id]);
    });

    it('rewrapEk is a compare-and-set on the wrapped bytes and the parent CMK, audited only when it applies', async () => {
      const env = await ctx.freshEnvironment();
      const { ek } = await current(ctx.store, env.id);
      const entry = () => auditAppend(auditDraft(env.workspaceId, { environmentId: env.id }));
      const stale = [
        rewrap(ek, { expectedWrapped: wrappedKey() }),
        rewrap(ek, { expectedWrapped: ek.wrapped.subarray(0, ek.wrapped.length - 1) }),
        rewrap(ek, { cmkId: newId() }),
        rewrap(ek, { environmentId: (await ctx.freshEnvironment()).id }),
        rewrap(ek, { ekId: newId() }),
      ];
      for (const change of stale) expect(await ctx.store.rewrapEk(change, entry())).toBe(false);
      expect(await ctx.store.getKey(env.id, ek.id)).toEqual(ek);
      expect(await ctx.store.getAuditHead(env.workspaceId)).toBeUndefined();

      const first = rewrap(ek);
      const firstEntry = auditDraft(env.workspaceId, { environmentId: env.id });
      expect(await ctx.store.rewrapEk(first, auditAppend(firstEntry))).toBe(true);
      const rewrapped: KeyRecord = { ...ek, wrapped: first.wrapped, wrappingKeyVersion: 'v2' };
      expect(await ctx.peer.getKey(env.id, ek.id)).toEqual(rewrapped);
      // A replay expecting the old bytes no longer matches; one expecting the new bytes does (without audit here).
      expect(await ctx.peer.rewrapEk(rewrap(ek), entry())).toBe(false);
      const second = rewrap(rewrapped, { wrappingKeyVersion: 'v3' });
      expect(await ctx.peer.rewrapEk(second)).toBe(true);
      expect(await ctx.store.getKey(env.id, ek.id)).toEqual({ ...ek, wrapped: second.wrapped, wrappingKeyVersion: 'v3' });
      expect(await ctx.store.rewrapEk(rewrap(rewrapped))).toBe(false);
      expect(await auditIds(ctx.store, env.workspaceId)).toEqual([firstEntry.id]);

      // Not a key of kind "ek", and records that contradict themselves.
      const job = key(env.id, 'job', { scopeId: 'j1', parentId: ek.parentId });
      await ctx.store.insertKeyIfAbsent(job);
      expect(await ctx.store.rewrapEk(rewrap(job))).toBe(false);
      await expect(ctx.store.rewrapEk(rewrap(ek, { wrapped: Buffer.alloc(0) }))).rejects.toThrow(TypeError);
      await expect(ctx.store.rewrapEk(rewrap(ek, { expectedWrapped: 'x' as unknown as Buffer }))).rejects.toThrow(TypeError);
    });

    it('of concurrent re-wraps with the same expected bytes from two nodes exactly one wins', async () => {
      const env = await ctx.freshEnvironment();
      const { ek } = await current(ctx.store, env.id);
      const attempts = Array.from({ length: 10 }, () => rewrap(ek));
      const results = await Promise.all(attempts.map((a, i) => (i % 2 ? ctx.peer : ctx.store).rewrapEk(a, auditAppend(auditDraft(env.workspaceId)))));
      expect(results.filter((r) => r)).toHaveLength(1);
      expect((await ctx.store.getKey(env.id, ek.id))!.wrapped.equals(attempts[results.indexOf(true)]!.wrapped)).toBe(true);
      expect((await ctx.store.getAuditHead(env.workspaceId))?.seq).toBe(1);
    });
  });

  describe('active CMKs for the health probe', () => {
    it('listActiveCmks lists active CMKs of providers not excluded, in id (code point) order, paged after an id', async () => {
      const own = await (await ctx.freshLocation()).open();
      try {
        const { workspace, first } = newWorkspace();
        await own.createWorkspace(workspace, first);
        // Ids in mixed case: code point order puts "Z…" before "a…", which a locale collation would not.
        const prefixes = ['a', 'Z', 'm', 'B', '0', 'y', 'C', 'k'];
        const providers = ['aws-kms', 'gcp-kms', 'pkcs11'];
        const customer: CmkRecord[] = [];
        for (const [i, prefix] of prefixes.entries()) {
          const env = newEnvironment(workspace.id, `env-${i}`);
          await own.createEnvironment(env);
          let change = replacement(env.environment, env.cmk, env.ek, newCmk(env.environment.id, providers[i % 3], { id: `${prefix}-${newId()}` }));
          await own.replaceCmk(change);
          if (i % 4 === 0) {
            // Replaced again: the retired customer CMK must not be listed.
            const moved = (await own.getActiveEk(env.environment.id))!;
            change = replacement(env.environment, change.cmk, moved, newCmk(env.environment.id, 'azure-kv', { id: `${prefix}x-${newId()}` }));
            expect(await own.replaceCmk(change)).toBe(true);
          }
          customer.push(change.cmk);
        }
        const ordered = (cmks: readonly CmkRecord[]): CmkRecord[] => [...cmks].sort((x, y) => Buffer.compare(Buffer.from(x.id), Buffer.from(y.id)));
        expect(await own.listActiveCmks({ excludeProviders: ['platform'], limit: 1000 })).toEqual(ordered(customer));
        expect(await own.listActiveCmks({ excludeProviders: ['platform', 'aws-kms', 'azure-kv'], limit: 1000 }))
          .toEqual(ordered(customer.filter((c) => c.provider === 'gcp-kms' || c.provider === 'pkcs11')));
        // Nothing excluded: the platform CMK of the untouched first environment is active too.
        expect(await own.listActiveCmks({ excludeProviders: [], limit: 1000 })).toEqual(ordered([...customer, first.cmk]));

        for (const limit of [1, 3, 8]) {
          const seen: CmkRecord[] = [];
          let afterId: string | undefined;
          for (;;) {
            const page = await own.listActiveCmks({ excludeProviders: ['platform'], limit, afterId });
            expect(page.length).toBeLessThanOrEqual(limit);
            seen.push(...page);
            if (page.length < limit) break;
            afterId = page[page.length - 1]!.id;
          }
          expect(seen).toEqual(ordered(customer));
        }
        expect(await own.listActiveCmks({ excludeProviders: ['platform'], limit: 10, afterId: ordered(customer).at(-1)!.id })).toEqual([]);
        for (const limit of [0, 1001, 1.5]) {
          await expect(own.listActiveCmks({ excludeProviders: [], limit })).rejects.toThrow(TypeError);
        }
      } finally {
        await own.close();
      }
    });
  });

  describe('CMK health', () => {
    it('putCmkHealth round-trips every field; since is kept while the state holds and reset when it changes; audit only on change', async () => {
      const env = await ctx.freshEnvironment();
      const ws = env.workspaceId;
      const { cmk } = await current(ctx.store, env.id);
      const other = (await current(ctx.store, (await ctx.freshEnvironment()).id)).cmk;
      expect(await ctx.store.getCmkHealth(cmk.id)).toBeUndefined();
      const at = (minutes: number): Date => new Date(Date.UTC(2025, 5, 1, 0, minutes, 0, 7));
      const entry = () => auditDraft(ws, { environmentId: env.id });

      const first = cmkHealth(cmk.id, 'key_expiring', at(0), {
        currentVersion: 'v1', expiresAt: new Date(Date.UTC(2025, 6, 1, 12, 0, 0, 999)), detail: 'expires in 30 days ✓',
      });
      const e1 = entry();
      expect(await ctx.store.putCmkHealth(first, auditAppend(e1))).toEqual(first);
      expect(await ctx.peer.getCmkHealth(cmk.id)).toEqual(first);
      expect(await ctx.store.getCmkHealth(other.id)).toBeUndefined();

      // Same state, later: everything is the new record's but since; no audit.
      const second = cmkHealth(cmk.id, 'key_expiring', at(5), { currentVersion: 'v2' });
      expect(await ctx.peer.putCmkHealth(second, auditAppend(entry()))).toEqual({ ...second, since: first.since });
      expect(await ctx.store.getCmkHealth(cmk.id)).toEqual({ ...second, since: first.since });
      // Likewise without an audit, whatever since the record says.
      const third = cmkHealth(cmk.id, 'key_expiring', at(10), { since: at(9) });
      expect(await ctx.store.putCmkHealth(third)).toEqual({ ...third, since: first.since });

      // A new state starts a new since, and is audited.
      const pending = cmkHealth(cmk.id, 'key_pending_deletion', at(15), { deletionAt: new Date(Date.UTC(2025, 5, 8)), detail: 'deletion scheduled' });
      const e2 = entry();
      expect(await ctx.store.putCmkHealth(pending, auditAppend(e2))).toEqual(pending);
      const healthy = cmkHealth(cmk.id, 'healthy', at(20));
      const e3 = entry();
      expect(await ctx.peer.putCmkHealth(healthy, auditAppend(e3))).toEqual(healthy);
      // A change without an audit is stored all the same.
      const disabled = cmkHealth(cmk.id, 'key_disabled', at(25));
      expect(await ctx.store.putCmkHealth(disabled)).toEqual(disabled);
      expect(await ctx.store.getCmkHealth(cmk.id)).toEqual(disabled);
      expect(await auditIds(ctx.store, ws)).toEqual([e1.id, e2.id, e3.id]);
    });

    it('putCmkHealth refuses malformed records, an unknown CMK and audit about another workspace, storing nothing', async () => {
      const env = await ctx.freshEnvironment();
      const { cmk } = await current(ctx.store, env.id);
      const base = cmkHealth(cmk.id, 'healthy', new Date());
      for (const bad of [{ ...base, since: new Date(Number.NaN) }, { ...base, state: '' }, { ...base, expiresAt: 'soon' as unknown as Date }]) {
        await expect(ctx.store.putCmkHealth(bad)).rejects.toThrow(TypeError);
      }
      const unknown = cmkHealth(newId(), 'healthy', new Date());
      await expect(ctx.store.putCmkHealth(unknown)).rejects.toThrow();
      await expect(ctx.store.putCmkHealth(unknown, auditAppend(auditDraft(env.workspaceId)))).rejects.toThrow();
      expect(await ctx.store.getCmkHealth(unknown.cmkId)).toBeUndefined();

      await expect(ctx.peer.putCmkHealth(base, auditAppend(auditDraft(newId())))).rejects.toThrow(TypeError);
      expect(await ctx.store.getCmkHealth(cmk.id)).toBeUndefined();
      await ctx.store.putCmkHealth(base);
      await expect(ctx.store.putCmkHealth(cmkHealth(cmk.id, 'key_disabled', new Date()), auditAppend(auditDraft(newId())))).rejects.toThrow(TypeError);
      expect(await ctx.store.getCmkHealth(cmk.id)).toEqual(base);
      expect(await ctx.store.getAuditHead(env.workspaceId)).toBeUndefined();
    });

    it('concurrent probes from two nodes: one since per state, and one audit entry per change', async () => {
      const env = await ctx.freshEnvironment();
      const { cmk } = await current(ctx.store, env.id);
      const base = Date.UTC(2025, 0, 1);
      const probeAll = async (state: string, offset: number) => {
        const records = Array.from({ length: 10 }, (_, i) => cmkHealth(cmk.id, state, new Date(base + offset + i)));
        const results = await Promise.all(
          records.map((r, i) => (i % 2 ? ctx.peer : ctx.store).putCmkHealth(r, auditAppend(auditDraft(env.workspaceId, { environmentId: env.id })))),
        );
        const sinces = new Set(results.map((r) => r.since.getTime()));
        expect(sinces.size).toBe(1);
        return results[0]!.since;
      };

      // No row yet: one probe creates it, every other one finds the state unchanged.
      const created = await probeAll('healthy', 0);
      expect(created.getTime() - base).toBeLessThan(10);
      expect((await ctx.store.getAuditHead(env.workspaceId))?.seq).toBe(1);
      // The same state again, later: since stays, nothing audited.
      expect(await probeAll('healthy', 60_000)).toEqual(created);
      expect((await ctx.store.getCmkHealth(cmk.id))!.since).toEqual(created);
      expect((await ctx.store.getAuditHead(env.workspaceId))?.seq).toBe(1);
      // A new state: exactly one probe records the change.
      const changed = await probeAll('key_disabled', 120_000);
      expect(changed.getTime() - base - 120_000).toBeLessThan(10);
      expect(changed.getTime() - base).toBeGreaterThanOrEqual(120_000);
      expect((await ctx.store.getAuditHead(env.workspaceId))?.seq).toBe(2);
    });
  });
}
