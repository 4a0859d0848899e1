import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/service/clock.js';
import { createWorkspace, decrypt, encrypt, keyStatus } from '../support/http-helpers.js';
import { openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

/**
 * The hourly layer of the hierarchy (DESIGN §1, §5) with a ManualClock: one key per UTC hour,
 * encrypt-only during its hour, decrypt-only afterwards; job keys hang under the hour the job
 * first ran.
 */

const at = (hour: number, minute: number) => Date.UTC(2026, 4, 12, hour, minute, 17);
const hourStartSeconds = (hour: number) => Date.UTC(2026, 4, 12, hour) / 1000;

for (const store of testStores()) {
  describe(`hourly keys and job keys (${store})`, () => {
    const clock = new ManualClock(at(10, 5));
    let t: TestKeystrata;
    beforeAll(async () => {
      t = await openTestKeystrata({ store, clock });
    });
    afterAll(async () => {
      await t?.destroy();
    });

    async function newEnvironment(name: string) {
      const ws = await createWorkspace(t, name);
      return { ws: ws.id, envId: ws.environments[0]!.id };
    }

    it('rolls over on the clock: 10:xx key for jobs and events, a new one at 12:xx, the old one decrypt-only', async () => {
      clock.set(at(10, 5));
      const { ws, envId } = await newEnvironment('rollover');

      const event10 = await encrypt(t, ws, { type: 'event', id: 'evt-10' }, Buffer.from('event at ten'));
      const hourly10 = await t.ks.store.getKey(envId, event10.keyId);
      expect(hourly10).toMatchObject({ kind: 'hourly', hourStart: hourStartSeconds(10), state: 'active' });
      const job10 = await encrypt(t, ws, { type: 'job', id: 'job-1' }, Buffer.from('job at ten'));
      const jobKey = await t.ks.store.getKey(envId, job10.keyId);
      expect(jobKey).toMatchObject({ kind: 'job', scopeId: 'job-1', parentId: event10.keyId });

      clock.set(at(10, 59));
      expect((await encrypt(t, ws, { type: 'event', id: 'evt-10b' }, Buffer.from('x'))).keyId).toBe(event10.keyId);
      let status = await keyStatus(t, ws);
      expect(status.hourly.current).toMatchObject({ id: event10.keyId, state: 'active', hourStart: new Date(hourStartSeconds(10) * 1000).toISOString() });

      // 12:xx — nothing used in the 11:00 hour; the 10:00 key is over and decrypt-only.
      clock.set(at(12, 20));
      status = await keyStatus(t, ws);
      expect(status.hourly.current).toBeNull();
      expect(status.hourly.latest).toMatchObject({ id: event10.keyId, state: 'decrypt-only' });

      // Old ciphertexts still decrypt.
      for (const [sealed, scope, text] of [
        [job10, { type: 'job', id: 'job-1' }, 'job at ten'],
        [event10, { type: 'event', id: 'evt-10' }, 'event at ten'],
      ] as const) {
        const response = await decrypt(t, ws, sealed.ciphertext, scope);
        expect(response.statusCode).toBe(200);
        expect(Buffer.from(response.json().plaintext, 'base64').toString()).toBe(text);
      }

      // A new event at 12:xx is sealed under a NEW hourly key for the 12:00 bucket.
      const event12 = await encrypt(t, ws, { type: 'event', id: 'evt-12' }, Buffer.from('event at twelve'));
      expect(event12.keyId).not.toBe(event10.keyId);
      expect(await t.ks.store.getKey(envId, event12.keyId)).toMatchObject({ kind: 'hourly', hourStart: hourStartSeconds(12) });
      status = await keyStatus(t, ws);
      expect(status.hourly.current).toMatchObject({ id: event12.keyId, state: 'active' });
      expect(status.hourly.latest).toMatchObject({ id: event12.keyId, state: 'active' });
      expect(status.counts.hourly).toBe(2);

      // job-1 keeps its key (wrapped by the 10:00 key); a job first seen at 12:xx hangs under 12:00.
      const job1Again = await encrypt(t, ws, { type: 'job', id: 'job-1' }, Buffer.from('job-1 at twelve'));
      expect(job1Again.keyId).toBe(job10.keyId);
      expect((await t.ks.store.getKey(envId, job1Again.keyId))!.parentId).toBe(event10.keyId);
      const job2 = await encrypt(t, ws, { type: 'job', id: 'job-2' }, Buffer.from('job-2'));
      expect(job2.keyId).not.toBe(job10.keyId);
      expect(await t.ks.store.getKey(envId, job2.keyId)).toMatchObject({ kind: 'job', scopeId: 'job-2', parentId: event12.keyId });

      // And still after the cache forgets everything (keys reloaded through their parents).
      t.ks.cache.clear();
      clock.set(at(13, 1));
      for (const [sealed, scope] of [
        [job10, { type: 'job', id: 'job-1' }],
        [job1Again, { type: 'job', id: 'job-1' }],
        [job2, { type: 'job', id: 'job-2' }],
        [event10, { type: 'event', id: 'evt-10' }],
        [event12, { type: 'event', id: 'evt-12' }],
      ] as const) {
        expect((await decrypt(t, ws, sealed.ciphertext, scope)).statusCode).toBe(200);
      }
    });

    it('uses the UTC hour bucket: 10:59:59.999 and 11:00:00.000 are different hours', async () => {
      const { ws, envId } = await newEnvironment('boundary');
      clock.set(Date.UTC(2026, 4, 12, 10, 59, 59, 999));
      const before = await encrypt(t, ws, { type: 'event', id: 'a' }, Buffer.from('x'));
      clock.set(Date.UTC(2026, 4, 12, 11, 0, 0, 0));
      const after = await encrypt(t, ws, { type: 'event', id: 'b' }, Buffer.from('x'));
      expect(after.keyId).not.toBe(before.keyId);
      expect((await t.ks.store.getKey(envId, before.keyId))!.hourStart).toBe(hourStartSeconds(10));
      expect((await t.ks.store.getKey(envId, after.keyId))!.hourStart).toBe(hourStartSeconds(11));
    });

    it('reuses a job key for the same job id and gives different jobs different keys', async () => {
      clock.set(at(9, 0));
      const { ws, envId } = await newEnvironment('jobs');
      const a1 = await encrypt(t, ws, { type: 'job', id: 'job-a' }, Buffer.from('1'));
      const a2 = await encrypt(t, ws, { type: 'job', id: 'job-a' }, Buffer.from('2'));
      const b = await encrypt(t, ws, { type: 'job', id: 'job-b' }, Buffer.from('3'));
      expect(a2.keyId).toBe(a1.keyId);
      expect(b.keyId).not.toBe(a1.keyId);
      const [ka, kb] = await Promise.all([t.ks.store.getKey(envId, a1.keyId), t.ks.store.getKey(envId, b.keyId)]);
      // Both under the same 09:00 hourly key, each bound to its own job.
      expect(ka!.parentId).toBe(kb!.parentId);
      expect(ka!.scopeId).toBe('job-a');
      expect(kb!.scopeId).toBe('job-b');
      expect((await keyStatus(t, ws)).counts).toMatchObject({ hourly: 1, job: 2 });
    });

    it('creates exactly one hourly key when 20 encrypts race on the first use of an hour', async () => {
      clock.set(at(14, 30));
      const { ws } = await newEnvironment('race');
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          encrypt(t, ws, i % 2 === 0 ? { type: 'event', id: `evt-${i}` } : { type: 'job', id: `job-${i}` }, Buffer.from(`m${i}`)),
        ),
      );
      const status = await keyStatus(t, ws);
      expect(status.counts.hourly).toBe(1);
      expect(status.counts.job).toBe(10);
      const eventKeys = new Set(results.filter((_, i) => i % 2 === 0).map((r) => r.keyId));
      expect([...eventKeys]).toEqual([status.hourly.current.id]);
    });

    it('creates exactly one hourly key when two nodes race on the same hour (shared database)', async () => {
      clock.set(at(15, 10));
      const { ws } = await newEnvironment('two-nodes');
      const second = await openTestKeystrata({ handle: t.handle, clock });
      try {
        const nodes = [t, second];
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => encrypt(nodes[i % 2]!, ws, { type: 'event', id: `evt-${i}` }, Buffer.from(`m${i}`))),
        );
        expect(new Set(results.map((r) => r.keyId)).size).toBe(1);
        expect((await keyStatus(t, ws)).counts.hourly).toBe(1);
        // Each node decrypts what the other sealed.
        for (const [i, r] of results.entries()) {
          const response = await decrypt(nodes[(i + 1) % 2]!, ws, r.ciphertext);
          expect(response.statusCode).toBe(200);
          expect(Buffer.from(response.json().plaintext, 'base64').toString()).toBe(`m${i}`);
        }
        // Same for a job key raced by both nodes.
        const jobs = await Promise.all(nodes.flatMap((n) => [encrypt(n, ws, { type: 'job', id: 'shared-job' }, Buffer.from('j')), encrypt(n, ws, { type: 'job', id: 'shared-job' }, Buffer.from('j'))]));
        expect(new Set(jobs.map((j) => j.keyId)).size).toBe(1);
      } finally {
        await second.close();
      }
    });

    it('follows a configured key period (KEYSTRATA_HOURLY_KEY_PERIOD_SECONDS)', async () => {
      const quarter = await openTestKeystrata({ store, clock, env: { KEYSTRATA_HOURLY_KEY_PERIOD_SECONDS: '900' } });
      try {
        clock.set(Date.UTC(2026, 4, 12, 16, 14));
        const ws = (await createWorkspace(quarter, 'quarter')).id;
        const a = await encrypt(quarter, ws, { type: 'event', id: 'a' }, Buffer.from('x'));
        clock.set(Date.UTC(2026, 4, 12, 16, 15));
        const b = await encrypt(quarter, ws, { type: 'event', id: 'b' }, Buffer.from('x'));
        expect(b.keyId).not.toBe(a.keyId);
        const status = await keyStatus(quarter, ws);
        expect(status.hourly.periodSeconds).toBe(900);
        expect(status.hourly.current.hourStart).toBe(new Date(Date.UTC(2026, 4, 12, 16, 15)).toISOString());
        expect((await decrypt(quarter, ws, a.ciphertext)).statusCode).toBe(200);
      } finally {
        await quarter.destroy();
      }
    });
  });
}
