import { describe, expect, it } from 'vitest';
import type { Clock } from '../../src/service/clock.js';
import { openTestKeystrata } from '../support/test-keystrata.js';

/** Advances 1 ms on every read, so one operation that reads the clock several times straddles a boundary. */
class TickingClock implements Clock {
  constructor(public current: number) {}
  now(): number {
    return this.current++;
  }
}

const HOUR = 3_600_000;

describe('hourly keys across an hour boundary', () => {
  for (const startOffset of [1, 2, 3, 4, 5, 6, 8, 12]) {
    it(`an event encrypted while the clock crosses the boundary (${startOffset} ms before) never makes a later hour use an earlier hour's key`, async () => {
      const boundary = Date.UTC(2026, 5, 1, 13);
      const clock = new TickingClock(boundary - startOffset);
      const t = await openTestKeystrata({ clock });
      try {
        const ws = await t.ks.workspaces.createWorkspace('boundary');
        const env = await t.ks.workspaces.resolveEnvironment(ws.id, 'production');
        await t.ks.crypto.encrypt(env, { type: 'event', id: 'straddling' }, Buffer.from('x'));
        clock.current = boundary + 10 * 60_000;
        const { keyId } = await t.ks.crypto.encrypt(env, { type: 'event', id: 'later' }, Buffer.from('y'));
        const key = await t.ks.store.getKey(env.environment.id, keyId);
        expect(key?.kind).toBe('hourly');
        expect(key?.hourStart).toBe(Math.floor(clock.current / HOUR) * 3600);
      } finally {
        await t.destroy();
      }
    });
  }
});
