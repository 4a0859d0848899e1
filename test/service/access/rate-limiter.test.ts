import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/service/clock.js';
import { createRateLimiter } from '../../../src/service/access/rate-limiter.js';

const ALLOWED = { allowed: true, retryAfterSeconds: 0 };
const setup = (maxKeys = 100) => {
  const clock = new ManualClock();
  return { clock, limiter: createRateLimiter({ clock, maxKeys }) };
};

describe('token bucket', () => {
  it('allows a full burst at once, then denies', () => {
    const { limiter } = setup();
    for (let i = 0; i < 5; i++) expect(limiter.take('k', 1, 5), `request ${i}`).toEqual(ALLOWED);
    expect(limiter.take('k', 1, 5)).toEqual({ allowed: false, retryAfterSeconds: 1 });
  });

  it('a denied request takes nothing', () => {
    const { clock, limiter } = setup();
    limiter.take('k', 1, 2, 2);
    for (let i = 0; i < 10; i++) expect(limiter.take('k', 1, 2).allowed).toBe(false);
    clock.advance(1000);
    expect(limiter.take('k', 1, 2)).toEqual(ALLOWED);
  });

  it('refills continuously and exactly: 100 ms at 10/s is one token, 99 ms is not', () => {
    const { clock, limiter } = setup();
    for (let i = 0; i < 10; i++) limiter.take('k', 10, 10);
    clock.advance(99);
    expect(limiter.take('k', 10, 10).allowed).toBe(false);
    clock.advance(1);
    expect(limiter.take('k', 10, 10)).toEqual(ALLOWED);
    expect(limiter.take('k', 10, 10).allowed).toBe(false);
  });

  it('stays exact over many small refills (no floating-point drift)', () => {
    const { clock, limiter } = setup();
    const rate = 3;
    limiter.take('k', rate, 3, 3);
    // 1000 ms in steps of 1 ms at 3/s must give exactly 3 tokens, not 2.999….
    for (let ms = 0; ms < 1000; ms++) {
      clock.advance(1);
      expect(limiter.peek('k', rate, 3)).toBeLessThanOrEqual(3);
    }
    expect(limiter.take('k', rate, 3, 3)).toEqual(ALLOWED);
  });

  it('never holds more than burst, however long the key was idle', () => {
    const { clock, limiter } = setup();
    limiter.take('k', 100, 4);
    clock.advance(365 * 24 * 3600 * 1000);
    expect(limiter.peek('k', 100, 4)).toBe(4);
    for (let i = 0; i < 4; i++) expect(limiter.take('k', 100, 4).allowed).toBe(true);
    expect(limiter.take('k', 100, 4).allowed).toBe(false);
  });

  it('supports fractional rates and costs above one', () => {
    const { clock, limiter } = setup();
    expect(limiter.take('k', 0.5, 2, 2)).toEqual(ALLOWED);
    expect(limiter.take('k', 0.5, 2, 2)).toEqual({ allowed: false, retryAfterSeconds: 4 });
    clock.advance(3999);
    expect(limiter.take('k', 0.5, 2, 2)).toEqual({ allowed: false, retryAfterSeconds: 1 });
    clock.advance(1);
    expect(limiter.take('k', 0.5, 2, 2)).toEqual(ALLOWED);
  });

  it('caps the stored level when a key is later used with a smaller burst', () => {
    const { limiter } = setup();
    limiter.take('k', 1, 100);
    expect(limiter.peek('k', 1, 5)).toBe(5);
    for (let i = 0; i < 5; i++) expect(limiter.take('k', 1, 5).allowed).toBe(true);
    expect(limiter.take('k', 1, 5).allowed).toBe(false);
  });
});

