import { describe, expect, it } from 'vitest';
import { newId } from '../../../src/core/bytes.js';
import {
  AUDIT_GENESIS_LINK, StoreConflictError, type AuditAppend, type AuditEntryRecord, type AuditLinker, type Store,
} from '../../../src/store/store.js';
import {
  auditAppend, auditDraft, chainFault, clientToken, newClient, newEnvironment, newObject, newWorkspace, objectVersion, testLinker,
} from '../fixtures.js';
import type { ContractContext } from './context.js';

/** Every entry of a workspace's chain, read in pages of at most 1000. */
async function readChain(store: Store, workspaceId: string): Promise<AuditEntryRecord[]> {
  const all: AuditEntryRecord[] = [];
  for (;;) {
    const page = await store.listAuditEntries(workspaceId, { afterSeq: all.length === 0 ? 0 : all[all.length - 1]!.seq, limit: 1000 });
    all.push(...page);
    if (page.length < 1000) return all;
  }
}

/** Asserts the chain is 1..n with valid links, its head is the last entry, and returns the ids in order. */
async function expectValidChain(store: Store, workspaceId: string, length: number): Promise<string[]> {
  const chain = await readChain(store, workspaceId);
  expect(chain).toHaveLength(length);
  expect(chainFault(chain)).toBeUndefined();
  const last = chain[chain.length - 1];
  expect(await store.getAuditHead(workspaceId)).toEqual(last && { seq: last.seq, link: last.link });
  return chain.map((e) => e.id);
}

