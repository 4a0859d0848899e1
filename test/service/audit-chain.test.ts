import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { auditLink, auditLinker, verifyChain } from '../../src/service/audit/audit-chain.js';
import { createAuditKeys } from '../../src/service/audit/audit-keys.js';
import { createAuditWriter } from '../../src/service/audit/audit-writer.js';
import { chainEntries } from '../../src/store/audit-chain.js';
import { AUDIT_GENESIS_LINK, type AuditAppend, type AuditEntryDraft, type AuditEntryRecord, type AuditHead } from '../../src/store/store.js';

/**
 * The audit chain without a store: auditLink (what each link covers), verifyChain over an
 * in-memory source (paging, gaps, edits, head checks, entries appended while it walks) and the
 * group-commit writer (batching, per-batch failure, flush).
 */

/** Chain keys per workspace, as the service derives them (HKDF from one secret). */
const keys = createAuditKeys(randomBytes(32));

const WS_A = randomUUID();
const WS_B = randomUUID();
const ENV = randomUUID();

function draft(workspaceId: string, i: number, overrides: Partial<AuditEntryDraft> = {}): AuditEntryDraft {
  return {
    id: randomUUID(),
    workspaceId,
    environmentId: i % 2 === 0 ? ENV : null,
    at: new Date(Date.UTC(2025, 5, 1, 12, 0, 0, i)),
    sealing: i % 2 === 0 ? 'log-key' : 'workspace-key',
    body: randomBytes(20 + i),
    ...overrides,
  };
}

/** A chain of n entries linked with the real linker, and its head. */
function chain(n: number, workspaceId = WS_A): { entries: AuditEntryRecord[]; head: AuditHead } {
  const drafts = Array.from({ length: n }, (_, i) => draft(workspaceId, i + 1));
  const { records, head } = chainEntries(undefined, drafts, auditLinker(keys));
  return { entries: records, head };
}

interface MemorySource {
  readonly page: (afterSeq: number, limit: number) => Promise<readonly AuditEntryRecord[]>;
  readonly head: () => Promise<AuditHead | undefined>;
  /** (afterSeq, limit) of every page read. */
  readonly pages: [number, number][];
}

/** A store's two reads over an array kept in seq order (like listAuditEntries / getAuditHead). */
function memorySource(entries: AuditEntryRecord[], head: AuditHead | undefined | (() => AuditHead | undefined), onPage?: (afterSeq: number) => void): MemorySource {
  const pages: [number, number][] = [];
  return {
    pages,
    async page(afterSeq, limit) {
      pages.push([afterSeq, limit]);
      onPage?.(afterSeq);
      return [...entries].sort((a, b) => a.seq - b.seq).filter((e) => e.seq > afterSeq).slice(0, limit);
    },
    async head() {
      return typeof head === 'function' ? head() : head;
    },
  };
}

const hex = (b: Buffer) => b.toString('hex');

describe('auditLink', () => {
  const base: Omit<AuditEntryRecord, 'link'> = {
    seq: 7,
    id: randomUUID(),
    workspaceId: WS_A,
    environmentId: ENV,
    at: new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 678)),
    sealing: 'log-key',
    body: Buffer.from('sealed body bytes'),
  };
  const previous = randomBytes(32);

  it('is a 32-byte MAC, deterministic for the same entry, previous link and workspace', () => {
    const link = auditLink(keys, base, previous);
    expect(link).toHaveLength(32);
    expect(hex(auditLink(keys, { ...base, body: Buffer.from(base.body) }, Buffer.from(previous)))).toBe(hex(link));
    expect(hex(auditLinker(keys)(base, previous))).toBe(hex(link));
    // A keyed MAC, not a plain hash of the fields: not SHA-256 over anything the store holds.
    expect(hex(link)).not.toBe(createHash('sha256').update(previous).update(base.body).digest('hex'));
  });

  it.each<[string, Partial<Omit<AuditEntryRecord, 'link'>>]>([
    ['seq', { seq: 8 }],
    ['id', { id: randomUUID() }],
    ['at (one millisecond)', { at: new Date(base.at.getTime() + 1) }],
    ['environment (another one)', { environmentId: randomUUID() }],
    ['environment (none)', { environmentId: null }],
    ['sealing', { sealing: 'workspace-key' }],
    ['body (one bit)', { body: Buffer.from('sealed body bytez') }],
    ['body (one byte longer)', { body: Buffer.from('sealed body bytes\0') }],
    ['body (empty)', { body: Buffer.alloc(0) }],
    ['workspace (its chain key)', { workspaceId: WS_B }],
  ])('changes when the %s changes', (_field, change) => {
    expect(hex(auditLink(keys, { ...base, ...change }, previous))).not.toBe(hex(auditLink(keys, base, previous)));
  });

  it('changes with the previous link, and tells "no environment" from the all-zero id', () => {
    expect(hex(auditLink(keys, base, randomBytes(32)))).not.toBe(hex(auditLink(keys, base, previous)));
    const zeroId = '00000000-0000-0000-0000-000000000000';
    expect(hex(auditLink(keys, { ...base, environmentId: null }, previous))).not.toBe(hex(auditLink(keys, { ...base, environmentId: zeroId }, previous)));
  });

  it('depends on the audit secret: another deployment computes other links', () => {
    const other = createAuditKeys(randomBytes(32));
    expect(hex(auditLink(other, base, previous))).not.toBe(hex(auditLink(keys, base, previous)));
    other.close();
  });
});