describe('retryAfterSeconds', () => {
  it('is the ceiling of the time until `cost` tokens are available', () => {
    const { clock, limiter } = setup();
    limiter.take('k', 0.1, 1); // one token per 10 s
    expect(limiter.take('k', 0.1, 1)).toEqual({ allowed: false, retryAfterSeconds: 10 });
    clock.advance(2500);
    expect(limiter.take('k', 0.1, 1)).toEqual({ allowed: false, retryAfterSeconds: 8 }); // 7.5 s → 8
    clock.advance(7000);
    expect(limiter.take('k', 0.1, 1)).toEqual({ allowed: false, retryAfterSeconds: 1 }); // 0.5 s → 1
  });

  it('is at least 1 even when the wait is a few milliseconds', () => {
    const { clock, limiter } = setup();
    for (let i = 0; i < 1000; i++) limiter.take('k', 1000, 1000);
    clock.advance(0);
    expect(limiter.take('k', 1000, 1000)).toEqual({ allowed: false, retryAfterSeconds: 1 });
  });

  it('counts the whole cost, not just the missing first token', () => {
    const { limiter } = setup();
    limiter.take('k', 1, 10, 10);
    expect(limiter.take('k', 1, 10, 7)).toEqual({ allowed: false, retryAfterSeconds: 7 });
  });

  it('waiting exactly retryAfterSeconds always succeeds (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 20 }),
        fc.integer({ min: 1, max: 50 }),
        (rate, burst, gaps, rawCost) => {
          const { clock, limiter } = setup();
          const cost = Math.min(rawCost, burst);
          for (const gap of gaps) {
            clock.advance(gap);
            limiter.take('k', rate, burst);
          }
          const decision = limiter.take('k', rate, burst, cost);
          if (decision.allowed) return;
          expect(Number.isInteger(decision.retryAfterSeconds)).toBe(true);
          expect(decision.retryAfterSeconds).toBeGreaterThanOrEqual(1);
          clock.advance(decision.retryAfterSeconds * 1000);
          expect(limiter.take('k', rate, burst, cost).allowed).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('keys and memory', () => {
  it('keeps independent buckets per key', () => {
    const { limiter } = setup();
    limiter.take('a', 1, 1);
    expect(limiter.take('a', 1, 1).allowed).toBe(false);
    expect(limiter.take('b', 1, 1)).toEqual(ALLOWED);
    expect(limiter.take('A', 1, 1)).toEqual(ALLOWED);
  });

  it('holds at most maxKeys buckets', () => {
    const { limiter } = setup(50);
    for (let i = 0; i < 1000; i++) limiter.take(`key-${i}`, 1, 1);
    expect(limiter.size).toBe(50);
  });

  it('an evicted key comes back with no more than a full bucket', () => {
    const { limiter } = setup(2);
    limiter.take('victim', 1, 3, 3);
    limiter.take('x', 1, 3);
    limiter.take('y', 1, 3);
    limiter.take('z', 1, 3);
    expect(limiter.size).toBe(2);
    for (let i = 0; i < 3; i++) expect(limiter.take('victim', 1, 3).allowed).toBe(true);
    expect(limiter.take('victim', 1, 3).allowed).toBe(false);
  });

  it('recently used keys survive a flood of new keys for longer (CLOCK second chance)', () => {
    const { limiter } = setup(4);
    limiter.take('busy', 1, 2, 2);
    for (let i = 0; i < 3; i++) limiter.take(`other-${i}`, 1, 2);
    limiter.take('busy', 1, 2); // a hit: marks it used (denied, still a hit)
    limiter.take('new', 1, 2); // evicts an unreferenced key, not "busy"
    expect(limiter.take('busy', 1, 2).allowed).toBe(false);
  });

  it('check answers like take would, exactly, but takes nothing and creates nothing', () => {
    const { clock, limiter } = setup();
    expect(limiter.check('k', 0.1, 2)).toEqual(ALLOWED);
    expect(limiter.size).toBe(0);
    limiter.take('k', 0.1, 2, 2);
    clock.advance(5000); // half a token: the wait for one is 5 s, not 1
    expect(limiter.check('k', 0.1, 2)).toEqual({ allowed: false, retryAfterSeconds: 5 });
    expect(limiter.check('k', 0.1, 2, 2)).toEqual({ allowed: false, retryAfterSeconds: 15 });
    expect(limiter.take('k', 0.1, 2)).toEqual({ allowed: false, retryAfterSeconds: 5 });
    clock.advance(5000);
    expect(limiter.check('k', 0.1, 2)).toEqual(ALLOWED);
    expect(limiter.peek('k', 0.1, 2)).toBe(1);
  });

  it('peek neither creates a bucket nor marks the key used', () => {
    const { limiter } = setup();
    expect(limiter.peek('k', 1, 5)).toBe(5);
    expect(limiter.size).toBe(0);
    limiter.take('k', 1, 5, 2);
    expect(limiter.peek('k', 1, 5)).toBe(3);
  });
});

describe('clock going backwards', () => {
  it('does not refill, and does not treat negative elapsed time as a debt', () => {
    const { clock, limiter } = setup();
    limiter.take('k', 1, 2, 2);
    clock.advance(-60_000);
    expect(limiter.take('k', 1, 2).allowed).toBe(false);
    expect(limiter.peek('k', 1, 2)).toBe(0);
  });

  it('cannot mint tokens by stepping back and forward over the same interval', () => {
    const { clock, limiter } = setup();
    limiter.take('k', 1, 10, 10);
    clock.advance(1000); // +1 token
    expect(limiter.take('k', 1, 10)).toEqual(ALLOWED);
    clock.advance(-1000);
    expect(limiter.take('k', 1, 10).allowed).toBe(false);
    clock.advance(1000); // back to the time already counted: nothing new
    expect(limiter.take('k', 1, 10).allowed).toBe(false);
    clock.advance(1000); // genuinely new time
    expect(limiter.take('k', 1, 10)).toEqual(ALLOWED);
  });

  it('a key first seen while the clock is behind still refills once time passes its start', () => {
    const { clock, limiter } = setup();
    clock.advance(-5000);
    limiter.take('k', 1, 1);
    clock.advance(1000);
    expect(limiter.take('k', 1, 1)).toEqual(ALLOWED);
  });
});

describe('argument checks', () => {
  it('rejects non-positive or non-finite rate, burst, cost; cost above burst; bad maxKeys', () => {
    const { limiter } = setup();
    for (const [rate, burst, cost] of [[0, 1, 1], [-1, 1, 1], [Number.NaN, 1, 1], [Infinity, 1, 1], [1, 0, 1], [1, Infinity, 1], [1, 1, 0], [1, 1, Number.NaN], [1, 2, 3]] as const) {
      expect(() => limiter.take('k', rate, burst, cost), `${rate} ${burst} ${cost}`).toThrow(RangeError);
    }
    expect(() => limiter.peek('k', 0, 1)).toThrow(RangeError);
    expect(() => limiter.check('k', 1, 2, 3)).toThrow(RangeError);
    expect(limiter.size).toBe(0);
    const clock = new ManualClock();
    expect(() => createRateLimiter({ clock, maxKeys: 0 })).toThrow(RangeError);
    expect(() => createRateLimiter({ clock, maxKeys: 1.5 })).toThrow(RangeError);
  });
});
