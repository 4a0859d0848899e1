import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { newId } from '../../../src/core/bytes.js';
import { SQL, values } from '../../../src/store/postgres/statements.js';
import {
  StaleParentError, StoreConflictError,
  type AuditEntryRecord, type CmkRecord, type EkRotation, type EnvironmentRecord, type KeyRecord, type RepackBatch, type RepackRecord, type Store,
} from '../../../src/store/store.js';
import { TEST_DATABASE_URL } from '../backends.js';
import { auditAppend, auditDraft, key, newCmk, newEnvironment, newWorkspace, wrappedKey } from '../fixtures.js';
import { recorder, untilDelivered } from '../key-events.js';
import type { ContractContext } from './context.js';

/** The environment's current CMK and EK, as a caller reads them before rotating. */
async function current(store: Store, environmentId: string): Promise<{ cmk: CmkRecord; ek: KeyRecord }> {
  const cmk = await store.getActiveCmk(environmentId);
  const ek = await store.getActiveEk(environmentId);
  if (!cmk || !ek) throw new Error(`environment ${environmentId} has no active CMK or EK`);
  return { cmk, ek };
}

/** A rotation away from (cmk, ek) to a new CMK and a new EK wrapped by it (random bytes: the store never reads them). */
function rotation(environmentId: string, from: { cmk: CmkRecord; ek: KeyRecord }, startedAt = new Date(Date.UTC(2030, 0, 1, 12))): EkRotation {
  const cmk = newCmk(environmentId);
  return {
    environmentId, fromCmkId: from.cmk.id, fromEkId: from.ek.id, cmk,
    ek: key(environmentId, 'ek', { parentId: cmk.id, wrappingKeyVersion: `${cmk.id}/v1`, createdAt: startedAt }),
    repackId: newId(), startedAt,
  };
}

/** The repack a rotation starts, as the store must return it. */
function started(change: EkRotation, total: number): RepackRecord {
  return {
    id: change.repackId, environmentId: change.environmentId, fromEkId: change.fromEkId, toEkId: change.ek.id, fromCmkId: change.fromCmkId,
    toCmkId: change.cmk.id, state: 'running', total, done: 0, startedAt: change.startedAt, updatedAt: change.startedAt, finishedAt: null,
    pausedReason: null, runner: null,
  };
}

/** A batch moving `keys` from the repack's old EK to its new one, each re-wrapped to fresh random bytes (empty stays empty). */
function batchOf(repack: RepackRecord, keys: readonly KeyRecord[], fields: Partial<RepackBatch> = {}): RepackBatch {
  return {
    repackId: repack.id, environmentId: repack.environmentId, fromEkId: repack.fromEkId, toEkId: repack.toEkId,
    keys: keys.map((k) => ({ id: k.id, expectedWrapped: k.wrapped, wrapped: k.wrapped.length === 0 ? Buffer.alloc(0) : wrappedKey() })),
    runner: 'node-a:101', at: new Date(Date.UTC(2030, 0, 1, 13)), ...fields,
  };
}

async function auditIds(store: Store, workspaceId: string): Promise<string[]> {
  const entries: readonly AuditEntryRecord[] = await store.listAuditEntries(workspaceId, { afterSeq: 0, limit: 1000 });
  return entries.map((e) => e.id);
}

/** Stores `kind` keys directly under `parentId`. */
async function under(store: Store, env: EnvironmentRecord, parentId: string, kind: 'hourly' | 'connection' | 'context' | 'job', count: number, ids?: readonly string[]): Promise<KeyRecord[]> {
  const stored: KeyRecord[] = [];
  for (let i = 0; i < count; i++) {
    const fields: Partial<KeyRecord> = kind === 'hourly' ? { hourStart: 1_900_000_000 + i * 3600 } : { scopeId: newId() };
    stored.push(await store.insertKeyIfAbsent(key(env.id, kind, { parentId, ...fields, ...(ids ? { id: ids[i] } : {}) })));
  }
  return stored;
}

const byId = (keys: readonly KeyRecord[]): KeyRecord[] => [...keys].sort((x, y) => Buffer.compare(Buffer.from(x.id), Buffer.from(y.id)));