describe('verifyChain', () => {
  it('an empty chain (no head, no entries) is ok with checked 0 and the genesis head', async () => {
    expect(await verifyChain(keys, memorySource([], undefined))).toEqual({ ok: true, checked: 0, head: { seq: 0, link: hex(AUDIT_GENESIS_LINK) } });
  });

  it('entries without a head: the head was removed → the first entry is named', async () => {
    const { entries } = chain(3);
    expect(await verifyChain(keys, memorySource(entries, undefined))).toMatchObject({ ok: false, checked: 0, firstBadEntry: 1, reason: expect.stringMatching(/head is missing/) });
    // Even if entry 1 is gone too, the first stored one is named.
    expect(await verifyChain(keys, memorySource(entries.slice(1), undefined))).toMatchObject({ ok: false, firstBadEntry: 2 });
  });

  it.each([1, 2, 3, 4, 7, 1000])('a valid chain verifies with any page size (%i), reading every entry once', async (pageSize) => {
    const { entries, head } = chain(10);
    const source = memorySource(entries, head);
    expect(await verifyChain(keys, source, pageSize)).toEqual({ ok: true, checked: 10, head: { seq: 10, link: hex(head.link) } });
    // Pages continue after the last seq read; no page is read twice. The last read is one entry
    // past the head (the check that the head was not moved back).
    expect(source.pages.at(-1)).toEqual([10, 1]);
    const walk = source.pages.slice(0, -1);
    const afters = walk.map(([after]) => after);
    expect(new Set(afters).size).toBe(afters.length);
    expect(afters[0]).toBe(0);
    expect(walk.every(([, limit]) => limit === pageSize)).toBe(true);
    expect(walk.length).toBeLessThanOrEqual(Math.ceil(10 / pageSize) + 1);
  });

  it('a chain that ends exactly on a page boundary stops there (no extra page, one look past the head)', async () => {
    const { entries, head } = chain(9);
    const source = memorySource(entries, head);
    expect((await verifyChain(keys, source, 3)).ok).toBe(true);
    expect(source.pages).toEqual([
      [0, 3],
      [3, 3],
      [6, 3],
      [9, 1],
    ]);
  });

  it.each([
    ['in the middle of a page', 5],
    ['first of a page', 4],
    ['last of a page', 3],
    ['the very first', 1],
  ])('a missing entry (%s) is named, with the next stored seq', async (_where, missing) => {
    const { entries, head } = chain(10);
    const result = await verifyChain(keys, memorySource(entries.filter((e) => e.seq !== missing), head), 3);
    expect(result).toMatchObject({ ok: false, checked: missing - 1, firstBadEntry: missing, reason: `entry ${missing} is missing (the next stored entry is ${missing + 1})` });
  });

  it.each([
    ['body', (e: AuditEntryRecord) => ({ ...e, body: Buffer.concat([e.body.subarray(0, -1), Buffer.from([e.body[e.body.length - 1]! ^ 1])]) })],
    ['at', (e: AuditEntryRecord) => ({ ...e, at: new Date(e.at.getTime() + 1) })],
    ['environment', (e: AuditEntryRecord) => ({ ...e, environmentId: e.environmentId === null ? ENV : null })],
    ['sealing', (e: AuditEntryRecord) => ({ ...e, sealing: e.sealing === 'log-key' ? ('workspace-key' as const) : ('log-key' as const) })],
    ['id', (e: AuditEntryRecord) => ({ ...e, id: randomUUID() })],
    ['link', (e: AuditEntryRecord) => ({ ...e, link: randomBytes(32) })],
    ['link (shorter)', (e: AuditEntryRecord) => ({ ...e, link: e.link.subarray(0, 16) })],
  ])('an edited %s on the second page is named, after the first page checked', async (_field, edit) => {
    const { entries, head } = chain(10);
    const tampered = entries.map((e) => (e.seq === 5 ? edit(e) : e));
    expect(await verifyChain(keys, memorySource(tampered, head), 3)).toMatchObject({ ok: false, checked: 4, firstBadEntry: 5, reason: 'entry 5 does not match its link: it was edited, inserted or moved' });
  });

  it('reordered entries (contents swapped across a page boundary) → the first moved one', async () => {
    const { entries, head } = chain(8);
    const swapped = entries.map((e) => (e.seq === 3 ? { ...entries[3]!, seq: 3 } : e.seq === 4 ? { ...entries[2]!, seq: 4 } : e));
    expect(await verifyChain(keys, memorySource(swapped, head), 3)).toMatchObject({ ok: false, firstBadEntry: 3, checked: 2 });
  });

  it('an inserted entry (later seqs shifted, head moved along) → the inserted one', async () => {
    const { entries, head } = chain(6);
    const forged = { ...draft(WS_A, 99), seq: 4, link: randomBytes(32) };
    const shifted = [...entries.filter((e) => e.seq < 4), forged, ...entries.filter((e) => e.seq >= 4).map((e) => ({ ...e, seq: e.seq + 1 }))];
    expect(await verifyChain(keys, memorySource(shifted, { seq: 7, link: head.link }), 2)).toMatchObject({ ok: false, firstBadEntry: 4, checked: 3 });
  });

  it('entries deleted from the end (head left) → the first missing seq, also on a page boundary', async () => {
    const { entries, head } = chain(8);
    for (const keep of [5, 6]) {
      const result = await verifyChain(keys, memorySource(entries.filter((e) => e.seq <= keep), head), 3);
      expect(result).toMatchObject({ ok: false, checked: keep, firstBadEntry: keep + 1, reason: `entries ${keep + 1}–8 are missing (the chain head is at 8)` });
      expect(result.head).toEqual({ seq: 8, link: hex(head.link) });
    }
  });

  it('a head whose link is not the last entry\'s → the head seq, every entry checked', async () => {
    const { entries } = chain(5);
    expect(await verifyChain(keys, memorySource(entries, { seq: 5, link: randomBytes(32) }))).toMatchObject({
      ok: false, checked: 5, firstBadEntry: 5, reason: 'the chain head does not match entry 5',
    });
  });

  it('a chain made with another workspace\'s key does not verify (entry 1: the keys differ, nothing else)', async () => {
    const { entries, head } = chain(4, WS_A);
    const moved = entries.map((e) => ({ ...e, workspaceId: WS_B }));
    expect(await verifyChain(keys, memorySource(moved, head))).toMatchObject({ ok: false, firstBadEntry: 1, checked: 0 });
    expect((await verifyChain(keys, memorySource(entries, head))).ok).toBe(true);
  });

  it('a consistent truncation (tail removed, head rewound to an earlier entry) verifies: only a recorded head reveals it', async () => {
    const { entries, head } = chain(8);
    const rewound = await verifyChain(keys, memorySource(entries.slice(0, 5), { seq: 5, link: entries[4]!.link }));
    expect(rewound).toEqual({ ok: true, checked: 5, head: { seq: 5, link: hex(entries[4]!.link) } });
    expect(rewound.head.seq).toBeLessThan(head.seq);
  });

  it('entries appended while verifying are ignored: the walk stops at the head it read first', async () => {
    const { entries } = chain(12);
    // Entries appear page by page while the walk goes on (even a garbage one), and each append
    // moves the head, as a store's append transaction does.
    const live = entries.slice(0, 5);
    const headNow = () => ({ seq: live.length, link: live[live.length - 1]!.link });
    const first = headNow();
    const source = memorySource(live, headNow, () => {
      const next = entries[live.length];
      if (next) live.push(live.length === 6 ? { ...next, link: randomBytes(32) } : next);
    });
    expect(await verifyChain(keys, source, 2)).toEqual({ ok: true, checked: 5, head: { seq: 5, link: hex(first.link) } });
    // It stopped at the head instead of following the growing log.
    expect(source.pages.length).toBeLessThanOrEqual(4);
  });

  it('entries beyond a head that did not move past them → the head was moved back (rewound)', async () => {
    const { entries } = chain(12);
    const stale = { seq: 5, link: entries[4]!.link };
    const result = await verifyChain(keys, memorySource(entries, stale), 2);
    expect(result).toMatchObject({ ok: false, checked: 5, firstBadEntry: 6 });
    expect(result.reason).toMatch(/beyond the chain head.*moved back/);
  });
});

