import { describe, expect, it } from 'vitest';
import { newId } from '../../../src/core/bytes.js';
import {
  StoreConflictError, type AuditEntryRecord, type EnvironmentRecord, type KeyRecord, type KeyStateChange, type Store,
} from '../../../src/store/store.js';
import { auditAppend, auditDraft, key, newEnvironment, newWorkspace } from '../fixtures.js';
import { recorder, untilDelivered } from '../key-events.js';
import type { ContractContext } from './context.js';

async function auditIds(store: Store, workspaceId: string): Promise<string[]> {
  const entries: readonly AuditEntryRecord[] = await store.listAuditEntries(workspaceId, { afterSeq: 0, limit: 1000 });
  return entries.map((e) => e.id);
}

/** A job key of the environment, stored. */
async function jobKey(store: Store, env: EnvironmentRecord, fields: Partial<KeyRecord> = {}): Promise<KeyRecord> {
  return store.insertKeyIfAbsent(key(env.id, 'job', { scopeId: newId(), ...fields }));
}

function change(k: KeyRecord, from: KeyStateChange['from'], to: KeyStateChange['to'], destroyAt?: Date | null): KeyStateChange {
  return { environmentId: k.environmentId, keyId: k.id, from, to, ...(destroyAt === undefined ? {} : { destroyAt }) };
}

