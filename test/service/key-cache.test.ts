import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/service/clock.js';
import { KeyCache, type LoadedKey } from '../../src/service/key-cache.js';

type Meta = { readonly tag: string };

function newCache(options: { maxEntries?: number; ttlMs?: number } = {}) {
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 12));
  const cache = new KeyCache<Meta>({ maxEntries: options.maxEntries ?? 100, ttlMs: options.ttlMs ?? 60_000, clock });
  return { cache, clock };
}

/** A loader that records the material it hands out, so tests can check it was zeroed later. */
function loader(tag = 'k') {
  const issued: Buffer[] = [];
  const load = vi.fn(async (): Promise<LoadedKey<Meta>> => {
    const material = randomBytes(32);
    issued.push(material);
    return { material, meta: { tag } };
  });
  return { load, issued };
}

const isZero = (buffer: Buffer) => buffer.every((b) => b === 0);
const copyOf = (id: string, cache: KeyCache<Meta>) => cache.withKey(id, () => Promise.reject(new Error('not cached')), (e) => Buffer.from(e.material));

describe('KeyCache', () => {
  it('loads on a miss, serves hits from memory, and counts both', async () => {
    const { cache } = newCache();
    const { load, issued } = loader('a');
    const first = await cache.withKey('a', load, (e) => ({ id: e.id, meta: e.meta, key: Buffer.from(e.material) }));
    const second = await cache.withKey('a', load, (e) => Buffer.from(e.material));
    expect(load).toHaveBeenCalledTimes(1);
    expect(first).toMatchObject({ id: 'a', meta: { tag: 'a' } });
    expect(first.key.equals(issued[0]!)).toBe(true);
    expect(second.equals(first.key)).toBe(true);
    expect(cache.stats()).toEqual({ hits: 1, misses: 1, evictions: 0, entries: 1 });
  });

  it('is bounded: at maxEntries the least recently used key is evicted and zeroed', async () => {
    const { cache } = newCache({ maxEntries: 3 });
    const materials = new Map<string, Buffer>();
    for (const id of ['a', 'b', 'c']) {
      const { load, issued } = loader(id);
      await cache.withKey(id, load, () => undefined);
      materials.set(id, issued[0]!);
    }
    // Touch "a" so that "b" is the least recently used.
    await cache.withKey('a', () => Promise.reject(new Error('must hit')), () => undefined);
    const d = loader('d');
    await cache.withKey('d', d.load, () => undefined);

    expect(cache.stats()).toMatchObject({ entries: 3, evictions: 1 });
    expect(isZero(materials.get('b')!)).toBe(true);
    for (const id of ['a', 'c']) expect(isZero(materials.get(id)!)).toBe(false);
    // "b" is loaded again; "a" and "c" are still hits.
    const again = loader('b');
    await cache.withKey('b', again.load, () => undefined);
    expect(again.load).toHaveBeenCalledTimes(1);
    expect(cache.stats().entries).toBe(3);
  });

  it('never holds more than maxEntries under churn, and zeroes everything it drops', async () => {
    const { cache } = newCache({ maxEntries: 16 });
    const all: Buffer[] = [];
    for (let i = 0; i < 200; i++) {
      const { load, issued } = loader();
      await cache.withKey(`k${i % 50}`, load, () => undefined);
      all.push(...issued);
      expect(cache.stats().entries).toBeLessThanOrEqual(16);
    }
    cache.clear();
    expect(all.every(isZero)).toBe(true);
  });

  it('expires keys after the TTL (ManualClock), zeroing them and reloading on the next use', async () => {
    const { cache, clock } = newCache({ ttlMs: 5 * 60_000 });
    const { load, issued } = loader();
    await cache.withKey('a', load, () => undefined);
    clock.advance(5 * 60_000 - 1);
    await cache.withKey('a', load, () => undefined);
    expect(load).toHaveBeenCalledTimes(1);
    expect(isZero(issued[0]!)).toBe(false);

    clock.advance(1);
    const seen = await cache.withKey('a', load, (e) => Buffer.from(e.material));
    expect(load).toHaveBeenCalledTimes(2);
    expect(isZero(issued[0]!)).toBe(true);
    expect(seen.equals(issued[1]!)).toBe(true);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 2, entries: 1 });
  });

  it('sweep() zeroes expired keys nobody asks for again, and keeps live ones', async () => {
    const { cache, clock } = newCache({ ttlMs: 60_000 });
    const old = loader('old');
    const fresh = loader('fresh');
    await cache.withKey('old', old.load, () => undefined);
    clock.advance(30_000);
    await cache.withKey('fresh', fresh.load, () => undefined);
    clock.advance(30_000);
    expect(cache.sweep()).toBe(1);
    expect(isZero(old.issued[0]!)).toBe(true);
    expect(isZero(fresh.issued[0]!)).toBe(false);
    expect(cache.stats().entries).toBe(1);
  });

  it('bounds a child by its parent: expiresAt = min(now + TTL, notAfter)', async () => {
    const { cache, clock } = newCache({ ttlMs: 60_000 });
    const now = clock.now();
    const child = cache.put('child', { material: randomBytes(32), meta: { tag: 'child' }, notAfter: now + 10_000 });
    expect(child.expiresAt).toBe(now + 10_000);
    const late = cache.put('late', { material: randomBytes(32), meta: { tag: 'late' }, notAfter: now + 600_000 });
    expect(late.expiresAt).toBe(now + 60_000);

    clock.advance(10_000);
    const reload = loader('child');
    await cache.withKey('child', reload.load, () => undefined);
    expect(reload.load).toHaveBeenCalledTimes(1);
    expect(isZero(child.material)).toBe(true);
    await cache.withKey('late', () => Promise.reject(new Error('must hit')), () => undefined);
  });

  it('single-flight: N concurrent misses call the loader once and all use the same key', async () => {
    const { cache } = newCache();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const material = randomBytes(32);
    const load = vi.fn(async (): Promise<LoadedKey<Meta>> => {
      await gate;
      return { material, meta: { tag: 'shared' } };
    });
    const users = Array.from({ length: 50 }, () => cache.withKey('k', load, (e) => ({ material: e.material, copy: Buffer.from(e.material), id: e.id })));
    await Promise.resolve();
    release();
    const results = await Promise.all(users);
    expect(load).toHaveBeenCalledTimes(1);
    for (const r of results) {
      expect(r.material).toBe(material);
      expect(r.copy.equals(material)).toBe(true);
      expect(r.id).toBe('k');
    }
    expect(cache.stats()).toMatchObject({ misses: 50, entries: 1 });
    // Different ids do not share a flight.
    const other = loader('other');
    await Promise.all([cache.withKey('x', other.load, () => 1), cache.withKey('y', other.load, () => 2)]);
    expect(other.load).toHaveBeenCalledTimes(2);
  });

  it('does not cache a failed load: every waiter sees the error, and the next call retries', async () => {
    const { cache } = newCache();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const failure = new Error('KMS unreachable');
    const failing = vi.fn(async (): Promise<LoadedKey<Meta>> => {
      await gate;
      throw failure;
    });
    const waiters = Array.from({ length: 10 }, () => cache.withKey('k', failing, () => 'used'));
    release();
    const settled = await Promise.allSettled(waiters);
    expect(failing).toHaveBeenCalledTimes(1);
    for (const s of settled) expect(s).toEqual({ status: 'rejected', reason: failure });
    expect(cache.stats().entries).toBe(0);

    const { load } = loader();
    expect(await cache.withKey('k', load, () => 'used')).toBe('used');
    expect(load).toHaveBeenCalledTimes(1);
  });

  it('propagates an error thrown by `use` without dropping the key', async () => {
    const { cache } = newCache();
    const { load } = loader();
    await expect(cache.withKey('k', load, () => {
      throw new Error('caller failed');
    })).rejects.toThrow('caller failed');
    expect(await cache.withKey('k', load, () => 'ok')).toBe('ok');
    expect(load).toHaveBeenCalledTimes(1);
  });

  it('zeroes on evict(id), on clear(), and when a key is replaced', async () => {
    const { cache } = newCache();
    const a = randomBytes(32);
    const b = randomBytes(32);
    const c = randomBytes(32);
    cache.put('a', { material: a, meta: { tag: 'a' } });
    cache.put('b', { material: b, meta: { tag: 'b' } });
    cache.put('c', { material: c, meta: { tag: 'c' } });
    const bCopy = await copyOf('b', cache);

    cache.evict('a');
    expect(isZero(a)).toBe(true);
    expect(isZero(b)).toBe(false);
    expect(cache.stats().entries).toBe(2);

    const b2 = randomBytes(32);
    cache.put('b', { material: b2, meta: { tag: 'b2' } });
    expect(isZero(b)).toBe(true);
    expect((await copyOf('b', cache)).equals(b2)).toBe(true);
    expect(bCopy.equals(b2)).toBe(false);

    cache.clear();
    expect([b2, c].every(isZero)).toBe(true);
    expect(cache.stats().entries).toBe(0);
  });

  it('loads again when an entry was evicted before its waiter could use it (tiny cache, heavy churn)', async () => {
    const { cache } = newCache({ maxEntries: 1 });
    const seen = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        cache.withKey(`k${i % 4}`, async () => ({ material: Buffer.alloc(32, i % 4 + 1), meta: { tag: String(i % 4) } }), (e) => Buffer.from(e.material)),
      ),
    );
    // Whatever the interleaving, nobody was handed zeroed (evicted) material.
    seen.forEach((key, i) => expect(key.equals(Buffer.alloc(32, (i % 4) + 1))).toBe(true));
  });
});
