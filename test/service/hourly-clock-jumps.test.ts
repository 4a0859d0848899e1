import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/service/clock.js';
import { createWorkspace, decrypt, encrypt } from '../support/http-helpers.js';
import { openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

/**
 * Clocks jump (NTP steps, a VM resumed, an operator's mistake) and nodes disagree. Hourly keys must
 * still never overlap: once a key for some hour exists, no node creates — or goes back to — a key of
 * an earlier hour; the hours of the keys in use only move forward, and every record stays readable.
 */

const HOUR = 3_600_000;
const base = Date.UTC(2026, 10, 22, 10, 30);

for (const store of testStores()) {
  describe(`hourly keys under clock jumps (${store})`, () => {
    let t: TestKeystrata;
    const clock = new ManualClock(base);
    beforeAll(async () => {
      t = await openTestKeystrata({ store, clock });
    });
    afterAll(async () => {
      await t?.destroy();
    });

    async function eventKey(ws: string, id: string): Promise<{ hourStart: number; keyId: string; ciphertext: string }> {
      const sealed = await encrypt(t, ws, { type: 'event', id }, Buffer.from(`event ${id}`));
      const key = await t.ks.store.getKey((await t.ks.workspaces.resolveEnvironment(ws, 'production')).environment.id, sealed.keyId);
      expect(key?.kind).toBe('hourly');
      return { hourStart: key!.hourStart!, keyId: sealed.keyId, ciphertext: sealed.ciphertext };
    }

    it('backwards and forwards: the hour of the key in use never goes back, one key per hour, all readable', async () => {
      clock.set(base);
      const ws = (await createWorkspace(t, 'clock-jumps')).id;
      const environmentId = (await t.ks.workspaces.resolveEnvironment(ws, 'production')).environment.id;
      // Real time 10:30, 11:30, 12:30; then the clock steps back 2 h, forward 5 h, back 3 h, forward.
      const steps = [0, 1, 2, 0, 5, 2, 3, 6, 6, 7];
      const used: { hourStart: number; keyId: string; ciphertext: string }[] = [];
      for (const [i, hours] of steps.entries()) {
        clock.set(base + hours * HOUR);
        used.push(await eventKey(ws, `e${i}`));
      }
      const hours = used.map((u) => u.hourStart);
      for (let i = 1; i < hours.length; i++) expect(hours[i]).toBeGreaterThanOrEqual(hours[i - 1]!);
      // The jump back to 10:30 kept the 12:00 key; the step back to 12:30 and 13:30 kept the 15:00 one.
      expect(hours.map((h) => (h * 1000 - Date.UTC(2026, 10, 22, 10)) / HOUR)).toEqual([0, 1, 2, 2, 5, 5, 5, 6, 6, 7]);

      const keys = await t.ks.store.listKeysUnder(environmentId, (await t.ks.store.getActiveEk(environmentId))!.id, 1000);
      const hourly = keys.filter((k) => k.kind === 'hourly');
      const starts = hourly.map((k) => k.hourStart);
      expect(new Set(starts).size).toBe(starts.length);
      // Created in the order of their hours: no earlier hour's key appeared after a later one.
      const byCreation = [...hourly].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.hourStart! - b.hourStart!);
      expect(byCreation.map((k) => k.hourStart)).toEqual([...starts].sort((a, b) => a! - b!));
      t.ks.cache.clear();
      for (const [i, u] of used.entries()) {
        const response = await decrypt(t, ws, u.ciphertext, { type: 'event', id: `e${i}` });
        expect(response.statusCode).toBe(200);
      }
    });

    it('two nodes whose clocks disagree by hours use one hour at a time: the lagging node follows the newest key', async () => {
      clock.set(base);
      const ws = (await createWorkspace(t, 'clock-skew')).id;
      const ahead = new ManualClock(base + 3 * HOUR);
      const other = await openTestKeystrata({ handle: { ...t.handle, destroy: async () => undefined }, clock: ahead });
      try {
        const fromAhead = await encrypt(other, ws, { type: 'event', id: 'ahead' }, Buffer.from('from the node ahead'));
        // The lagging node's hour (10:00) has no key yet, but a newer one exists: it uses that one.
        const fromBehind = await encrypt(t, ws, { type: 'event', id: 'behind' }, Buffer.from('from the node behind'));
        expect(fromBehind.keyId).toBe(fromAhead.keyId);
        expect((await decrypt(t, ws, fromAhead.ciphertext, { type: 'event', id: 'ahead' })).statusCode).toBe(200);
      } finally {
        await other.close();
      }
    });
  });
}
