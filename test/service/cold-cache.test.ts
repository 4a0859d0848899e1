import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from 'vitest';
import { ManualClock } from '../../src/service/clock.js';
import type { KeyRecord, Store } from '../../src/store/store.js';
import { createWorkspace, decrypt, encrypt, type Scope } from '../support/http-helpers.js';
import { openTestKeystrata, testStoreHandle, testStores, type TestStoreHandle } from '../support/test-keystrata.js';

/**
 * DESIGN §1: "A cold cache under concurrent load makes ONE provider call per key (single-flight),
 * never one per request."
 *
 * The calls go to the service directly (ks.crypto), all started before any resolves: through
 * inject() on SQLite a whole request can finish within one event-loop turn, so the requests would
 * barely overlap and the test could not tell single-flight from luck.
 *
 * What is counted: calls to the Store that the key hierarchy makes while resolving keys, spied on
 * the very Store object the running keystrata uses (ks.store). Unwrapping the EK is always
 * `store.getCmk(cmkId)` immediately followed by one `provider.unwrap` (key-hierarchy.ts,
 * loadEnvironmentKey), so getCmk calls = CMK provider calls; `store.getKey` returning an EK row
 * counts EK loads, and getKey calls per key id count how often each lower key was unwrapped.
 */

interface Sealed {
  readonly scope: Scope;
  readonly ciphertext: string;
  readonly plaintext: string;
}

for (const store of testStores()) {
  describe(`cold key cache under concurrent load (${store})`, () => {
    let handle: TestStoreHandle;
    // Fixed time, so every scope's keys hang under one hourly key whatever the wall clock does.
    const clock = new ManualClock(Date.UTC(2026, 5, 1, 8, 30));
    let ws: string;
    const sealed: Sealed[] = [];

    beforeAll(async () => {
      handle = testStoreHandle(store);
      const writer = await openTestKeystrata({ handle, clock });
      ws = (await createWorkspace(writer, 'cold')).id;
      const scopes: Scope[] = [
        { type: 'job', id: 'job-1' },
        { type: 'job', id: 'job-2' },
        { type: 'job', id: 'job-3' },
        { type: 'event', id: 'evt-1' },
        { type: 'connection', id: 'conn-1' },
        { type: 'log', id: 'log-1' },
      ];
      for (const [i, scope] of scopes.entries()) {
        const plaintext = `payload ${i}`;
        sealed.push({ scope, plaintext, ciphertext: (await encrypt(writer, ws, scope, Buffer.from(plaintext))).ciphertext });
      }
      await writer.close();
    });
    afterAll(async () => {
      await handle?.destroy();
    });

    /** Reopen on the same data: a new process, so an empty key cache. */
    async function coldNode() {
      const t = await openTestKeystrata({ handle, clock });
      expect(t.ks.cache.stats().entries).toBe(0);
      const getKey = vi.spyOn(t.ks.store, 'getKey');
      const getCmk = vi.spyOn(t.ks.store, 'getCmk');
      return { t, getKey, getCmk };
    }

    async function ekLoads(getKey: MockInstance<Store['getKey']>): Promise<number> {
      const records: (KeyRecord | undefined)[] = await Promise.all(getKey.mock.results.map((r) => r.value as Promise<KeyRecord | undefined>));
      return records.filter((r) => r?.kind === 'ek').length;
    }

    it('50 concurrent decrypts of one ciphertext unwrap the EK once and each key once', async () => {
      const { t, getKey, getCmk } = await coldNode();
      try {
        const env = await t.ks.workspaces.resolveEnvironment(ws, 'production');
        const job = sealed[0]!;
        const results = await Promise.all(Array.from({ length: 50 }, () => t.ks.crypto.decrypt(env, job.ciphertext, job.scope)));
        for (const result of results) expect(result.plaintext.toString()).toBe(job.plaintext);
        expect(getCmk).toHaveBeenCalledTimes(1);
        expect(await ekLoads(getKey)).toBe(1);
        // job key → hourly key → EK: three loads in all, never one per request.
        expect(getKey).toHaveBeenCalledTimes(3);
      } finally {
        await t.close();
      }
    });

    it('50 concurrent decrypts across six scopes unwrap the EK once and every key exactly once', async () => {
      const { t, getKey, getCmk } = await coldNode();
      try {
        const env = await t.ks.workspaces.resolveEnvironment(ws, 'production');
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => sealed[i % sealed.length]!).map(async (s) => ({ s, result: await t.ks.crypto.decrypt(env, s.ciphertext, s.scope) })),
        );
        for (const { s, result } of results) expect(result.plaintext.toString()).toBe(s.plaintext);
        expect(getCmk).toHaveBeenCalledTimes(1);
        expect(await ekLoads(getKey)).toBe(1);
        const perKey = new Map<string, number>();
        for (const [, keyId] of getKey.mock.calls as [string, string][]) perKey.set(keyId, (perKey.get(keyId) ?? 0) + 1);
        // 3 job keys, 1 hourly, 1 connection, 1 log, 1 EK.
        expect(perKey.size).toBe(7);
        for (const [keyId, calls] of perKey) expect({ keyId, calls }).toEqual({ keyId, calls: 1 });

        // Warm now: another 50 touch neither the store's keys nor the provider.
        getKey.mockClear();
        getCmk.mockClear();
        await Promise.all(sealed.map((s) => decrypt(t, ws, s.ciphertext, s.scope)));
        expect(getKey).not.toHaveBeenCalled();
        expect(getCmk).not.toHaveBeenCalled();
      } finally {
        await t.close();
      }
    });

    it('50 concurrent encrypts for one new job on a cold cache create and unwrap each key once', async () => {
      const { t, getKey, getCmk } = await coldNode();
      const insert = vi.spyOn(t.ks.store, 'insertKeyIfAbsent');
      try {
        const env = await t.ks.workspaces.resolveEnvironment(ws, 'production');
        const results = await Promise.all(Array.from({ length: 50 }, (_, i) => t.ks.crypto.encrypt(env, { type: 'job', id: 'fresh-job' }, Buffer.from(`m${i}`))));
        expect(new Set(results.map((r) => r.keyId)).size).toBe(1);
        expect(getCmk).toHaveBeenCalledTimes(1);
        expect(await ekLoads(getKey)).toBe(1);
        // One job key inserted, under the existing hourly key.
        expect((insert.mock.calls as [KeyRecord][]).map(([k]) => k.kind)).toEqual(['job']);
      } finally {
        await t.close();
      }
    });
  });
}