/** The per-workspace audit chain, alone and written together with changes. */
export function auditContract(ctx: ContractContext): void {
  const freshWorkspace = async (): Promise<string> => (await ctx.freshEnvironment()).workspaceId;

  describe('audit log', () => {
    it('appendAudit numbers entries 1, 2, 3 … and links each to the previous link', async () => {
      const ws = await freshWorkspace();
      expect(await ctx.store.getAuditHead(ws)).toBeUndefined();
      expect(await ctx.store.listAuditEntries(ws, { afterSeq: 0, limit: 10 })).toEqual([]);
      const env = newId();
      const drafts = [
        auditDraft(ws, { environmentId: env, sealing: 'log-key', at: new Date(Date.UTC(2025, 0, 1, 0, 0, 0, 1)) }),
        auditDraft(ws, { body: Buffer.from(Array.from({ length: 256 }, (_, i) => i)) }),
        auditDraft(ws, { body: Buffer.alloc(0), at: new Date(1) }),
      ];
      const calls: { seq: number; previous: Buffer }[] = [];
      const recording: AuditLinker = (entry, previous) => {
        calls.push({ seq: entry.seq, previous: Buffer.from(previous) });
        return testLinker(entry, previous);
      };
      await ctx.store.appendAudit({ entries: drafts.slice(0, 2), link: recording });
      await ctx.peer.appendAudit({ entries: drafts.slice(2), link: recording });

      const chain = await ctx.store.listAuditEntries(ws, { afterSeq: 0, limit: 10 });
      expect(chain.map((e) => e.seq)).toEqual([1, 2, 3]);
      // Every field round-trips exactly; the links are the linker's, computed from the previous link.
      let previous = AUDIT_GENESIS_LINK;
      for (const [i, entry] of chain.entries()) {
        const { link, seq, ...draft } = entry;
        expect(draft).toEqual(drafts[i]);
        expect(link.equals(testLinker({ ...draft, seq }, previous))).toBe(true);
        previous = link;
      }
      expect(calls.map((c) => c.seq)).toEqual([1, 2, 3]);
      expect(calls[0]!.previous.equals(AUDIT_GENESIS_LINK)).toBe(true);
      expect(calls[2]!.previous.equals(chain[1]!.link)).toBe(true);
      expect(await ctx.peer.getAuditHead(ws)).toEqual({ seq: 3, link: chain[2]!.link });
    });

    it('one append may span workspaces: each chain takes its own entries in the given order', async () => {
      const a = await freshWorkspace();
      const b = await freshWorkspace();
      const drafts = [auditDraft(b), auditDraft(a), auditDraft(b), auditDraft(b), auditDraft(a)];
      await ctx.store.appendAudit(auditAppend(...drafts));
      const more = [auditDraft(a), auditDraft(b)];
      await ctx.peer.appendAudit(auditAppend(...more));
      expect(await expectValidChain(ctx.store, a, 3)).toEqual([drafts[1]!.id, drafts[4]!.id, more[0]!.id]);
      expect(await expectValidChain(ctx.store, b, 4)).toEqual([drafts[0]!.id, drafts[2]!.id, drafts[3]!.id, more[1]!.id]);
    });

    it('concurrent appends from two nodes yield 1..N without gaps or duplicates and a valid chain', async () => {
      const ws = await freshWorkspace();
      const other = await freshWorkspace();
      const appends = Array.from({ length: 24 }, (_, i) => {
        const entries = Array.from({ length: 1 + (i % 3) }, () => auditDraft(ws));
        // Some appends also touch a second workspace, listed first or last: lock order must not matter.
        if (i % 4 === 0) entries.unshift(auditDraft(other));
        if (i % 4 === 2) entries.push(auditDraft(other));
        return auditAppend(...entries);
      });
      await Promise.all(appends.map((append, i) => (i % 2 ? ctx.peer : ctx.store).appendAudit(append)));
      const expected = appends.flatMap((a) => a.entries.filter((e) => e.workspaceId === ws).map((e) => e.id));
      const ids = await expectValidChain(ctx.store, ws, expected.length);
      expect([...ids].sort()).toEqual([...expected].sort());
      // Each append's entries stay together and in order: no other append interleaves with them.
      for (const append of appends) {
        const own = append.entries.filter((e) => e.workspaceId === ws).map((e) => e.id);
        const start = ids.indexOf(own[0]!);
        expect(ids.slice(start, start + own.length)).toEqual(own);
      }
      await expectValidChain(ctx.store, other, appends.filter((_, i) => i % 2 === 0).length);
    });

    it('listAuditEntries pages by afterSeq and limit (1..1000); chains of other workspaces stay apart', async () => {
      const ws = await freshWorkspace();
      const other = await freshWorkspace();
      const drafts = Array.from({ length: 25 }, () => auditDraft(ws));
      await ctx.store.appendAudit(auditAppend(...drafts));
      await ctx.store.appendAudit(auditAppend(auditDraft(other)));
      const page = await ctx.store.listAuditEntries(ws, { afterSeq: 10, limit: 5 });
      expect(page.map((e) => e.seq)).toEqual([11, 12, 13, 14, 15]);
      expect(page.map((e) => e.id)).toEqual(drafts.slice(10, 15).map((d) => d.id));
      expect((await ctx.store.listAuditEntries(ws, { afterSeq: 23, limit: 1000 })).map((e) => e.seq)).toEqual([24, 25]);
      expect(await ctx.store.listAuditEntries(ws, { afterSeq: 25, limit: 10 })).toEqual([]);
      expect(await ctx.store.listAuditEntries(newId(), { afterSeq: 0, limit: 10 })).toEqual([]);
      expect((await ctx.store.listAuditEntries(other, { afterSeq: 0, limit: 10 })).map((e) => e.seq)).toEqual([1]);
      for (const bad of [{ afterSeq: 0, limit: 0 }, { afterSeq: 0, limit: 1001 }, { afterSeq: -1, limit: 10 }, { afterSeq: 0.5, limit: 10 }]) {
        await expect(ctx.store.listAuditEntries(ws, bad)).rejects.toThrow(TypeError);
      }
    });

    it('appendAudit refuses malformed appends and writes nothing', async () => {
      const ws = await freshWorkspace();
      await expect(ctx.store.appendAudit(auditAppend())).rejects.toThrow(TypeError);
      const notBuffer = { ...auditDraft(ws), body: 'secret' as unknown as Buffer };
      await expect(ctx.store.appendAudit(auditAppend(auditDraft(ws), notBuffer))).rejects.toThrow(TypeError);
      const noWorkspace = { ...auditDraft(ws), workspaceId: undefined as unknown as string };
      await expect(ctx.store.appendAudit(auditAppend(noWorkspace))).rejects.toThrow(TypeError);
      await expect(ctx.store.appendAudit({ entries: [auditDraft(ws)], link: () => 'x' as unknown as Buffer })).rejects.toThrow(TypeError);
      expect(await ctx.store.getAuditHead(ws)).toBeUndefined();
    });

    it('a duplicate entry id is a conflict that rolls back the whole append', async () => {
      const ws = await freshWorkspace();
      const first = auditDraft(ws);
      await ctx.store.appendAudit(auditAppend(first));
      await expect(ctx.store.appendAudit(auditAppend(auditDraft(ws), { ...auditDraft(ws), id: first.id }))).rejects.toBeInstanceOf(StoreConflictError);
      await expectValidChain(ctx.store, ws, 1);
    });

    it('entries need no workspace or environment row: no foreign key could delete them', async () => {
      const nowhere = newId();
      await ctx.store.appendAudit(auditAppend(auditDraft(nowhere, { environmentId: newId() })));
      await expectValidChain(ctx.store, nowhere, 1);
    });
  });

  describe('audit written with a change', () => {
    it('workspaces and environments: written when created, absent when the create fails', async () => {
      const { workspace, first } = newWorkspace('audited');
      const created = auditDraft(workspace.id, { environmentId: first.environment.id });
      await ctx.store.createWorkspace(workspace, first, auditAppend(created));
      expect(await expectValidChain(ctx.store, workspace.id, 1)).toEqual([created.id]);

      const staging = newEnvironment(workspace.id, 'staging');
      const stagingEntry = auditDraft(workspace.id, { environmentId: staging.environment.id });
      await ctx.peer.createEnvironment(staging, auditAppend(stagingEntry));
      const duplicate = newEnvironment(workspace.id, 'staging');
      await expect(ctx.store.createEnvironment(duplicate, auditAppend(auditDraft(workspace.id)))).rejects.toBeInstanceOf(StoreConflictError);
      // A refused workspace (duplicate id) leaves no audit either.
      await expect(ctx.store.createWorkspace(workspace, newEnvironment(workspace.id), auditAppend(auditDraft(workspace.id))))
        .rejects.toBeInstanceOf(StoreConflictError);
      expect(await expectValidChain(ctx.store, workspace.id, 2)).toEqual([created.id, stagingEntry.id]);
      // Entries about another workspace are refused with the change.
      const stray = newEnvironment(workspace.id, 'stray');
      await expect(ctx.store.createEnvironment(stray, auditAppend(auditDraft(newId())))).rejects.toThrow(TypeError);
      expect(await ctx.store.getEnvironment(stray.environment.id)).toBeUndefined();
    });

    it('objects: create, versions and delete are audited only when they apply', async () => {
      const env = await ctx.freshEnvironment();
      const ws = env.workspaceId;
      const entry = () => auditDraft(ws, { environmentId: env.id, sealing: 'log-key' });
      const { object, version } = newObject(env.id, 'audited');
      const e1 = entry();
      await ctx.store.createObject(object, version, auditAppend(e1));
      const dup = newObject(env.id, 'audited');
      await expect(ctx.peer.createObject(dup.object, dup.version, auditAppend(entry()))).rejects.toBeInstanceOf(StoreConflictError);

      const e2 = entry();
      expect(await ctx.store.addObjectVersion(env.id, object.id, 1, objectVersion(object.id, 2), new Date(), auditAppend(e2))).toBeDefined();
      // Compare-and-set mismatch: no version, no entry.
      expect(await ctx.peer.addObjectVersion(env.id, object.id, 1, objectVersion(object.id, 2), new Date(), auditAppend(entry()))).toBeUndefined();
      const missing = newId();
      expect(await ctx.store.addObjectVersion(env.id, missing, 1, objectVersion(missing, 2), new Date(), auditAppend(entry()))).toBeUndefined();

      expect(await ctx.store.deleteObject(env.id, newId(), auditAppend(entry()))).toBe(false);
      const e3 = entry();
      expect(await ctx.store.deleteObject(env.id, object.id, auditAppend(e3))).toBe(true);
      expect(await ctx.store.deleteObject(env.id, object.id, auditAppend(entry()))).toBe(false);
      // The entries outlive the object.
      expect(await expectValidChain(ctx.store, ws, 3)).toEqual([e1.id, e2.id, e3.id]);
    });

    it('objects: entries about another workspace are refused and the change is rolled back', async () => {
      const env = await ctx.freshEnvironment();
      const elsewhere = await freshWorkspace();
      const { object, version } = newObject(env.id, 'guarded');
      await expect(ctx.store.createObject(object, version, auditAppend(auditDraft(elsewhere)))).rejects.toThrow(TypeError);
      expect(await ctx.store.getObject(env.id, object.id)).toBeUndefined();
      await ctx.store.createObject(object, version);
      await expect(ctx.store.addObjectVersion(env.id, object.id, 1, objectVersion(object.id, 2), new Date(), auditAppend(auditDraft(elsewhere))))
        .rejects.toThrow(TypeError);
      expect((await ctx.store.getObject(env.id, object.id))!.version).toBe(1);
      await expect(ctx.store.deleteObject(env.id, object.id, auditAppend(auditDraft(elsewhere)))).rejects.toThrow(TypeError);
      expect(await ctx.store.getObject(env.id, object.id)).toBeDefined();
      expect(await ctx.store.getAuditHead(elsewhere)).toBeUndefined();
      expect(await ctx.store.getAuditHead(env.workspaceId)).toBeUndefined();
    });

    it('clients: every change is audited only when it applies', async () => {
      const ws = await freshWorkspace();
      const other = await freshWorkspace();
      const client = newClient(ws, 'audited');
      const ids: string[] = [];
      const entry = () => {
        const d = auditDraft(ws);
        ids.push(d.id);
        return auditAppend(d);
      };
      const skipped = () => auditAppend(auditDraft(ws));

      await ctx.store.createClient(client, clientToken(client.id), entry());
      const dup = newClient(ws, 'audited');
      await expect(ctx.store.createClient(dup, clientToken(dup.id), skipped())).rejects.toBeInstanceOf(StoreConflictError);

      expect(await ctx.store.updateClient(ws, client.id, { disabled: true }, new Date(), entry())).toBeDefined();
      expect(await ctx.store.updateClient(ws, newId(), { disabled: true }, new Date(), skipped())).toBeUndefined();
      const second = newClient(ws, 'second');
      await ctx.store.createClient(second, clientToken(second.id), entry());
      await expect(ctx.store.updateClient(ws, second.id, { name: 'audited' }, new Date(), skipped())).rejects.toBeInstanceOf(StoreConflictError);

      expect(await ctx.peer.addClientToken(ws, client.id, clientToken(client.id), new Date(), new Date(), entry())).toBe(true);
      const missing = newId();
      expect(await ctx.store.addClientToken(ws, missing, clientToken(missing), new Date(), new Date(), skipped())).toBe(false);

      expect(await ctx.store.deleteClient(ws, newId(), skipped())).toBe(false);
      expect(await ctx.store.deleteClient(ws, client.id, entry())).toBe(true);
      expect(await ctx.store.deleteClient(ws, client.id, skipped())).toBe(false);
      expect(await expectValidChain(ctx.store, ws, ids.length)).toEqual(ids);

      // Entries about another workspace than the client's are refused, with nothing written.
      const stray = newClient(ws, 'stray');
      await expect(ctx.store.createClient(stray, clientToken(stray.id), auditAppend(auditDraft(other)))).rejects.toThrow(TypeError);
      await expect(ctx.store.deleteClient(ws, second.id, auditAppend(auditDraft(other)))).rejects.toThrow(TypeError);
      expect(await ctx.store.getClient(ws, stray.id)).toBeUndefined();
      expect(await ctx.store.getClient(ws, second.id)).toBeDefined();
      expect(await ctx.store.getAuditHead(other)).toBeUndefined();
    });

    it('a failing append rolls back the change it came with', async () => {
      const ws = await freshWorkspace();
      const taken = auditDraft(ws);
      await ctx.store.appendAudit(auditAppend(taken));
      const client = newClient(ws, 'rolled-back');
      const token = clientToken(client.id);
      // The entry id is already in the log: the append fails inside the transaction.
      const clash: AuditAppend = auditAppend({ ...auditDraft(ws), id: taken.id });
      await expect(ctx.store.createClient(client, token, clash)).rejects.toBeInstanceOf(StoreConflictError);
      expect(await ctx.store.getClient(ws, client.id)).toBeUndefined();
      expect(await ctx.store.findClientToken(token.tokenHash)).toBeUndefined();

      await ctx.store.createClient(client, token);
      const linkerFails: AuditAppend = {
        entries: [auditDraft(ws)],
        link: () => {
          throw new Error('linker failed');
        },
      };
      await expect(ctx.peer.updateClient(ws, client.id, { disabled: true }, new Date(), linkerFails)).rejects.toThrow('linker failed');
      expect((await ctx.store.getClient(ws, client.id))!.disabled).toBe(false);
      const env = await ctx.freshEnvironment();
      const { object, version } = newObject(env.id, 'rolled-back');
      await ctx.store.createObject(object, version);
      const clashHere = auditAppend({ ...auditDraft(env.workspaceId), id: taken.id });
      await expect(ctx.store.addObjectVersion(env.id, object.id, 1, objectVersion(object.id, 2), new Date(), clashHere))
        .rejects.toBeInstanceOf(StoreConflictError);
      expect(await ctx.store.listObjectVersions(object.id)).toHaveLength(1);
      await expectValidChain(ctx.store, ws, 1);
    });
  });
}