describe('createAuditWriter (group commit)', () => {
  const link = auditLinker(keys);

  interface Deferred {
    readonly promise: Promise<void>;
    resolve(): void;
    reject(error: unknown): void;
  }
  function deferred(): Deferred {
    let resolve!: () => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  }

  /** A store whose appendAudit calls are recorded and complete when the test says so. */
  function controlledStore() {
    const calls: { append: AuditAppend; done: Deferred }[] = [];
    return {
      calls,
      store: {
        appendAudit(append: AuditAppend): Promise<void> {
          const done = deferred();
          calls.push({ append, done });
          return done.promise;
        },
      },
    };
  }

  const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
  async function until(condition: () => boolean): Promise<void> {
    for (let i = 0; i < 100 && !condition(); i++) await tick();
    expect(condition()).toBe(true);
  }
  /** Which of the promises have settled, and how. */
  function track(promises: Promise<void>[]): ('pending' | 'resolved' | 'rejected')[] {
    const states: ('pending' | 'resolved' | 'rejected')[] = promises.map(() => 'pending');
    for (const [i, p] of promises.entries()) {
      void p.then(
        () => (states[i] = 'resolved'),
        () => (states[i] = 'rejected'),
      );
    }
    return states;
  }

  it('concurrent writes share one appendAudit call, in order, with the linker given', async () => {
    const { store, calls } = controlledStore();
    const writer = createAuditWriter({ store, link });
    const drafts = Array.from({ length: 20 }, (_, i) => draft(i % 3 === 0 ? WS_B : WS_A, i));
    const states = track(drafts.map((d) => writer.write(d)));
    await until(() => calls.length === 1);
    expect(calls[0]!.append.entries).toEqual(drafts);
    expect(calls[0]!.append.link).toBe(link);
    // Nobody is told "committed" before the commit is.
    await tick();
    expect(states.every((s) => s === 'pending')).toBe(true);
    calls[0]!.done.resolve();
    await until(() => states.every((s) => s === 'resolved'));
    expect(calls).toHaveLength(1);
  });

  it('writes arriving while a batch commits gather into the next batch (one more call, not one each)', async () => {
    const { store, calls } = controlledStore();
    const writer = createAuditWriter({ store, link });
    const first = track([writer.write(draft(WS_A, 1))]);
    await until(() => calls.length === 1);
    const secondDrafts = [draft(WS_A, 2), draft(WS_A, 3), draft(WS_A, 4)];
    const second = track(secondDrafts.map((d) => writer.write(d)));
    await tick();
    expect(calls).toHaveLength(1); // still committing the first batch
    calls[0]!.done.resolve();
    await until(() => calls.length === 2);
    expect(first).toEqual(['resolved']);
    expect(calls[1]!.append.entries).toEqual(secondDrafts);
    expect(second).toEqual(['pending', 'pending', 'pending']);
    calls[1]!.done.resolve();
    await until(() => second.every((s) => s === 'resolved'));
  });

  it('a failing batch rejects every waiter of that batch, and only those', async () => {
    const { store, calls } = controlledStore();
    const writer = createAuditWriter({ store, link });
    const batch1 = [writer.write(draft(WS_A, 1)), writer.write(draft(WS_A, 2))];
    const states1 = track(batch1);
    await until(() => calls.length === 1);
    const batch2 = [writer.write(draft(WS_A, 3)), writer.write(draft(WS_B, 4))];
    const states2 = track(batch2);
    const failure = new Error('disk full');
    calls[0]!.done.reject(failure);
    for (const p of batch1) await expect(p).rejects.toBe(failure);
    expect(states1).toEqual(['rejected', 'rejected']);
    // The writer goes on with the next batch.
    await until(() => calls.length === 2);
    expect(states2).toEqual(['pending', 'pending']);
    calls[1]!.done.resolve();
    await Promise.all(batch2);
    // And with later writes after that.
    const later = writer.write(draft(WS_A, 5));
    await until(() => calls.length === 3);
    calls[2]!.done.resolve();
    await later;
  });

  it('a batch spanning workspaces that fails is retried per workspace: only the failing workspace is refused', async () => {
    // One tenant's chain cannot be appended to (its head row was tampered with, say): the other
    // tenants' entries that shared its batch must not be refused with it.
    const calls: string[][] = [];
    const writer = createAuditWriter({
      store: {
        appendAudit: async (append) => {
          calls.push(append.entries.map((e) => (e.workspaceId === WS_A ? 'A' : 'B')));
          if (append.entries.some((e) => e.workspaceId === WS_A)) throw new Error('chain of A is jammed');
        },
      },
      link,
    });
    const drafts = [draft(WS_A, 1), draft(WS_B, 2), draft(WS_A, 3), draft(WS_B, 4)];
    const results = await Promise.allSettled(drafts.map((d) => writer.write(d)));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'rejected', 'fulfilled']);
    // One batch, then one retry per workspace, each with that workspace's entries in order.
    expect(calls[0]).toEqual(['A', 'B', 'A', 'B']);
    expect(calls.slice(1).sort()).toEqual([['A', 'A'], ['B', 'B']]);
  });

  it('a batch spanning workspaces rejects everyone when every workspace fails (store down)', async () => {
    let calls = 0;
    const writer = createAuditWriter({
      store: {
        appendAudit: async () => {
          calls++;
          throw new Error('store down');
        },
      },
      link,
    });
    const results = await Promise.allSettled([writer.write(draft(WS_A, 1)), writer.write(draft(WS_B, 2))]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(calls).toBe(3);
  });

  it('a batch that throws synchronously inside appendAudit also rejects its waiters (no stuck writer)', async () => {
    let fail = true;
    const seen: number[] = [];
    const writer = createAuditWriter({
      store: {
        appendAudit: async (append) => {
          seen.push(append.entries.length);
          if (fail) throw new Error('store closed');
        },
      },
      link,
    });
    await expect(Promise.all([writer.write(draft(WS_A, 1)), writer.write(draft(WS_A, 2))])).rejects.toThrow('store closed');
    fail = false;
    await writer.write(draft(WS_A, 3));
    expect(seen).toEqual([2, 1]);
  });

  it('maxBatch bounds a batch: the rest follows in further calls, in order', async () => {
    const batches: AuditEntryDraft[][] = [];
    const writer = createAuditWriter({ store: { appendAudit: async (append) => void batches.push([...append.entries]) }, link, maxBatch: 2 });
    const drafts = Array.from({ length: 5 }, (_, i) => draft(WS_A, i));
    await Promise.all(drafts.map((d) => writer.write(d)));
    expect(batches.map((b) => b.length)).toEqual([2, 2, 1]);
    expect(batches.flat()).toEqual(drafts);
  });

  it('flush waits until everything written so far is committed (also across batches)', async () => {
    const { store, calls } = controlledStore();
    const writer = createAuditWriter({ store, link });
    void writer.write(draft(WS_A, 1));
    let flushed = false;
    const flush = writer.flush().then(() => (flushed = true));
    await until(() => calls.length === 1);
    // Queued while the first batch commits: flush must wait for that one too.
    void writer.write(draft(WS_A, 2));
    calls[0]!.done.resolve();
    await until(() => calls.length === 2);
    await tick();
    expect(flushed).toBe(false);
    calls[1]!.done.resolve();
    await flush;
    expect(flushed).toBe(true);
  });

  it('flush with nothing queued resolves at once; flush after a failed batch resolves too', async () => {
    const writer = createAuditWriter({
      store: {
        appendAudit: async () => {
          throw new Error('nope');
        },
      },
      link,
    });
    await writer.flush();
    const write = writer.write(draft(WS_A, 1));
    await writer.flush();
    await expect(write).rejects.toThrow('nope');
  });

  it('commits through a real chain: what the writer appends links up and verifies', async () => {
    const entries: AuditEntryRecord[] = [];
    let head: AuditHead | undefined;
    const writer = createAuditWriter({
      store: {
        appendAudit: async (append) => {
          const chained = chainEntries(head, append.entries, append.link);
          entries.push(...chained.records);
          head = chained.head;
        },
      },
      link,
    });
    await Promise.all(Array.from({ length: 50 }, (_, i) => writer.write(draft(WS_A, i))));
    await writer.flush();
    expect(await verifyChain(keys, memorySource(entries, head), 7)).toMatchObject({ ok: true, checked: 50 });
  });
});