/** Key lifecycle: the compare-and-set of a key's state, crypto-shredding, the due list, and change announcements. */
export function lifecycleContract(ctx: ContractContext): void {
  describe('key lifecycle: setKeyState', () => {
    it('applies only when the current state is in from, returning the updated record; otherwise returns undefined and writes nothing', async () => {
      const env = await ctx.freshEnvironment();
      const other = await ctx.freshEnvironment();
      const k = await jobKey(ctx.store, env);
      expect(k.destroyAt).toBeNull();

      expect(await ctx.store.setKeyState(change(k, ['decrypt-only', 'disabled'], 'active'))).toBeUndefined();
      expect(await ctx.store.setKeyState({ ...change(k, ['active'], 'disabled'), environmentId: other.id })).toBeUndefined();
      expect(await ctx.store.setKeyState({ ...change(k, ['active'], 'disabled'), keyId: newId() })).toBeUndefined();
      expect(await ctx.store.getKey(env.id, k.id)).toEqual(k);

      const decryptOnly = await ctx.store.setKeyState(change(k, ['active'], 'decrypt-only'));
      expect(decryptOnly).toEqual({ ...k, state: 'decrypt-only', destroyAt: null });
      expect(await ctx.peer.getKey(env.id, k.id)).toEqual(decryptOnly);
      // Any listed state matches; the change is seen by the other node at once.
      expect(await ctx.peer.setKeyState(change(k, ['active', 'decrypt-only'], 'disabled'))).toEqual({ ...k, state: 'disabled', destroyAt: null });
      expect(await ctx.store.setKeyState(change(k, ['active', 'decrypt-only'], 'active'))).toBeUndefined();
      expect((await ctx.store.getKey(env.id, k.id))!.state).toBe('disabled');
    });

    it('writes its audit in the same transaction, and only when the change applies', async () => {
      const env = await ctx.freshEnvironment();
      const k = await jobKey(ctx.store, env);
      const entry = () => auditDraft(env.workspaceId, { environmentId: env.id });

      expect(await ctx.store.setKeyState(change(k, ['disabled'], 'active'), auditAppend(entry()))).toBeUndefined();
      expect(await ctx.peer.setKeyState({ ...change(k, ['active'], 'disabled'), keyId: newId() }, auditAppend(entry()))).toBeUndefined();
      expect(await ctx.store.getAuditHead(env.workspaceId)).toBeUndefined();

      const applied = entry();
      expect((await ctx.store.setKeyState(change(k, ['active'], 'disabled'), auditAppend(applied)))?.state).toBe('disabled');
      const second = entry();
      expect((await ctx.peer.setKeyState(change(k, ['disabled'], 'active'), auditAppend(second)))?.state).toBe('active');
      expect(await auditIds(ctx.store, env.workspaceId)).toEqual([applied.id, second.id]);

      // A failing append undoes the change: an entry id already taken, audit about another workspace.
      await expect(ctx.store.setKeyState(change(k, ['active'], 'disabled'), auditAppend({ ...entry(), id: applied.id }))).rejects.toBeInstanceOf(
        StoreConflictError,
      );
      await expect(ctx.peer.setKeyState(change(k, ['active'], 'disabled'), auditAppend(auditDraft(newId())))).rejects.toThrow(TypeError);
      expect((await ctx.store.getKey(env.id, k.id))!.state).toBe('active');
      expect(await auditIds(ctx.store, env.workspaceId)).toEqual([applied.id, second.id]);
    });

    it('to scheduled-destruction stores destroyAt; any other state clears it, even one the change carries', async () => {
      const env = await ctx.freshEnvironment();
      const k = await jobKey(ctx.store, env);
      const at = new Date(Date.UTC(2031, 0, 2, 3, 4, 5, 678));
      const scheduled = await ctx.store.setKeyState(change(k, ['active'], 'scheduled-destruction', at));
      expect(scheduled).toEqual({ ...k, state: 'scheduled-destruction', destroyAt: at });
      expect((await ctx.peer.getKey(env.id, k.id))!.destroyAt!.getTime()).toBe(at.getTime());

      // Rescheduling moves the date.
      const later = new Date(at.getTime() + 86_400_000);
      expect((await ctx.store.setKeyState(change(k, ['scheduled-destruction'], 'scheduled-destruction', later)))?.destroyAt).toEqual(later);
      // Cancelling clears it, whatever the change carries.
      expect(await ctx.peer.setKeyState(change(k, ['scheduled-destruction'], 'disabled', at))).toEqual({ ...k, state: 'disabled', destroyAt: null });
      expect((await ctx.store.getKey(env.id, k.id))!.destroyAt).toBeNull();
    });

    it('to destroyed erases the wrapped key in the same write (zero bytes), leaving every other key as it was', async () => {
      const env = await ctx.freshEnvironment();
      const ek = (await ctx.store.getActiveEk(env.id))!;
      const k = await jobKey(ctx.store, env, { parentId: ek.id });
      const sibling = await jobKey(ctx.store, env, { parentId: ek.id });
      await ctx.store.setKeyState(change(k, ['active'], 'scheduled-destruction', new Date()));

      const destroyed = (await ctx.peer.setKeyState(change(k, ['scheduled-destruction'], 'destroyed')))!;
      expect(destroyed.state).toBe('destroyed');
      expect(destroyed.destroyAt).toBeNull();
      expect(Buffer.isBuffer(destroyed.wrapped)).toBe(true);
      expect(destroyed.wrapped.length).toBe(0);
      const stored = (await ctx.store.getKey(env.id, k.id))!;
      expect(stored).toEqual({ ...k, state: 'destroyed', wrapped: Buffer.alloc(0), destroyAt: null });
      expect(stored.wrapped.length).toBe(0);

      expect(await ctx.store.getKey(env.id, sibling.id)).toEqual(sibling);
      expect(await ctx.store.getActiveEk(env.id)).toEqual(ek);
      // Destroyed is final for every from that does not name it.
      expect(await ctx.store.setKeyState(change(k, ['active', 'scheduled-destruction'], 'active'))).toBeUndefined();
    });

    it('refuses malformed changes before touching the database', async () => {
      const env = await ctx.freshEnvironment();
      const k = await jobKey(ctx.store, env);
      const malformed: KeyStateChange[] = [
        change(k, [], 'disabled'),
        change(k, ['bogus' as KeyRecord['state']], 'disabled'),
        change(k, ['active'], 'bogus' as KeyRecord['state']),
        change(k, ['active'], 'scheduled-destruction'),
        change(k, ['active'], 'scheduled-destruction', null),
        change(k, ['active'], 'scheduled-destruction', new Date(Number.NaN)),
        { ...change(k, ['active'], 'disabled'), keyId: '' },
        { ...change(k, ['active'], 'disabled'), environmentId: '' },
      ];
      for (const c of malformed) await expect(ctx.store.setKeyState(c)).rejects.toThrow(TypeError);
      expect(await ctx.store.getKey(env.id, k.id)).toEqual(k);
    });

    it('of concurrent changes with the same from on two nodes exactly one applies, with its audit alone', async () => {
      const env = await ctx.freshEnvironment();
      const k = await jobKey(ctx.store, env);
      const attempts = Array.from({ length: 10 }, (_, i) => ({
        to: i % 3 === 0 ? ('decrypt-only' as const) : ('disabled' as const),
        entry: auditDraft(env.workspaceId, { environmentId: env.id }),
      }));
      const results = await Promise.all(attempts.map((a, i) => (i % 2 ? ctx.peer : ctx.store).setKeyState(change(k, ['active'], a.to), auditAppend(a.entry))));
      const applied = results.filter((r) => r !== undefined);
      expect(applied).toHaveLength(1);
      const winner = attempts[results.findIndex((r) => r !== undefined)]!;
      expect((await ctx.store.getKey(env.id, k.id))!.state).toBe(winner.to);
      expect(await auditIds(ctx.store, env.workspaceId)).toEqual([winner.entry.id]);
    });
  });

  describe('key lifecycle: listDueDestructions', () => {
    it('lists scheduled keys due at now (inclusive) in every environment, soonest first, then by id in code point order, up to limit', async () => {
      const own = await (await ctx.freshLocation()).open();
      try {
        const a = newWorkspace();
        await own.createWorkspace(a.workspace, a.first);
        const b = newEnvironment(a.workspace.id, 'staging');
        await own.createEnvironment(b);
        const c = newWorkspace();
        await own.createWorkspace(c.workspace, c.first);
        const envs = [a.first.environment, b.environment, c.first.environment];

        const now = new Date(Date.UTC(2030, 5, 1, 12, 0, 0, 0));
        const t = (offsetMs: number) => new Date(now.getTime() + offsetMs);
        const schedule = async (env: EnvironmentRecord, id: string, at: Date): Promise<KeyRecord> => {
          const k = await jobKey(own, env, { id });
          return (await own.setKeyState(change(k, ['active'], 'scheduled-destruction', at)))!;
        };
        // Ids in mixed case: code point order puts "Z…" before "a…", which a locale collation would not.
        const due = [
          await schedule(envs[2]!, `m-${newId()}`, t(-3_600_000)),
          await schedule(envs[0]!, `a-${newId()}`, t(-60_000)),
          await schedule(envs[1]!, `Z-${newId()}`, t(-60_000)),
          await schedule(envs[0]!, `b-${newId()}`, now),
        ];
        const expected = [due[0]!, due[2]!, due[1]!, due[3]!];
        // Not due yet, cancelled, destroyed, or never scheduled.
        await schedule(envs[1]!, `0-${newId()}`, t(1));
        const cancelled = await schedule(envs[2]!, `1-${newId()}`, t(-7_200_000));
        await own.setKeyState(change(cancelled, ['scheduled-destruction'], 'disabled'));
        const destroyed = await schedule(envs[0]!, `2-${newId()}`, t(-7_200_000));
        await own.setKeyState(change(destroyed, ['scheduled-destruction'], 'destroyed'));
        await jobKey(own, envs[0]!, { state: 'disabled' });

        expect(await own.listDueDestructions(now, 1000)).toEqual(expected);
        expect(await own.listDueDestructions(now, 2)).toEqual(expected.slice(0, 2));
        expect(await own.listDueDestructions(t(-1), 1000)).toEqual(expected.slice(0, 3));
        expect(await own.listDueDestructions(t(-7_200_001), 1000)).toEqual([]);
        expect((await own.listDueDestructions(t(1), 1000)).map((k) => k.id)).toEqual([...expected.map((k) => k.id), expect.stringMatching(/^0-/)]);

        for (const limit of [0, 1001, 1.5, Number.NaN]) await expect(own.listDueDestructions(now, limit)).rejects.toThrow(TypeError);
        await expect(own.listDueDestructions(new Date(Number.NaN), 10)).rejects.toThrow(TypeError);
      } finally {
        await own.close();
      }
    });
  });

  describe('key lifecycle: watchKeyStates', () => {
    it('tells every listener of the store about each applied change, nothing about changes that did not apply or rolled back', async () => {
      const env = await ctx.freshEnvironment();
      const k = await jobKey(ctx.store, env);
      const first = recorder();
      const second = recorder();
      const stopFirst = ctx.store.watchKeyStates(first.listener);
      const stopSecond = ctx.store.watchKeyStates(second.listener);
      try {
        await untilDelivered(ctx.store, ctx.store, env);
        const mine = (e: { keyId: string }) => e.keyId === k.id;

        expect(await ctx.store.setKeyState(change(k, ['disabled'], 'active'))).toBeUndefined();
        await expect(ctx.store.setKeyState(change(k, ['active'], 'disabled'), auditAppend(auditDraft(newId())))).rejects.toThrow(TypeError);
        await ctx.store.setKeyState(change(k, ['active'], 'scheduled-destruction', new Date()));
        expect(await first.waitFor(mine)).toEqual({ environmentId: env.id, keyId: k.id, state: 'scheduled-destruction' });
        await second.waitFor(mine);

        // Unsubscribed: the first hears nothing more, the second goes on (so the later change did arrive).
        stopFirst();
        stopFirst();
        await ctx.store.setKeyState(change(k, ['scheduled-destruction'], 'destroyed'));
        await second.waitFor((e) => mine(e) && e.state === 'destroyed');
        expect(first.events.filter(mine).map((e) => e.state)).toEqual(['scheduled-destruction']);
        expect(second.events.filter(mine).map((e) => e.state)).toEqual(['scheduled-destruction', 'destroyed']);
      } finally {
        stopFirst();
        stopSecond();
      }
    });

    it('a listener that throws breaks neither setKeyState nor the other listeners', async () => {
      const env = await ctx.freshEnvironment();
      const k = await jobKey(ctx.store, env);
      const after = recorder();
      const stops = [
        ctx.store.watchKeyStates(() => {
          throw new Error('listener failure');
        }),
        ctx.store.watchKeyStates(after.listener),
      ];
      try {
        await untilDelivered(ctx.store, ctx.store, env);
        expect((await ctx.store.setKeyState(change(k, ['active'], 'disabled')))?.state).toBe('disabled');
        await after.waitFor((e) => e.keyId === k.id && e.state === 'disabled');
        expect((await ctx.store.setKeyState(change(k, ['disabled'], 'active')))?.state).toBe('active');
        await after.waitFor((e) => e.keyId === k.id && e.state === 'active');
      } finally {
        for (const stop of stops) stop();
      }
    });

    // Backend-specific cases are only registered for their backend (never reported as skipped).
    if (ctx.kind === 'postgres') it('PostgreSQL: a change made on another node reaches this node\'s listeners within a second', async () => {
      const env = await ctx.freshEnvironment();
      const k = await jobKey(ctx.store, env);
      const heard = recorder();
      const stop = ctx.store.watchKeyStates(heard.listener);
      try {
        await untilDelivered(ctx.store, ctx.peer, env);
        const started = Date.now();
        await ctx.peer.setKeyState(change(k, ['active'], 'decrypt-only'));
        expect(await heard.waitFor((e) => e.keyId === k.id, 1_000)).toEqual({ environmentId: env.id, keyId: k.id, state: 'decrypt-only' });
        expect(Date.now() - started).toBeLessThan(1_000);
      } finally {
        stop();
      }
    });

    // SQLite is the single-node store: listeners hear the changes made through their own store
    // object, not those of another connection to the file (there is no channel between them).
    if (ctx.kind === 'sqlite') it('SQLite: a change through another store on the same file is not announced (single node by design)', async () => {
      const env = await ctx.freshEnvironment();
      const k = await jobKey(ctx.store, env);
      const heard = recorder();
      const stop = ctx.store.watchKeyStates(heard.listener);
      try {
        await ctx.peer.setKeyState(change(k, ['active'], 'disabled'));
        await ctx.store.setKeyState(change(k, ['disabled'], 'active'));
        expect(heard.events.filter((e) => e.keyId === k.id).map((e) => e.state)).toEqual(['active']);
      } finally {
        stop();
      }
    });
  });
}
