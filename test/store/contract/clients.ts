import { describe, expect, it } from 'vitest';
import { newId } from '../../../src/core/bytes.js';
import { StoreConflictError, type ClientRecord, type ClientWithUsage } from '../../../src/store/store.js';
import { clientToken, newClient } from '../fixtures.js';
import type { ContractContext } from './context.js';

const NO_USAGE = { requests: 0, failures: 0, lastUsedAt: null, lastUsedIp: null };

function withUsage(client: ClientRecord, usage = NO_USAGE): ClientWithUsage {
  return { ...client, usage };
}

/** Code point order, as both databases sort names (SQLite BINARY, PostgreSQL "C"). */
function byCodePoint(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** API clients, their tokens and usage counters. */
export function clientContract(ctx: ContractContext): void {
  const freshWorkspace = async (): Promise<string> => (await ctx.freshEnvironment()).workspaceId;

  describe('API clients', () => {
    it('createClient stores every field exactly, with its first token and zero usage', async () => {
      const ws = await freshWorkspace();
      const other = await freshWorkspace();
      const when = new Date(Date.UTC(2025, 2, 3, 4, 5, 6, 789));
      const client = newClient(ws, 'Zürich 部署 🚀', {
        role: 'operator', environments: ['production', '*'], rateLimitPerSecond: null, createdAt: when, updatedAt: new Date(when.getTime() + 1),
        allowedCidrs: ['192.0.2.0/24', '2001:db8:85a3::8a2e:370:7334/128', '::/0', 'fe80::/10'],
      });
      const token = clientToken(client.id, when, new Date(when.getTime() + 3_600_000));
      await ctx.store.createClient(client, token);
      expect(await ctx.store.getClient(ws, client.id)).toEqual(withUsage(client));
      expect(await ctx.peer.getClient(ws, client.id)).toEqual(withUsage(client));
      expect(await ctx.store.listClientTokens(client.id)).toEqual([token]);
      expect(await ctx.store.findClientToken(token.tokenHash)).toEqual({ token, client });
      // Another workspace's ids do not reach it.
      expect(await ctx.store.getClient(other, client.id)).toBeUndefined();
      expect(await ctx.store.getClient(ws, newId())).toBeUndefined();
      expect((await ctx.store.listClients(other, { limit: 10 })).items).toEqual([]);
    });

    it('every role, a rate limit, disabled and empty lists round-trip', async () => {
      const ws = await freshWorkspace();
      for (const [i, role] of (['admin', 'operator', 'app', 'auditor'] as const).entries()) {
        const client = newClient(ws, `c${i}`, { role, rateLimitPerSecond: 1 + i * 1000, disabled: i % 2 === 1, environments: [], allowedCidrs: [] });
        await ctx.store.createClient(client, clientToken(client.id));
        expect(await ctx.store.getClient(ws, client.id)).toEqual(withUsage(client));
      }
    });

    it('client names are unique per workspace; a refused create leaves no client and no token', async () => {
      const ws = await freshWorkspace();
      const other = await freshWorkspace();
      const a = newClient(ws, 'deployer');
      await ctx.store.createClient(a, clientToken(a.id));
      const duplicate = newClient(ws, 'deployer');
      const duplicateToken = clientToken(duplicate.id);
      await expect(ctx.peer.createClient(duplicate, duplicateToken)).rejects.toBeInstanceOf(StoreConflictError);
      expect(await ctx.store.getClient(ws, duplicate.id)).toBeUndefined();
      expect(await ctx.store.findClientToken(duplicateToken.tokenHash)).toBeUndefined();
      expect(await ctx.store.listClientTokens(duplicate.id)).toEqual([]);
      // The same name elsewhere is fine.
      const elsewhere = newClient(other, 'deployer');
      await ctx.store.createClient(elsewhere, clientToken(elsewhere.id));
      expect(await ctx.store.getClient(other, elsewhere.id)).toEqual(withUsage(elsewhere));
    });

    it('createClient is atomic: a token hash already in use leaves no client', async () => {
      const ws = await freshWorkspace();
      const a = newClient(ws, 'a');
      const aToken = clientToken(a.id);
      await ctx.store.createClient(a, aToken);
      const b = newClient(ws, 'b');
      await expect(ctx.store.createClient(b, { ...clientToken(b.id), tokenHash: aToken.tokenHash })).rejects.toBeInstanceOf(StoreConflictError);
      expect(await ctx.store.getClient(ws, b.id)).toBeUndefined();
      expect((await ctx.store.findClientToken(aToken.tokenHash))?.client).toEqual(a);
    });

    it('createClient refuses records that contradict each other', async () => {
      const ws = await freshWorkspace();
      const c = newClient(ws, 'x');
      await expect(ctx.store.createClient(c, clientToken(newId()))).rejects.toThrow(TypeError);
      await expect(ctx.store.createClient({ ...c, role: 'root' as never }, clientToken(c.id))).rejects.toThrow(TypeError);
      await expect(ctx.store.createClient({ ...c, tokenTtlSeconds: 1.5 }, clientToken(c.id))).rejects.toThrow(TypeError);
      await expect(ctx.store.createClient({ ...c, rateLimitPerSecond: 0 }, clientToken(c.id))).rejects.toThrow(TypeError);
      expect(await ctx.store.getClient(ws, c.id)).toBeUndefined();
    });

    it('updateClient changes only the fields in the patch and sets updatedAt', async () => {
      const ws = await freshWorkspace();
      const client = newClient(ws, 'patch-me', { rateLimitPerSecond: 50, createdAt: new Date(Date.UTC(2025, 0, 1)), updatedAt: new Date(Date.UTC(2025, 0, 1)) });
      await ctx.store.createClient(client, clientToken(client.id));
      await ctx.store.recordClientUsage([{ clientId: client.id, requests: 3, failures: 1, lastUsedAt: new Date(Date.UTC(2025, 0, 2)), lastUsedIp: '::1' }]);

      const t1 = new Date(Date.UTC(2025, 0, 3, 0, 0, 0, 1));
      const afterRole = { ...client, role: 'auditor' as const, updatedAt: t1 };
      expect(await ctx.store.updateClient(ws, client.id, { role: 'auditor' }, t1)).toEqual(afterRole);
      expect(await ctx.store.getClient(ws, client.id)).toMatchObject(afterRole);

      // undefined means "unchanged"; null clears the rate limit.
      const t2 = new Date(t1.getTime() + 1000);
      const after = await ctx.store.updateClient(ws, client.id, { rateLimitPerSecond: null, name: undefined, disabled: true }, t2);
      expect(after).toEqual({ ...afterRole, rateLimitPerSecond: null, disabled: true, updatedAt: t2 });

      const t3 = new Date(t2.getTime() + 1000);
      const everything = {
        name: 'renamed ✓', role: 'admin' as const, environments: ['*'], allowedCidrs: ['::ffff:192.0.2.1/128'], tokenTtlSeconds: 300,
        rateLimitPerSecond: 7, disabled: false,
      };
      const full = { ...client, ...everything, updatedAt: t3 };
      expect(await ctx.peer.updateClient(ws, client.id, everything, t3)).toEqual(full);
      // An empty patch only touches updatedAt; usage is never part of a patch.
      const t4 = new Date(t3.getTime() + 1000);
      expect(await ctx.store.updateClient(ws, client.id, {}, t4)).toEqual({ ...full, updatedAt: t4 });
      const stored = await ctx.store.getClient(ws, client.id);
      expect(stored).toEqual({ ...full, updatedAt: t4, usage: { requests: 3, failures: 1, lastUsedAt: new Date(Date.UTC(2025, 0, 2)), lastUsedIp: '::1' } });
    });

    it('updateClient: no such client (or another workspace) is undefined; a taken name is a conflict', async () => {
      const ws = await freshWorkspace();
      const other = await freshWorkspace();
      const a = newClient(ws, 'a');
      const b = newClient(ws, 'b');
      await ctx.store.createClient(a, clientToken(a.id));
      await ctx.store.createClient(b, clientToken(b.id));
      expect(await ctx.store.updateClient(ws, newId(), { disabled: true }, new Date())).toBeUndefined();
      expect(await ctx.store.updateClient(other, a.id, { disabled: true }, new Date())).toBeUndefined();
      await expect(ctx.store.updateClient(ws, b.id, { name: 'a' }, new Date())).rejects.toBeInstanceOf(StoreConflictError);
      await expect(ctx.store.updateClient(ws, b.id, { role: 'root' as never }, new Date())).rejects.toThrow(TypeError);
      expect(await ctx.store.getClient(ws, a.id)).toEqual(withUsage(a));
      expect(await ctx.store.getClient(ws, b.id)).toEqual(withUsage(b));
    });

    it('deleteClient removes the client and all its tokens', async () => {
      const ws = await freshWorkspace();
      const other = await freshWorkspace();
      const client = newClient(ws, 'doomed');
      const first = clientToken(client.id);
      await ctx.store.createClient(client, first);
      const second = clientToken(client.id);
      expect(await ctx.store.addClientToken(ws, client.id, second, new Date(Date.now() + 60_000), new Date())).toBe(true);
      expect(await ctx.store.deleteClient(other, client.id)).toBe(false);
      expect(await ctx.store.getClient(ws, client.id)).toBeDefined();
      expect(await ctx.store.deleteClient(ws, client.id)).toBe(true);
      expect(await ctx.store.getClient(ws, client.id)).toBeUndefined();
      expect(await ctx.store.listClientTokens(client.id)).toEqual([]);
      expect(await ctx.store.findClientToken(first.tokenHash)).toBeUndefined();
      expect(await ctx.peer.findClientToken(second.tokenHash)).toBeUndefined();
      expect(await ctx.store.deleteClient(ws, client.id)).toBe(false);
      // The name is free again.
      const again = newClient(ws, 'doomed');
      await ctx.store.createClient(again, clientToken(again.id));
    });

    it('listClients pages through every client once, in code point order of names', async () => {
      const ws = await freshWorkspace();
      const other = await freshWorkspace();
      const elsewhere = newClient(other, 'a-elsewhere');
      await ctx.store.createClient(elsewhere, clientToken(elsewhere.id));
      const names = ['b', 'B', 'a', 'é', 'e', 'Ω', '日本', '🚀', '\uffee', 'ab', 'a b', 'z'];
      for (const name of names) {
        const c = newClient(ws, name);
        await ctx.store.createClient(c, clientToken(c.id));
      }
      const expected = [...names].sort(byCodePoint);
      for (const limit of [5, 12, 100]) {
        const seen: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await ctx.store.listClients(ws, { limit, cursor });
          expect(page.items.length).toBeLessThanOrEqual(limit);
          for (const item of page.items) expect(item.usage).toEqual(NO_USAGE);
          seen.push(...page.items.map((c) => c.name));
          cursor = page.nextCursor ?? undefined;
        } while (cursor !== undefined);
        expect(seen).toEqual(expected);
      }
      expect((await ctx.store.listClients(ws, { limit: 12 })).nextCursor).toBeNull();
      const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
      for (const bad of [cursorOf(['\u0000']), cursorOf(['a\ud800']), cursorOf([1]), cursorOf(['a', 'b']), 'not base64!', 'x'.repeat(3000)]) {
        await expect(ctx.store.listClients(ws, { limit: 5, cursor: bad })).rejects.toMatchObject({ code: 'invalid_request', field: 'cursor' });
      }
      await expect(ctx.store.listClients(ws, { limit: 0 })).rejects.toThrow(TypeError);
    });
  });

  describe('client tokens', () => {
    it('rotation deletes expired tokens, caps the others at the overlap and adds the new one', async () => {
      const ws = await freshWorkspace();
      const now = new Date(Date.UTC(2025, 5, 1, 12));
      const at = (minutes: number) => new Date(now.getTime() + minutes * 60_000);
      const client = newClient(ws, 'rotating');
      const expired = clientToken(client.id, at(-120), at(-60));
      await ctx.store.createClient(client, expired);
      const expiringExactlyNow = clientToken(client.id, at(-100), now);
      const longLived = clientToken(client.id, at(-90), at(10_000));
      const shortLived = clientToken(client.id, at(-80), at(5));
      for (const t of [expiringExactlyNow, longLived, shortLived]) {
        expect(await ctx.store.addClientToken(ws, client.id, t, at(1_000_000), at(-200))).toBe(true);
      }
      const bystander = newClient(ws, 'bystander');
      const bystanderToken = clientToken(bystander.id, at(-500), at(-400));
      await ctx.store.createClient(bystander, bystanderToken);

      const fresh = clientToken(client.id, now, at(1440));
      expect(await ctx.peer.addClientToken(ws, client.id, fresh, at(30), now)).toBe(true);
      expect(await ctx.store.listClientTokens(client.id)).toEqual([
        { ...longLived, expiresAt: at(30) },
        shortLived,
        fresh,
      ]);
      expect(await ctx.store.findClientToken(expired.tokenHash)).toBeUndefined();
      expect(await ctx.store.findClientToken(expiringExactlyNow.tokenHash)).toBeUndefined();
      expect(await ctx.store.findClientToken(longLived.tokenHash)).toEqual({ token: { ...longLived, expiresAt: at(30) }, client });
      expect(await ctx.store.findClientToken(fresh.tokenHash)).toEqual({ token: fresh, client });
      // Another client's tokens, even expired ones, are untouched.
      expect(await ctx.store.listClientTokens(bystander.id)).toEqual([bystanderToken]);
    });

    it('an overlap of zero leaves the old tokens expired until the next rotation prunes them', async () => {
      const ws = await freshWorkspace();
      const now = new Date(Date.UTC(2025, 5, 1, 12));
      const client = newClient(ws, 'revoked');
      const old = clientToken(client.id, new Date(now.getTime() - 1000), new Date(now.getTime() + 3_600_000));
      await ctx.store.createClient(client, old);
      const replacement = clientToken(client.id, now);
      expect(await ctx.store.addClientToken(ws, client.id, replacement, now, now)).toBe(true);
      expect(await ctx.store.listClientTokens(client.id)).toEqual([{ ...old, expiresAt: now }, replacement]);
      const later = new Date(now.getTime() + 1);
      const third = clientToken(client.id, later);
      expect(await ctx.store.addClientToken(ws, client.id, third, later, later)).toBe(true);
      expect(await ctx.store.listClientTokens(client.id)).toEqual([{ ...replacement, expiresAt: later }, third]);
    });

    it('addClientToken for no such client, or a client of another workspace, writes nothing', async () => {
      const ws = await freshWorkspace();
      const other = await freshWorkspace();
      const client = newClient(ws, 'mine');
      const first = clientToken(client.id);
      await ctx.store.createClient(client, first);
      const stray = clientToken(client.id);
      expect(await ctx.store.addClientToken(other, client.id, stray, new Date(0), new Date())).toBe(false);
      const ghost = newId();
      const ghostToken = clientToken(ghost);
      expect(await ctx.store.addClientToken(ws, ghost, ghostToken, new Date(), new Date())).toBe(false);
      expect(await ctx.store.findClientToken(stray.tokenHash)).toBeUndefined();
      expect(await ctx.store.findClientToken(ghostToken.tokenHash)).toBeUndefined();
      // Nothing was capped either.
      expect(await ctx.store.listClientTokens(client.id)).toEqual([first]);
      await expect(ctx.store.addClientToken(ws, client.id, clientToken(newId()), new Date(), new Date())).rejects.toThrow(TypeError);
      await expect(ctx.store.addClientToken(ws, client.id, { ...clientToken(client.id), tokenHash: first.tokenHash }, new Date(), new Date(0)))
        .rejects.toBeInstanceOf(StoreConflictError);
      expect(await ctx.store.listClientTokens(client.id)).toEqual([first]);
    });

    it('findClientToken of an unknown hash is undefined', async () => {
      expect(await ctx.store.findClientToken('0'.repeat(64))).toBeUndefined();
      expect(await ctx.store.findClientToken('')).toBeUndefined();
    });
  });

  describe('client usage', () => {
    it('recordClientUsage adds counters; last used moves forward only', async () => {
      const ws = await freshWorkspace();
      const a = newClient(ws, 'a');
      const b = newClient(ws, 'b');
      await ctx.store.createClient(a, clientToken(a.id));
      await ctx.store.createClient(b, clientToken(b.id));
      const t = (s: number) => new Date(Date.UTC(2025, 6, 1, 0, 0, s, 7));
      await ctx.store.recordClientUsage([
        { clientId: a.id, requests: 5, failures: 1, lastUsedAt: t(10), lastUsedIp: '192.0.2.1' },
        { clientId: b.id, requests: 2, failures: 0, lastUsedAt: t(3), lastUsedIp: '2001:db8::1' },
        // The same client twice in a batch: both count, the newer use wins.
        { clientId: a.id, requests: 1, failures: 1, lastUsedAt: t(20), lastUsedIp: '192.0.2.2' },
        { clientId: a.id, requests: 1, failures: 0, lastUsedAt: t(15), lastUsedIp: '192.0.2.3' },
      ]);
      expect((await ctx.store.getClient(ws, a.id))!.usage).toEqual({ requests: 7, failures: 2, lastUsedAt: t(20), lastUsedIp: '192.0.2.2' });
      expect((await ctx.store.getClient(ws, b.id))!.usage).toEqual({ requests: 2, failures: 0, lastUsedAt: t(3), lastUsedIp: '2001:db8::1' });
      // An older flush (another node's, late) adds its counts but does not move last used back.
      await ctx.peer.recordClientUsage([{ clientId: a.id, requests: 10, failures: 0, lastUsedAt: t(19), lastUsedIp: '198.51.100.9' }]);
      expect((await ctx.store.getClient(ws, a.id))!.usage).toEqual({ requests: 17, failures: 2, lastUsedAt: t(20), lastUsedIp: '192.0.2.2' });
      await ctx.store.recordClientUsage([{ clientId: a.id, requests: 0, failures: 0, lastUsedAt: t(21), lastUsedIp: '::1' }]);
      expect((await ctx.store.getClient(ws, a.id))!.usage).toEqual({ requests: 17, failures: 2, lastUsedAt: t(21), lastUsedIp: '::1' });
      await ctx.store.recordClientUsage([]);
      // Counters and usage survive an unrelated patch.
      await ctx.store.updateClient(ws, b.id, { disabled: true }, new Date());
      expect((await ctx.store.listClients(ws, { limit: 5 })).items.map((c) => c.usage.requests)).toEqual([17, 2]);
    });

    it('deltas of deleted clients are skipped; the rest of the batch is applied', async () => {
      const ws = await freshWorkspace();
      const kept = newClient(ws, 'kept');
      const gone = newClient(ws, 'gone');
      await ctx.store.createClient(kept, clientToken(kept.id));
      await ctx.store.createClient(gone, clientToken(gone.id));
      await ctx.store.deleteClient(ws, gone.id);
      const when = new Date();
      await ctx.store.recordClientUsage([
        { clientId: gone.id, requests: 4, failures: 4, lastUsedAt: when, lastUsedIp: '10.0.0.1' },
        { clientId: newId(), requests: 1, failures: 0, lastUsedAt: when, lastUsedIp: '10.0.0.2' },
        { clientId: kept.id, requests: 3, failures: 0, lastUsedAt: when, lastUsedIp: '10.0.0.3' },
      ]);
      expect((await ctx.store.getClient(ws, kept.id))!.usage).toEqual({ requests: 3, failures: 0, lastUsedAt: when, lastUsedIp: '10.0.0.3' });
      expect(await ctx.store.getClient(ws, gone.id)).toBeUndefined();
      await expect(ctx.store.recordClientUsage([{ clientId: kept.id, requests: -1, failures: 0, lastUsedAt: when, lastUsedIp: '::1' }])).rejects.toThrow(TypeError);
    });

    it('concurrent flushes from two nodes over the same clients lose no counts', async () => {
      const ws = await freshWorkspace();
      const clients = Array.from({ length: 4 }, (_, i) => newClient(ws, `busy-${i}`));
      for (const c of clients) await ctx.store.createClient(c, clientToken(c.id));
      const base = Date.UTC(2025, 7, 1);
      // Each flush names the clients in its own order, the case that deadlocks without a lock order.
      const flushes = Array.from({ length: 16 }, (_, f) => {
        const order = f % 2 ? [...clients].reverse() : clients;
        return order.map((c) => ({ clientId: c.id, requests: f + 1, failures: f % 3, lastUsedAt: new Date(base + f * 1000), lastUsedIp: `10.0.0.${f}` }));
      });
      await Promise.all(flushes.map((batch, f) => (f % 2 ? ctx.peer : ctx.store).recordClientUsage(batch)));
      for (const c of clients) {
        expect((await ctx.store.getClient(ws, c.id))!.usage).toEqual({
          requests: (16 * 17) / 2, failures: flushes.reduce((sum, _, f) => sum + (f % 3), 0), lastUsedAt: new Date(base + 15_000), lastUsedIp: '10.0.0.15',
        });
      }
    });
  });
}
