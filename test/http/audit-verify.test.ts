import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createWorkspace, decrypt, encrypt, envUrl, expectError, keyStatus, ok, type Body } from '../support/http-helpers.js';
import { withRawAudit, type RawAuditDb, type RawAuditRow } from '../support/audit-tamper.js';
import { openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

/**
 * `GET …/audit/verify` against someone with write access to the database: every way of editing,
 * deleting, inserting, reordering or transplanting audit rows — done directly in SQLite or
 * PostgreSQL, not through keystrata — is reported, naming the first entry that does not fit.
 *
 * What verify CANNOT catch on its own: deleting the newest entries AND rewinding the head row to an
 * earlier entry (its seq and that entry's link), consistently. What is left is a valid, shorter
 * chain — indistinguishable, from the database alone, from a log that simply never got further.
 * That is why verify returns the head: an external monitor that records it (SIEM, export) sees a
 * later verify whose chain no longer passes through the recorded head. The last test shows both
 * halves: verify says ok, the recorded head exposes the rollback.
 */

/** The stored columns of a row that make up its content (everything but its place in the chain). */
function contentOf(row: RawAuditRow): Omit<RawAuditRow, 'workspaceId' | 'seq'> {
  const { workspaceId: _ws, seq: _seq, ...content } = row;
  return content;
}

for (const store of testStores()) {
  describe(`audit verify (${store})`, () => {
    let t: TestKeystrata;

    beforeAll(async () => {
      t = await openTestKeystrata({ store });
    });
    afterAll(async () => {
      await t?.destroy();
    });

    const verifyUrl = (ws: string) => `/v1/workspaces/${ws}/audit/verify`;
    const verify = (ws: string): Promise<Body> => ok(t, 'GET', verifyUrl(ws), undefined);
    const raw = <T>(fn: (db: RawAuditDb) => Promise<T>): Promise<T> => withRawAudit(t.handle, fn);
    const headSeq = async (ws: string): Promise<number> => (await t.ks.store.getAuditHead(ws))?.seq ?? 0;

    interface Activity {
      readonly ws: string;
      readonly staging: string;
      readonly production: string;
      /** seq of the newest entry after the activity. */
      readonly n: number;
    }

    /**
     * A workspace with a mix of entries: workspace-level (sealed under the workspace key) and
     * environment ones (under the log key), written with a change and by group commit, successes
     * and failures. seq 4 and 5 are data.encrypt entries (log-key).
     */
    async function workspaceWithActivity(name: string): Promise<Activity> {
      const created = await createWorkspace(t, name); // 1 workspace.create (workspace-key)
      const ws = created.id;
      const staging = (await ok(t, 'POST', `/v1/workspaces/${ws}/environments`, { name: 'staging' }, 201)).id; // 2
      await ok(t, 'POST', `/v1/workspaces/${ws}/clients`, { name: 'app', role: 'app' }, 201); // 3 client.create
      for (let i = 0; i < 3; i++) await encrypt(t, ws, { type: 'job', id: `job-${i}` }, Buffer.from(`p${i}`)); // 4, 5, 6
      await ok(t, 'POST', `${envUrl(ws)}/objects`, { name: 'o', value: 'v', context: { a: 'b' } }, 201); // 7 (with the change)
      expectError(await decrypt(t, ws, 'ks1:garbage'), 400, 'decryption_failed'); // 8 failure
      await keyStatus(t, ws, 'staging'); // 9
      const n = await headSeq(ws);
      expect(n).toBe(9);
      return { ws, staging, production: created.environments[0]!.id, n };
    }

    /** Verify names `firstBad`; every entry before it checked (`checked` differs only when the head is what fails). */
    async function expectBroken(ws: string, firstBad: number, reason: RegExp, checked = firstBad - 1): Promise<Body> {
      const result = await verify(ws);
      expect(result, JSON.stringify(result)).toMatchObject({ ok: false, firstBadEntry: firstBad, checked });
      expect(result.reason).toMatch(reason);
      return result;
    }

    it('an untouched chain verifies: ok, checked = every entry, head = the newest entry', async () => {
      const { ws, n } = await workspaceWithActivity('intact');
      const newest = await raw((db) => db.row(ws, n));
      const result = await verify(ws);
      expect(result).toEqual({ ok: true, checked: n, head: { seq: n, link: newest.link.toString('hex') } });
      // The verify was itself recorded (after it read the head); the next one checks it too.
      expect(await headSeq(ws)).toBe(n + 1);
      expect(await verify(ws)).toMatchObject({ ok: true, checked: n + 1, head: { seq: n + 1 } });
      // The links in the listing are the stored ones, and the head is the last of them.
      const listed = (await t.ks.audit.list(ws, { afterSeq: 0, limit: 1000 })).items;
      expect(listed.map((e) => e.seq)).toEqual(Array.from({ length: n + 2 }, (_, i) => i + 1));
      const rows = await raw((db) => db.rows(ws));
      expect(listed.map((e) => e.link)).toEqual(rows.map((r) => r.link.toString('hex')));
    });

    it('a chain without entries verifies with checked 0 and the genesis head; an unknown workspace is a 404', async () => {
      // Every workspace made through the API has an entry from its creation: check the empty
      // chain through the service, and that the route answers 404 for a workspace that is not there.
      expect(await t.ks.audit.verify(randomUUID())).toEqual({ ok: true, checked: 0, head: { seq: 0, link: '00'.repeat(32) } });
      expectError(await call(t, 'GET', verifyUrl(randomUUID())), 404, 'workspace_not_found');
    });

    it('(1) one byte of an entry body edited → that entry; the listing shows it as unreadable, the rest readable', async () => {
      const { ws } = await workspaceWithActivity('body-edit');
      // Entry 5 is sealed under the log key, entry 3 under the workspace key: both are caught.
      await raw(async (db) => {
        for (const seq of [5, 3]) {
          const row = await db.row(ws, seq);
          const body = Buffer.from(row.body);
          body[body.length - 1]! ^= 0x01;
          await db.update(ws, seq, { body });
        }
      });
      await expectBroken(ws, 3, /entry 3 does not match its link/);

      const page = await ok(t, 'GET', `/v1/workspaces/${ws}/audit?limit=20`, undefined);
      const bySeq = new Map<number, Body>(page.items.map((e: Body) => [e.seq, e]));
      for (const seq of [3, 5]) {
        const entry = bySeq.get(seq);
        expect(entry.unreadable).toBe('integrity_check_failed');
        expect(entry.action).toBeUndefined();
        expect(entry.actor).toBeUndefined();
      }
      expect(bySeq.get(3).environmentId).toBeNull();
      expect(bySeq.get(5).environmentId).toEqual(expect.any(String));
      for (const seq of [1, 2, 4, 6, 7, 8, 9]) {
        expect(bySeq.get(seq).unreadable, `entry ${seq}`).toBeUndefined();
        expect(bySeq.get(seq).action, `entry ${seq}`).toEqual(expect.any(String));
      }
      expect(bySeq.get(4).action).toBe('data.encrypt');
    });

    it('(1b) a body moved from another entry → that entry; the moved body does not open there either', async () => {
      const { ws } = await workspaceWithActivity('body-move');
      // Entries 5 and 6 are both data.encrypt entries under the same log key: a plausible swap.
      await raw(async (db) => db.update(ws, 6, { body: (await db.row(ws, 5)).body }));
      await expectBroken(ws, 6, /entry 6 does not match its link/);
      // Independently of the chain, a body is sealed for its own entry id.
      const [entry] = (await t.ks.audit.list(ws, { afterSeq: 5, limit: 1 })).items;
      expect(entry).toMatchObject({ seq: 6, unreadable: 'integrity_check_failed' });
    });

    it('(2) the `at` timestamp of an entry edited (by one millisecond) → that entry', async () => {
      const { ws } = await workspaceWithActivity('at-edit');
      await raw(async (db) => db.update(ws, 4, { at: (await db.row(ws, 4)).at + 1 }));
      await expectBroken(ws, 4, /entry 4 does not match its link/);
    });

    it('(3) the environment_id of an entry changed (or cleared) → that entry', async () => {
      const { ws, staging, production } = await workspaceWithActivity('env-edit');
      expect((await raw((db) => db.row(ws, 5))).environmentId).toBe(production);
      await raw((db) => db.update(ws, 5, { environmentId: staging }));
      await expectBroken(ws, 5, /entry 5 does not match its link/);
      await raw((db) => db.update(ws, 2, { environmentId: null }));
      await expectBroken(ws, 2, /entry 2 does not match its link/);
    });

    it('(3b) the sealing column of an entry changed → that entry', async () => {
      const { ws } = await workspaceWithActivity('sealing-edit');
      expect((await raw((db) => db.row(ws, 3))).sealing).toBe('workspace-key');
      await raw((db) => db.update(ws, 3, { sealing: 'log-key' }));
      await expectBroken(ws, 3, /entry 3 does not match its link/);
    });

    it('(4) an entry deleted → its seq, "missing"', async () => {
      const { ws } = await workspaceWithActivity('delete-one');
      await raw((db) => db.deleteEntry(ws, 4));
      await expectBroken(ws, 4, /entry 4 is missing \(the next stored entry is 5\)/);
    });

    it('(4b) the first entry deleted → 1', async () => {
      const { ws } = await workspaceWithActivity('delete-first');
      await raw((db) => db.deleteEntry(ws, 1));
      await expectBroken(ws, 1, /entry 1 is missing/);
    });

    it('(5) two entries swapped (contents exchanged between seq 4 and 6) → the first moved entry', async () => {
      const { ws } = await workspaceWithActivity('swap');
      await raw(async (db) => {
        const [a, b] = [await db.row(ws, 4), await db.row(ws, 6)];
        // ids are unique: park one first.
        await db.update(ws, 4, { id: randomUUID() });
        await db.update(ws, 6, contentOf(a));
        await db.update(ws, 4, contentOf(b));
      });
      await expectBroken(ws, 4, /entry 4 does not match its link/);
    });

    it('(5b) two adjacent entries reordered by swapping their seqs → the first moved entry', async () => {
      const { ws } = await workspaceWithActivity('swap-seq');
      await raw(async (db) => {
        await db.update(ws, 5, { seq: 1000 });
        await db.update(ws, 6, { seq: 5 });
        await db.update(ws, 1000, { seq: 6 });
      });
      await expectBroken(ws, 5, /entry 5 does not match its link/);
    });

    it('(6) a forged row inserted (later seqs shifted, head moved along) → the inserted entry', async () => {
      const { ws, n } = await workspaceWithActivity('insert');
      await raw(async (db) => {
        const template = await db.row(ws, 3);
        const next = await db.row(ws, 4);
        await db.shiftSeqs(ws, 4, 1);
        // A plausible row: a copy of a real one with a fresh id and a time between its neighbours;
        // the forger cannot compute a link, so it borrows one (the displaced entry's).
        await db.insert({ ...template, seq: 4, id: randomUUID(), at: template.at + 1, link: next.link });
        const head = await db.head(ws);
        await db.setHead(ws, { seq: n + 1, link: head!.link });
      });
      await expectBroken(ws, 4, /entry 4 does not match its link/);
    });

    it('(6b) a forged row appended after the newest (with the head moved to it) → that entry', async () => {
      const { ws, n } = await workspaceWithActivity('append-forged');
      await raw(async (db) => {
        const template = await db.row(ws, n);
        const link = randomBytes(32);
        await db.insert({ ...template, seq: n + 1, id: randomUUID(), link });
        await db.setHead(ws, { seq: n + 1, link });
      });
      await expectBroken(ws, n + 1, new RegExp(`entry ${n + 1} does not match its link`));
    });

    it('(7) the newest entries deleted, the head left as it was → the first missing seq', async () => {
      const { ws, n } = await workspaceWithActivity('truncate');
      await raw((db) => db.deleteEntriesAfter(ws, n - 2));
      const result = await expectBroken(ws, n - 1, new RegExp(`entries ${n - 1}–${n} are missing \\(the chain head is at ${n}\\)`));
      expect(result.head.seq).toBe(n);
    });

    it('(7b) the head moved past the newest entry → the first seq it claims that is not there', async () => {
      const { ws, n } = await workspaceWithActivity('head-ahead');
      await raw(async (db) => db.setHead(ws, { seq: n + 2, link: (await db.row(ws, n)).link }));
      await expectBroken(ws, n + 1, new RegExp(`entries ${n + 1}–${n + 2} are missing`));
    });

    it('(7c) the head link replaced → the head does not match the newest entry (every entry itself checks)', async () => {
      const { ws, n } = await workspaceWithActivity('head-link');
      await raw((db) => db.setHead(ws, { seq: n, link: randomBytes(32) }));
      await expectBroken(ws, n, new RegExp(`the chain head does not match entry ${n}`), n);
    });

    it('(8) the head row deleted → entry 1, "the chain head is missing", also over HTTP', async () => {
      const { ws } = await workspaceWithActivity('head-delete');
      await raw((db) => db.deleteHead(ws));
      expect(await t.ks.audit.verify(ws)).toMatchObject({ ok: false, checked: 0, firstBadEntry: 1, reason: 'entries exist but the chain head is missing' });
      // Without a head the next entry would be seq 1 again, which exists: nothing can be appended
      // to this workspace until the head is restored, so every other access to it is refused
      // (store_unavailable). Verify still answers — it reveals no data and is how the operator
      // finds out — but its own entry is not written either.
      const response = await call(t, 'GET', verifyUrl(ws));
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json()).toMatchObject({ ok: false, checked: 0, firstBadEntry: 1 });
      expectError(await call(t, 'GET', `${envUrl(ws)}/keys`), 503, 'store_unavailable');
      expect(await raw((db) => db.rows(ws))).toHaveLength(9);
    });

    it('(8b) a workspace whose chain cannot be appended to does not take other tenants down with it', async () => {
      const jammed = await workspaceWithActivity('jammed');
      const healthy = await workspaceWithActivity('healthy');
      await raw((db) => db.deleteHead(jammed.ws));
      // Concurrent requests to both share group-commit batches; the healthy workspace's entries
      // must still be written (and its responses sent), only the jammed one's are refused.
      const responses = await Promise.all(Array.from({ length: 60 }, (_, i) => call(t, 'GET', `${envUrl(i % 2 === 0 ? healthy.ws : jammed.ws)}/keys`)));
      const statuses = (parity: number) => responses.filter((_, i) => i % 2 === parity).map((r) => r.statusCode);
      expect(statuses(0)).toEqual(Array(30).fill(200));
      expect(statuses(1)).toEqual(Array(30).fill(503));
      expect(await verify(healthy.ws)).toMatchObject({ ok: true, checked: healthy.n + 30 });
    });

    it('(9) an entry moved from workspace A into workspace B → detected in B (chain keys are per workspace), and fine again back in A', async () => {
      const a = await workspaceWithActivity('transplant-a');
      const b = await workspaceWithActivity('transplant-b');
      // Entry 1 follows the genesis link in every chain, and workspace id is not a linked field:
      // in B it differs from A only by the chain key, so the key alone must reject it.
      const rowA = await raw((db) => db.row(a.ws, 1));
      const rowB = await raw((db) => db.row(b.ws, 1));
      await raw(async (db) => {
        await db.deleteEntry(b.ws, 1);
        await db.deleteEntry(a.ws, 1); // ids are unique: the row moves
        await db.insert({ ...rowA, workspaceId: b.ws });
      });
      await expectBroken(b.ws, 1, /entry 1 does not match its link/);
      // Control: the same bytes back in A verify, so only the workspace differed.
      await raw(async (db) => {
        await db.deleteEntry(b.ws, 1);
        await db.insert(rowA);
        await db.insert(rowB);
      });
      expect(await verify(a.ws)).toMatchObject({ ok: true });
      expect(await verify(b.ws)).toMatchObject({ ok: true });
    });

    it("(9b) workspace A's whole chain and head transplanted into workspace B → detected at entry 1", async () => {
      const a = await workspaceWithActivity('whole-a');
      const b = await workspaceWithActivity('whole-b');
      await raw(async (db) => {
        await db.deleteEntriesAfter(b.ws, 0);
        for (const row of await db.rows(a.ws)) await db.update(a.ws, row.seq, { workspaceId: b.ws });
        await db.setHead(b.ws, (await db.head(a.ws))!);
      });
      await expectBroken(b.ws, 1, /entry 1 does not match its link/);
    });

    it('cannot catch alone: tail truncated AND head rewound consistently — the head recorded by a monitor exposes it', async () => {
      const { ws } = await workspaceWithActivity('rewind');
      // The monitor's view: verify, keep the head.
      const recorded = await verify(ws);
      expect(recorded.ok).toBe(true);
      const before = recorded.head as { seq: number; link: string };

      // The attacker keeps entries 1..5 and makes the head say 5, with entry 5's link.
      const keep = 5;
      await raw(async (db) => {
        const last = await db.row(ws, keep);
        await db.deleteEntriesAfter(ws, keep);
        await db.setHead(ws, { seq: keep, link: last.link });
      });
      const after = await verify(ws);
      // Verify alone: a perfectly valid shorter chain.
      expect(after).toEqual({ ok: true, checked: keep, head: { seq: keep, link: expect.any(String) } });
      // The monitor: its recorded head is no longer on the chain (seq went backwards).
      expect(after.head.seq).toBeLessThan(before.seq);

      // Even once the log has grown past the recorded seq again, the entry there is not the one
      // recorded: the chain does not pass through the recorded head.
      while ((await headSeq(ws)) < before.seq) await keyStatus(t, ws);
      const later = await verify(ws);
      expect(later.ok).toBe(true);
      expect(later.head.seq).toBeGreaterThanOrEqual(before.seq);
      const atRecorded = await ok(t, 'GET', `/v1/workspaces/${ws}/audit?limit=1&cursor=${before.seq - 1}`, undefined);
      expect(atRecorded.items[0].seq).toBe(before.seq);
      expect(atRecorded.items[0].link).not.toBe(before.link);
    });
  });
}