/** Environment key rotation and the repack that follows it. */
export function repackContract(ctx: ContractContext): void {
  describe('environment key rotation', () => {
    it('rotateEnvironmentKey: new CMK and EK active, old ones decrypt-only (announced), a running repack counting the direct non-EK children, audit written', async () => {
      const env = await ctx.freshEnvironment();
      const other = await ctx.freshEnvironment();
      const from = await current(ctx.store, env.id);
      const hourly = await under(ctx.store, env, from.ek.id, 'hourly', 3);
      const connections = await under(ctx.peer, env, from.ek.id, 'connection', 2);
      const context = await under(ctx.store, env, from.ek.id, 'context', 1);
      const log = await ctx.store.insertKeyIfAbsent(key(env.id, 'log', { parentId: from.ek.id }));
      // A destroyed key is still under the EK (it moves, with its empty bytes).
      await ctx.store.setKeyState({ environmentId: env.id, keyId: connections[1]!.id, from: ['active'], to: 'destroyed' });
      // Not counted: job keys (under an hourly key) and another environment's key naming this EK.
      // (An EK under an EK cannot exist: an EK's parent is always a CMK.)
      await under(ctx.store, env, hourly[0]!.id, 'job', 4);
      await ctx.store.insertKeyIfAbsent(key(other.id, 'connection', { scopeId: 'elsewhere', parentId: from.ek.id }));

      const heard = recorder();
      const stop = ctx.store.watchKeyStates(heard.listener);
      try {
        await untilDelivered(ctx.store, ctx.store, env);
        const change = rotation(env.id, from);
        const entry = auditDraft(env.workspaceId, { environmentId: env.id });
        const repack = await ctx.store.rotateEnvironmentKey(change, auditAppend(entry));
        expect(repack).toEqual(started(change, 7));

        expect(await ctx.peer.getActiveCmk(env.id)).toEqual(change.cmk);
        expect(await ctx.store.getCmk(from.cmk.id)).toEqual({ ...from.cmk, state: 'decrypt-only' });
        expect(await ctx.peer.getActiveEk(env.id)).toEqual({ ...change.ek, destroyAt: null });
        expect(await ctx.store.getKey(env.id, from.ek.id)).toEqual({ ...from.ek, state: 'decrypt-only' });
        expect(await ctx.peer.getRepack(env.id)).toEqual(repack);
        expect(await auditIds(ctx.store, env.workspaceId)).toEqual([entry.id]);
        expect(await heard.waitFor((e) => e.keyId === from.ek.id)).toEqual({ environmentId: env.id, keyId: from.ek.id, state: 'decrypt-only' });
        // Nothing under the EK moved: that is the repack's work.
        expect((await ctx.store.listKeysUnder(env.id, from.ek.id, 100)).map((k) => k.id).sort())
          .toEqual([...hourly, ...connections, ...context, log].map((k) => k.id).sort());
        expect(await ctx.store.listKeysUnder(env.id, change.ek.id, 100)).toEqual([]);
        expect((await ctx.store.keyStats(env.id)).counts.ek).toBe(2);
      } finally {
        stop();
      }
    });

    it('a failed compare-and-set returns undefined and writes nothing, audit included; contradicting records are refused', async () => {
      const env = await ctx.freshEnvironment();
      const other = await ctx.freshEnvironment();
      const original = await current(ctx.store, env.id);
      const otherCurrent = await current(ctx.store, other.id);
      // The environment moves to another CMK (same EK): a rotation read before that is stale.
      const moved = newCmk(env.id);
      expect(await ctx.store.replaceCmk({
        environmentId: env.id, fromCmkId: original.cmk.id, cmk: moved, ekId: original.ek.id, wrapped: wrappedKey(), wrappingKeyVersion: 'v2',
      })).toBe(true);
      const now = await current(ctx.store, env.id);

      const stale: EkRotation[] = [
        rotation(env.id, original),
        rotation(env.id, { cmk: now.cmk, ek: key(env.id, 'ek', { parentId: now.cmk.id }) }),
        rotation(env.id, { cmk: otherCurrent.cmk, ek: now.ek }),
        rotation(env.id, otherCurrent),
        { ...rotation(env.id, now), fromCmkId: newId() },
        // An environment that does not exist.
        rotation(newId(), now),
      ];
      for (const [i, change] of stale.entries()) {
        const store = i % 2 ? ctx.peer : ctx.store;
        expect(await store.rotateEnvironmentKey(change, auditAppend(auditDraft(env.workspaceId, { environmentId: env.id })))).toBeUndefined();
        expect(await ctx.store.getCmk(change.cmk.id)).toBeUndefined();
        expect(await ctx.store.getKey(change.environmentId, change.ek.id)).toBeUndefined();
      }
      expect(await current(ctx.store, env.id)).toEqual(now);
      expect(await current(ctx.store, other.id)).toEqual(otherCurrent);
      expect(await ctx.store.getRepack(env.id)).toBeUndefined();
      expect(await ctx.store.getRepack(other.id)).toBeUndefined();
      expect(await ctx.store.getAuditHead(env.workspaceId)).toBeUndefined();

      const base = rotation(env.id, now);
      const contradictions: EkRotation[] = [
        { ...base, cmk: { ...base.cmk, environmentId: other.id } },
        { ...base, cmk: { ...base.cmk, state: 'decrypt-only' } },
        { ...base, cmk: { ...base.cmk, id: now.cmk.id } },
        { ...base, ek: { ...base.ek, parentId: now.cmk.id } },
        { ...base, ek: { ...base.ek, kind: 'hourly', hourStart: 0 } },
        { ...base, ek: { ...base.ek, state: 'decrypt-only' } },
        { ...base, ek: { ...base.ek, id: now.ek.id } },
        { ...base, ek: { ...base.ek, environmentId: other.id } },
        { ...base, ek: { ...base.ek, wrapped: Buffer.alloc(0) } },
        { ...base, repackId: '' },
        { ...base, startedAt: new Date(Number.NaN) },
      ];
      for (const change of contradictions) await expect(ctx.store.rotateEnvironmentKey(change)).rejects.toThrow(TypeError);
      // A failing insert (the new EK's id is taken) or append (another workspace) rolls everything back.
      const taken = (await under(ctx.store, other, otherCurrent.ek.id, 'connection', 1))[0]!;
      await expect(ctx.peer.rotateEnvironmentKey({ ...base, ek: { ...base.ek, id: taken.id } })).rejects.toBeInstanceOf(StoreConflictError);
      await expect(ctx.store.rotateEnvironmentKey(base, auditAppend(auditDraft(newId())))).rejects.toThrow(TypeError);
      await expect(ctx.store.rotateEnvironmentKey(base, auditAppend(auditDraft(other.workspaceId)))).rejects.toThrow(TypeError);
      expect(await current(ctx.store, env.id)).toEqual(now);
      expect(await ctx.store.getCmk(base.cmk.id)).toBeUndefined();
      expect(await ctx.store.getRepack(env.id)).toBeUndefined();
      expect(await ctx.store.getAuditHead(env.workspaceId)).toBeUndefined();

      // The same rotation, well-formed and current, goes through.
      expect(await ctx.store.rotateEnvironmentKey(base)).toEqual(started(base, 0));
    });

    it('a second unfinished repack of an environment is a StoreConflictError that writes nothing; once it is done the next one starts', async () => {
      const env = await ctx.freshEnvironment();
      const first = rotation(env.id, await current(ctx.store, env.id));
      const e1 = auditDraft(env.workspaceId, { environmentId: env.id });
      const repack = (await ctx.store.rotateEnvironmentKey(first, auditAppend(e1)))!;
      const afterFirst = await current(ctx.store, env.id);
      expect(afterFirst.ek.id).toBe(first.ek.id);

      const second = rotation(env.id, afterFirst);
      for (const store of [ctx.store, ctx.peer]) {
        await expect(store.rotateEnvironmentKey(second, auditAppend(auditDraft(env.workspaceId)))).rejects.toBeInstanceOf(StoreConflictError);
      }
      expect(await current(ctx.store, env.id)).toEqual(afterFirst);
      expect(await ctx.store.getCmk(second.cmk.id)).toBeUndefined();
      expect(await ctx.store.getKey(env.id, second.ek.id)).toBeUndefined();
      expect(await ctx.store.getRepack(env.id)).toEqual(repack);
      expect(await auditIds(ctx.store, env.workspaceId)).toEqual([e1.id]);

      // Nothing was under the old EK: the repack can finish at once, and then the next rotation starts.
      const finishedAt = new Date(Date.UTC(2030, 0, 1, 12, 30));
      expect((await ctx.peer.finishRepack(repack.id, finishedAt))?.state).toBe('done');
      expect(await ctx.store.rotateEnvironmentKey(second)).toEqual(started(second, 0));
    });

    it('getRepack: the unfinished repack if there is one (whatever its start), else the one finished last; listUnfinishedRepacks: running before paused, oldest first', async () => {
      const own = await (await ctx.freshLocation()).open();
      try {
        const { workspace, first } = newWorkspace();
        await own.createWorkspace(workspace, first);
        const env = first.environment;
        const t = (hours: number) => new Date(Date.UTC(2030, 0, 1, hours));
        expect(await own.getRepack(env.id)).toBeUndefined();
        expect(await own.listUnfinishedRepacks(10)).toEqual([]);

        const a = rotation(env.id, await current(own, env.id), t(10));
        await own.rotateEnvironmentKey(a);
        const aDone = (await own.finishRepack(a.repackId, t(11)))!;
        expect(aDone).toEqual({ ...started(a, 0), state: 'done', updatedAt: t(11), finishedAt: t(11) });
        expect(await own.getRepack(env.id)).toEqual(aDone);
        // Started earlier than a (another node's clock), finished later: it is the latest finished.
        const b = rotation(env.id, await current(own, env.id), t(9));
        await own.rotateEnvironmentKey(b);
        const bDone = (await own.finishRepack(b.repackId, t(12)))!;
        expect(await own.getRepack(env.id)).toEqual(bDone);
        // An unfinished one comes first, however early it started.
        const c = rotation(env.id, await current(own, env.id), t(1));
        const cRepack = await own.rotateEnvironmentKey(c);
        expect(await own.getRepack(env.id)).toEqual(cRepack);

        // Other environments' unfinished repacks, started at other times; ids in mixed case break ties in code point order.
        const unfinished: RepackRecord[] = [cRepack!];
        for (const [i, hours] of [5, 0, 5, 3].entries()) {
          const e = newEnvironment(workspace.id, `env-${i}`);
          await own.createEnvironment(e);
          const change = { ...rotation(e.environment.id, { cmk: e.cmk, ek: e.ek }, t(hours)), repackId: `${['a', 'b', 'Z', 'c'][i]!}-${newId()}` };
          unfinished.push((await own.rotateEnvironmentKey(change))!);
        }
        const e = newEnvironment(workspace.id, 'finished');
        await own.createEnvironment(e);
        const finished = rotation(e.environment.id, { cmk: e.cmk, ek: e.ek }, t(0));
        await own.rotateEnvironmentKey(finished);
        await own.finishRepack(finished.repackId, t(2));

        const oldestFirst = [...unfinished].sort((x, y) => x.startedAt.getTime() - y.startedAt.getTime() || Buffer.compare(Buffer.from(x.id), Buffer.from(y.id)));
        expect(oldestFirst.map((r) => r.startedAt.getTime())).toEqual([t(0), t(1), t(3), t(5), t(5)].map((d) => d.getTime()));
        expect(await own.listUnfinishedRepacks(1000)).toEqual(oldestFirst);
        expect(await own.listUnfinishedRepacks(2)).toEqual(oldestFirst.slice(0, 2));
        // A paused repack is unfinished too, listed after every running one (a stuck one cannot starve the others).
        const paused = (await own.setRepackPaused(oldestFirst[1]!.id, 'the old CMK cannot be reached', 'node-b:7', t(20)))!;
        const runningThenPaused = [...oldestFirst.filter((r) => r.id !== paused.id), paused];
        expect(await own.listUnfinishedRepacks(1000)).toEqual(runningThenPaused);
        expect(await own.listUnfinishedRepacks(2)).toEqual(runningThenPaused.slice(0, 2));
        for (const limit of [0, 1001, 1.5, Number.NaN]) await expect(own.listUnfinishedRepacks(limit)).rejects.toThrow(TypeError);
      } finally {
        await own.close();
      }
    });

    it('concurrent inserts under an EK that is being rotated: each either lands before the rotation (and is counted) or throws StaleParentError', async () => {
      const env = await ctx.freshEnvironment();
      const from = await current(ctx.store, env.id);
      const change = rotation(env.id, from);
      const inserts = Array.from({ length: 60 }, (_, i) => key(env.id, i % 3 ? 'connection' : 'context', { scopeId: newId(), parentId: from.ek.id }));
      const settled = await Promise.allSettled([
        ...inserts.slice(0, 30).map((k, i) => (i % 2 ? ctx.peer : ctx.store).insertKeyIfAbsent(k)),
        ctx.peer.rotateEnvironmentKey(change),
        ...inserts.slice(30).map((k, i) => (i % 2 ? ctx.store : ctx.peer).insertKeyIfAbsent(k)),
      ]);
      const rotated = settled[30]!;
      expect(rotated.status).toBe('fulfilled');
      const keyResults = settled.filter((_, i) => i !== 30);
      for (const r of keyResults) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(StaleParentError);
      const landed = keyResults.filter((r) => r.status === 'fulfilled').length;
      const repack = (rotated as PromiseFulfilledResult<RepackRecord | undefined>).value!;
      expect(repack.total).toBe(landed);
      expect(await ctx.store.listKeysUnder(env.id, from.ek.id, 1000)).toHaveLength(landed);
      expect(await ctx.store.listKeysUnder(env.id, change.ek.id, 1000)).toEqual([]);
    });
  });

  // Backend-specific: the lock that orders inserts under an EK against its rotation, shown with a
  // transaction held open by hand (SQLite's single writer orders them by construction).
  if (ctx.kind === 'postgres') describe('PostgreSQL: inserts under an EK and its rotation', () => {
    it('an uncommitted insert under the EK holds the rotation back, which then counts it; an uncommitted retirement holds the insert back, which then fails', async () => {
      const location = await ctx.freshLocation();
      const own = await location.open();
      const session = new pg.Client({ connectionString: TEST_DATABASE_URL, options: `-c search_path=${location.schema!}` });
      await session.connect();
      try {
        const { workspace, first } = newWorkspace();
        await own.createWorkspace(workspace, first);
        const env = first.environment;
        const from = await current(own, env.id);

        // The store's own insert statement, in a transaction left open: it holds a share lock on the EK.
        await session.query('BEGIN');
        const inFlight = key(env.id, 'connection', { scopeId: 'in-flight', parentId: from.ek.id });
        expect((await session.query<{ inserted: string }>(SQL.insertKey, values.key(inFlight))).rows[0]?.inserted).toBe('1');
        let rotated = false;
        const rotating = own.rotateEnvironmentKey(rotation(env.id, from)).finally(() => {
          rotated = true;
        });
        await sleep(300);
        expect(rotated).toBe(false);
        await session.query('COMMIT');
        expect((await rotating)?.total).toBe(1);
        expect((await own.listKeysUnder(env.id, from.ek.id, 10)).map((k) => k.id)).toEqual([inFlight.id]);

        // A retirement of the new EK left uncommitted (as a rotation holds it): an insert under it waits, then finds it retired.
        const now = await current(own, env.id);
        await session.query('BEGIN');
        await session.query('SELECT id FROM keys WHERE id = $1 FOR UPDATE', [now.ek.id]);
        await session.query(`UPDATE keys SET state = 'decrypt-only' WHERE id = $1`, [now.ek.id]);
        let inserted = false;
        const late = key(env.id, 'connection', { scopeId: 'late', parentId: now.ek.id });
        const inserting = own.insertKeyIfAbsent(late).finally(() => {
          inserted = true;
        });
        inserting.catch(() => undefined);
        await sleep(300);
        expect(inserted).toBe(false);
        await session.query('COMMIT');
        await expect(inserting).rejects.toBeInstanceOf(StaleParentError);
        expect(await own.getKey(env.id, late.id)).toBeUndefined();
      } finally {
        await session.end().catch(() => undefined);
        await own.close();
      }
    });

    it('batches and the finish of a repack queue on its row lock (as another node holding it makes them wait)', async () => {
      const location = await ctx.freshLocation();
      const own = await location.open();
      const session = new pg.Client({ connectionString: TEST_DATABASE_URL, options: `-c search_path=${location.schema!}` });
      await session.connect();
      try {
        const { workspace, first } = newWorkspace();
        await own.createWorkspace(workspace, first);
        const env = first.environment;
        const from = await current(own, env.id);
        const keys = await under(own, env, from.ek.id, 'connection', 3);
        const repack = (await own.rotateEnvironmentKey(rotation(env.id, from)))!;
        const held = async <T>(work: () => Promise<T>): Promise<T> => {
          await session.query('BEGIN');
          await session.query('SELECT id FROM repacks WHERE id = $1 FOR UPDATE', [repack.id]);
          let settled = false;
          const pending = work().finally(() => {
            settled = true;
          });
          pending.catch(() => undefined);
          await sleep(300);
          expect(settled).toBe(false);
          await session.query('COMMIT');
          return pending;
        };
        expect((await held(() => own.applyRepackBatch(batchOf(repack, keys))))?.done).toBe(3);
        expect((await held(() => own.finishRepack(repack.id, new Date())))?.state).toBe('done');
      } finally {
        await session.end().catch(() => undefined);
        await own.close();
      }
    });
  });

  describe('repack: listing and moving keys', () => {
    it('listKeysUnder: keys under the parent in that environment, never EKs, in id (code point) order, at most limit', async () => {
      const env = await ctx.freshEnvironment();
      const other = await ctx.freshEnvironment();
      const { ek } = await current(ctx.store, env.id);
      const prefixes = ['a', 'Z', 'm', 'B', '0', 'y', 'C', 'k'];
      const direct = [
        ...(await under(ctx.store, env, ek.id, 'connection', 4, prefixes.slice(0, 4).map((p) => `${p}-${newId()}`))),
        ...(await under(ctx.peer, env, ek.id, 'hourly', 2, prefixes.slice(4, 6).map((p) => `${p}-${newId()}`))),
        ...(await under(ctx.store, env, ek.id, 'context', 2, prefixes.slice(6).map((p) => `${p}-${newId()}`))),
      ];
      const jobs = await under(ctx.store, env, direct[4]!.id, 'job', 3);
      await ctx.store.insertKeyIfAbsent(key(env.id, 'ek', { parentId: ek.id, state: 'decrypt-only', id: `0-${newId()}` }));
      await ctx.store.insertKeyIfAbsent(key(other.id, 'connection', { scopeId: 'x', parentId: ek.id, id: `0-${newId()}` }));

      expect(await ctx.store.listKeysUnder(env.id, ek.id, 10_000)).toEqual(byId(direct));
      expect(await ctx.peer.listKeysUnder(env.id, ek.id, 3)).toEqual(byId(direct).slice(0, 3));
      expect(await ctx.store.listKeysUnder(env.id, direct[4]!.id, 10)).toEqual(byId(jobs));
      expect(await ctx.store.listKeysUnder(other.id, direct[4]!.id, 10)).toEqual([]);
      expect(await ctx.store.listKeysUnder(env.id, newId(), 10)).toEqual([]);
      for (const limit of [0, 10_001, 1.5, Number.NaN]) await expect(ctx.store.listKeysUnder(env.id, ek.id, limit)).rejects.toThrow(TypeError);
      await expect(ctx.store.listKeysUnder(env.id, '', 10)).rejects.toThrow(TypeError);
    });

    it('applyRepackBatch moves the keys still under the old EK with the expected bytes, counts only those, and resumes a paused repack', async () => {
      const env = await ctx.freshEnvironment();
      const from = await current(ctx.store, env.id);
      const keys = byId(await under(ctx.store, env, from.ek.id, 'connection', 5));
      const jobs = await under(ctx.store, env, keys[0]!.id, 'job', 2);
      const change = rotation(env.id, from);
      const repack = (await ctx.store.rotateEnvironmentKey(change))!;
      const pausedAt = new Date(Date.UTC(2030, 0, 1, 12, 5));
      expect(await ctx.store.setRepackPaused(repack.id, 'the new CMK cannot be reached', 'node-b:2', pausedAt)).toEqual({
        ...repack, state: 'paused', pausedReason: 'the new CMK cannot be reached', runner: 'node-b:2', updatedAt: pausedAt,
      });

      // keys[1] changed since it was read; a job key and an unknown id are not under the old EK.
      const batch = batchOf(repack, [keys[0]!, keys[1]!, keys[2]!, jobs[0]!]);
      const sent = { ...batch, keys: [...batch.keys.slice(0, 1), { ...batch.keys[1]!, expectedWrapped: wrappedKey() }, ...batch.keys.slice(2), { id: newId(), expectedWrapped: wrappedKey(), wrapped: wrappedKey() }] };
      const applied = await ctx.peer.applyRepackBatch(sent);
      expect(applied).toEqual({ ...repack, done: 2, state: 'running', pausedReason: null, runner: 'node-a:101', updatedAt: batch.at });
      expect(await ctx.store.getRepack(env.id)).toEqual(applied);
      for (const i of [0, 2]) {
        expect(await ctx.store.getKey(env.id, keys[i]!.id)).toEqual({ ...keys[i]!, parentId: change.ek.id, wrapped: batch.keys[i]!.wrapped });
      }
      expect(await ctx.store.getKey(env.id, keys[1]!.id)).toEqual(keys[1]);
      expect(await ctx.store.getKey(env.id, jobs[0]!.id)).toEqual(jobs[0]);
      expect(await ctx.store.listKeysUnder(env.id, from.ek.id, 100)).toEqual([keys[1], keys[3], keys[4]]);
      expect(await ctx.store.listKeysUnder(env.id, change.ek.id, 100)).toEqual(byId([0, 2].map((i) => ({ ...keys[i]!, parentId: change.ek.id, wrapped: batch.keys[i]!.wrapped }))));

      // A replay of the same batch moves nothing more (the keys are no longer under the old EK).
      const later = new Date(Date.UTC(2030, 0, 1, 14));
      expect(await ctx.store.applyRepackBatch({ ...sent, at: later, runner: 'node-c:3' })).toEqual({ ...applied, updatedAt: later, runner: 'node-c:3' });

      // A key destroyed after it was read is skipped; read again (empty bytes) it moves, still destroyed and empty.
      await ctx.store.setKeyState({ environmentId: env.id, keyId: keys[3]!.id, from: ['active'], to: 'destroyed' });
      expect((await ctx.store.applyRepackBatch(batchOf(repack, [keys[3]!])))?.done).toBe(2);
      const reread = (await ctx.store.listKeysUnder(env.id, from.ek.id, 100)).find((k) => k.id === keys[3]!.id)!;
      expect(reread.wrapped.length).toBe(0);
      expect((await ctx.peer.applyRepackBatch(batchOf(repack, [reread, keys[1]!])))?.done).toBe(4);
      const destroyed = (await ctx.store.getKey(env.id, keys[3]!.id))!;
      expect(destroyed).toEqual({ ...keys[3]!, parentId: change.ek.id, state: 'destroyed', wrapped: Buffer.alloc(0) });
      expect(destroyed.wrapped.length).toBe(0);
      // An empty batch moves nothing but still records who and when.
      expect(await ctx.store.applyRepackBatch({ ...batchOf(repack, []), runner: 'node-d:4' })).toMatchObject({ done: 4, runner: 'node-d:4' });
      expect(await ctx.store.listKeysUnder(env.id, from.ek.id, 100)).toEqual([keys[4]]);
    });

    it('applyRepackBatch refuses malformed batches and ones naming other EKs (moving nothing), and does nothing to an unknown or finished repack', async () => {
      const env = await ctx.freshEnvironment();
      const from = await current(ctx.store, env.id);
      const keys = await under(ctx.store, env, from.ek.id, 'connection', 2);
      const repack = (await ctx.store.rotateEnvironmentKey(rotation(env.id, from)))!;
      const base = batchOf(repack, keys);
      const malformed: RepackBatch[] = [
        { ...base, keys: [base.keys[0]!, { ...base.keys[0]!, wrapped: wrappedKey() }] },
        { ...base, keys: [{ ...base.keys[0]!, wrapped: Buffer.alloc(0) }] },
        { ...base, keys: [{ ...base.keys[0]!, expectedWrapped: Buffer.alloc(0) }] },
        { ...base, keys: [{ ...base.keys[0]!, wrapped: 'bytes' as unknown as Buffer }] },
        { ...base, keys: [{ ...base.keys[0]!, id: '' }] },
        { ...base, toEkId: base.fromEkId },
        { ...base, runner: '' },
        { ...base, at: new Date(Number.NaN) },
        { ...base, keys: Array.from({ length: 10_001 }, () => ({ id: newId(), expectedWrapped: wrappedKey(), wrapped: wrappedKey() })) },
        // Well-formed, but not this repack's EKs or environment.
        { ...base, toEkId: keys[1]!.id },
        { ...base, fromEkId: keys[1]!.id },
        { ...base, environmentId: (await ctx.freshEnvironment()).id },
      ];
      for (const batch of malformed) await expect(ctx.store.applyRepackBatch(batch)).rejects.toThrow(TypeError);
      expect(await ctx.store.getRepack(env.id)).toEqual(repack);
      expect(await ctx.store.listKeysUnder(env.id, from.ek.id, 10)).toEqual(byId(keys));

      expect(await ctx.store.applyRepackBatch({ ...base, repackId: newId() })).toBeUndefined();
      expect(await ctx.store.listKeysUnder(env.id, from.ek.id, 10)).toEqual(byId(keys));
      // Once done (everything moved), a late batch changes nothing.
      expect((await ctx.store.applyRepackBatch(base))?.done).toBe(2);
      const done = (await ctx.store.finishRepack(repack.id, new Date(Date.UTC(2030, 0, 2))))!;
      const moved = await ctx.store.listKeysUnder(env.id, repack.toEkId, 10);
      expect(await ctx.peer.applyRepackBatch(batchOf(done, moved))).toBeUndefined();
      expect(await ctx.store.getRepack(env.id)).toEqual(done);
      expect(await ctx.store.listKeysUnder(env.id, repack.toEkId, 10)).toEqual(moved);
    });

    it('batches of the same keys applied at once from two nodes move each key once; done ends at the number of keys', async () => {
      const env = await ctx.freshEnvironment();
      const from = await current(ctx.store, env.id);
      const keys = byId([
        ...(await under(ctx.store, env, from.ek.id, 'connection', 120)),
        ...(await under(ctx.peer, env, from.ek.id, 'hourly', 40)),
        ...(await under(ctx.store, env, from.ek.id, 'context', 40)),
      ]);
      const repack = (await ctx.store.rotateEnvironmentKey(rotation(env.id, from)))!;
      expect(repack.total).toBe(200);
      // Each node re-wraps every key (its own bytes) and sends overlapping batches in its own order.
      const chunks = (list: readonly KeyRecord[], size: number): KeyRecord[][] =>
        Array.from({ length: Math.ceil(list.length / size) }, (_, i) => list.slice(i * size, (i + 1) * size));
      const nodeA = chunks(keys, 50).map((c) => batchOf(repack, c, { runner: 'node-a:1' }));
      const nodeB = chunks([...keys].reverse(), 30).map((c) => batchOf(repack, c, { runner: 'node-b:2' }));
      await Promise.all([
        (async () => { for (const b of nodeA) await ctx.store.applyRepackBatch(b); })(),
        (async () => { for (const b of nodeB) await ctx.peer.applyRepackBatch(b); })(),
        ...nodeA.map((b) => ctx.peer.applyRepackBatch(b)),
      ]);
      const after = (await ctx.store.getRepack(env.id))!;
      expect(after.done).toBe(200);
      expect(await ctx.store.listKeysUnder(env.id, from.ek.id, 1000)).toEqual([]);
      const proposals = new Map<string, Buffer[]>();
      for (const b of [...nodeA, ...nodeB]) for (const k of b.keys) proposals.set(k.id, [...(proposals.get(k.id) ?? []), k.wrapped]);
      const moved = await ctx.store.listKeysUnder(env.id, repack.toEkId, 1000);
      expect(moved.map((k) => k.id)).toEqual(keys.map((k) => k.id));
      for (const k of moved) expect(proposals.get(k.id)!.some((w) => w.equals(k.wrapped))).toBe(true);
    });
  });

  describe('repack: pausing and finishing', () => {
    it('setRepackPaused pauses with a reason and resumes with null, recording runner and time; nothing for an unknown or finished repack', async () => {
      const env = await ctx.freshEnvironment();
      const repack = (await ctx.store.rotateEnvironmentKey(rotation(env.id, await current(ctx.store, env.id))))!;
      const at = (m: number) => new Date(Date.UTC(2030, 0, 1, 12, m));
      const paused = await ctx.store.setRepackPaused(repack.id, 'The old CMK cannot be used: access denied.', 'node-a:1', at(1));
      expect(paused).toEqual({ ...repack, state: 'paused', pausedReason: 'The old CMK cannot be used: access denied.', runner: 'node-a:1', updatedAt: at(1) });
      expect(await ctx.peer.getRepack(env.id)).toEqual(paused);
      const again = await ctx.peer.setRepackPaused(repack.id, 'still denied', 'node-b:2', at(2));
      expect(again).toEqual({ ...paused, pausedReason: 'still denied', runner: 'node-b:2', updatedAt: at(2) });
      const resumed = await ctx.store.setRepackPaused(repack.id, null, 'node-a:1', at(3));
      expect(resumed).toEqual({ ...repack, runner: 'node-a:1', updatedAt: at(3) });
      expect(await ctx.store.getRepack(env.id)).toEqual(resumed);

      expect(await ctx.store.setRepackPaused(newId(), 'x', 'node-a:1', at(4))).toBeUndefined();
      await expect(ctx.store.setRepackPaused(repack.id, '', 'node-a:1', at(4))).rejects.toThrow(TypeError);
      await expect(ctx.store.setRepackPaused(repack.id, 'x', '', at(4))).rejects.toThrow(TypeError);
      await expect(ctx.store.setRepackPaused(repack.id, 'x', 'node-a:1', new Date(Number.NaN))).rejects.toThrow(TypeError);
      const done = (await ctx.store.finishRepack(repack.id, at(5)))!;
      expect(await ctx.peer.setRepackPaused(repack.id, 'too late', 'node-b:2', at(6))).toBeUndefined();
      expect(await ctx.store.getRepack(env.id)).toEqual(done);
    });

    it('finishRepack refuses while keys remain under the old EK; then marks it done and destroys the old EK (wrapped erased, announced), audited only then', async () => {
      const env = await ctx.freshEnvironment();
      const from = await current(ctx.store, env.id);
      const keys = await under(ctx.store, env, from.ek.id, 'hourly', 3);
      const change = rotation(env.id, from);
      const repack = (await ctx.store.rotateEnvironmentKey(change))!;
      const entry = () => auditDraft(env.workspaceId, { environmentId: env.id });
      const heard = recorder();
      const stop = ctx.store.watchKeyStates(heard.listener);
      try {
        await untilDelivered(ctx.store, ctx.store, env);
        const at = new Date(Date.UTC(2030, 0, 1, 15, 0, 0, 123));

        // Two keys moved, one left: nothing is written.
        const progressed = (await ctx.store.applyRepackBatch(batchOf(repack, keys.slice(0, 2))))!;
        expect(await ctx.store.finishRepack(repack.id, at, auditAppend(entry()))).toBeUndefined();
        expect(await ctx.peer.finishRepack(repack.id, at)).toBeUndefined();
        expect(await ctx.store.getRepack(env.id)).toEqual(progressed);
        expect(await ctx.store.getKey(env.id, from.ek.id)).toEqual({ ...from.ek, state: 'decrypt-only' });
        expect(await ctx.store.getAuditHead(env.workspaceId)).toBeUndefined();

        const paused = (await ctx.store.setRepackPaused(repack.id, 'a pause', 'node-a:1', at))!;
        expect((await ctx.peer.applyRepackBatch({ ...batchOf(repack, keys.slice(2)), at: paused.updatedAt }))?.done).toBe(3);
        await ctx.store.setRepackPaused(repack.id, 'paused again', 'node-a:1', at);
        // Audit about another workspace is refused with the finish.
        await expect(ctx.store.finishRepack(repack.id, at, auditAppend(auditDraft(newId())))).rejects.toThrow(TypeError);
        await expect(ctx.store.finishRepack(repack.id, new Date(Number.NaN))).rejects.toThrow(TypeError);
        expect((await ctx.store.getRepack(env.id))?.state).toBe('paused');
        expect((await ctx.store.getKey(env.id, from.ek.id))?.state).toBe('decrypt-only');

        const finishEntry = entry();
        const finished = await ctx.peer.finishRepack(repack.id, at, auditAppend(finishEntry));
        expect(finished).toEqual({ ...repack, state: 'done', done: 3, finishedAt: at, updatedAt: at, pausedReason: null, runner: 'node-a:1' });
        expect(await ctx.store.getRepack(env.id)).toEqual(finished);
        expect(await ctx.store.listUnfinishedRepacks(1000)).not.toContainEqual(expect.objectContaining({ id: repack.id }));
        const oldEk = (await ctx.store.getKey(env.id, from.ek.id))!;
        expect(oldEk).toEqual({ ...from.ek, state: 'destroyed', wrapped: Buffer.alloc(0), destroyAt: null });
        expect(Buffer.isBuffer(oldEk.wrapped) && oldEk.wrapped.length === 0).toBe(true);
        expect(await ctx.store.getActiveEk(env.id)).toEqual({ ...change.ek, destroyAt: null });
        expect(await auditIds(ctx.store, env.workspaceId)).toEqual([finishEntry.id]);
        if (ctx.kind === 'sqlite') {
          // SQLite announces to the watchers of the store that made the change only: finish through this one too.
          expect(heard.events.some((e) => e.keyId === from.ek.id && e.state === 'destroyed')).toBe(false);
        } else {
          expect(await heard.waitFor((e) => e.keyId === from.ek.id && e.state === 'destroyed')).toEqual({ environmentId: env.id, keyId: from.ek.id, state: 'destroyed' });
        }

        // Finished: a second finish does nothing, audit included.
        expect(await ctx.store.finishRepack(repack.id, at, auditAppend(entry()))).toBeUndefined();
        expect(await ctx.store.finishRepack(newId(), at, auditAppend(entry()))).toBeUndefined();
        expect(await auditIds(ctx.store, env.workspaceId)).toEqual([finishEntry.id]);
      } finally {
        stop();
      }
    });

    it('finishRepack announces the destroyed old EK to the watchers of the store that finished it', async () => {
      const env = await ctx.freshEnvironment();
      const from = await current(ctx.store, env.id);
      const repack = (await ctx.store.rotateEnvironmentKey(rotation(env.id, from)))!;
      const heard = recorder();
      const stop = ctx.store.watchKeyStates(heard.listener);
      try {
        await untilDelivered(ctx.store, ctx.store, env);
        await ctx.store.finishRepack(repack.id, new Date());
        const destroyed = (e: { keyId: string; state: string }) => e.keyId === from.ek.id && e.state === 'destroyed';
        expect(await heard.waitFor(destroyed)).toEqual({ environmentId: env.id, keyId: from.ek.id, state: 'destroyed' });
        // Once: a second finish does nothing.
        expect(await ctx.store.finishRepack(repack.id, new Date())).toBeUndefined();
        await untilDelivered(ctx.store, ctx.store, env);
        expect(heard.events.filter(destroyed)).toHaveLength(1);
      } finally {
        stop();
      }
    });
  });

  describe('keys under a retired EK', () => {
    it('insertKeyIfAbsent under an EK that is not active throws StaleParentError and writes nothing, unless the key is already stored', async () => {
      const env = await ctx.freshEnvironment();
      const from = await current(ctx.store, env.id);
      const hour = 1_900_000_000;
      const hourly = await ctx.store.insertKeyIfAbsent(key(env.id, 'hourly', { hourStart: hour, parentId: from.ek.id }));
      const connection = await ctx.store.insertKeyIfAbsent(key(env.id, 'connection', { scopeId: 'c1', parentId: from.ek.id }));
      const change = rotation(env.id, from);
      const repack = (await ctx.store.rotateEnvironmentKey(change))!;
      const stats = await ctx.store.keyStats(env.id);

      const refused = [
        key(env.id, 'connection', { scopeId: 'c2', parentId: from.ek.id }),
        key(env.id, 'context', { scopeId: 'f'.repeat(64), parentId: from.ek.id }),
        key(env.id, 'hourly', { hourStart: hour + 3600, parentId: from.ek.id }),
        key(env.id, 'log', { parentId: from.ek.id }),
      ];
      for (const [i, k] of refused.entries()) {
        await expect((i % 2 ? ctx.peer : ctx.store).insertKeyIfAbsent(k)).rejects.toBeInstanceOf(StaleParentError);
        expect(await ctx.store.getKey(env.id, k.id)).toBeUndefined();
      }
      expect(await ctx.store.keyStats(env.id)).toEqual(stats);

      // The identity is taken already: the stored key is the answer (whatever EK it is under).
      expect(await ctx.peer.insertKeyIfAbsent(key(env.id, 'hourly', { hourStart: hour, parentId: from.ek.id }))).toEqual(hourly);
      expect(await ctx.store.insertKeyIfAbsent(key(env.id, 'connection', { scopeId: 'c1', parentId: from.ek.id }))).toEqual(connection);
      expect(await ctx.store.insertKeyIfAbsent(connection)).toEqual(connection);
      // Under the new EK, and under keys that are not EKs (a job key under an hourly key still under the old EK), inserts go on.
      const fresh = key(env.id, 'connection', { scopeId: 'c2', parentId: change.ek.id });
      expect(await ctx.store.insertKeyIfAbsent(fresh)).toEqual(fresh);
      const job = key(env.id, 'job', { scopeId: 'j1', parentId: hourly.id });
      expect(await ctx.peer.insertKeyIfAbsent(job)).toEqual(job);
      expect((await ctx.store.getRepack(env.id))?.total).toBe(2);

      // Destroyed (repack done) is not active either.
      await ctx.store.applyRepackBatch(batchOf(repack, [hourly, connection]));
      expect((await ctx.store.finishRepack(repack.id, new Date()))?.state).toBe('done');
      await expect(ctx.store.insertKeyIfAbsent(key(env.id, 'connection', { scopeId: 'c3', parentId: from.ek.id }))).rejects.toBeInstanceOf(StaleParentError);
      expect(await ctx.store.findScopedKey(env.id, 'connection', 'c3')).toBeUndefined();
      // And so is an EK disabled by hand.
      const other = await ctx.freshEnvironment();
      const otherEk = (await ctx.store.getActiveEk(other.id))!;
      await ctx.store.setKeyState({ environmentId: other.id, keyId: otherEk.id, from: ['active'], to: 'disabled' });
      await expect(ctx.store.insertKeyIfAbsent(key(other.id, 'connection', { scopeId: 'c', parentId: otherEk.id }))).rejects.toBeInstanceOf(StaleParentError);
    });

    it('latestHourlyKey is the environment\'s hourly key with the greatest hourStart', async () => {
      const env = await ctx.freshEnvironment();
      const other = await ctx.freshEnvironment();
      const { ek } = await current(ctx.store, env.id);
      expect(await ctx.store.latestHourlyKey(env.id)).toBeUndefined();
      const hours = [7200, 3600, 14_400, 0].map((h) => key(env.id, 'hourly', { hourStart: 1_700_000_000 + h, parentId: ek.id }));
      for (const h of hours) await ctx.store.insertKeyIfAbsent(h);
      await ctx.store.insertKeyIfAbsent(key(other.id, 'hourly', { hourStart: 1_800_000_000 }));
      expect(await ctx.peer.latestHourlyKey(env.id)).toEqual(hours[2]);
      const newest = key(env.id, 'hourly', { hourStart: 1_700_000_000 + 18_000, parentId: ek.id });
      await ctx.store.insertKeyIfAbsent(newest);
      expect(await ctx.store.latestHourlyKey(env.id)).toEqual(newest);
      expect(await ctx.store.latestHourlyKey(newId())).toBeUndefined();
    });
  });
}
