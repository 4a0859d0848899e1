import { zeroize } from '../core/bytes.js';
import type { Clock } from './clock.js';
import { LruMap } from './lru-map.js';
import { SingleFlight } from './single-flight.js';

/** Returned by tryUse when the key is not cached. */
export const MISS: unique symbol = Symbol('key cache miss');

/** A plaintext key held by the cache. The cache owns `material` and zeroes it on eviction. */
export interface KeyEntry<M> {
  readonly id: string;
  readonly material: Buffer;
  /** ms epoch after which the entry must not be used. */
  readonly expiresAt: number;
  readonly meta: M;
}

export interface LoadedKey<M> {
  /** Ownership passes to the cache. */
  readonly material: Buffer;
  readonly meta: M;
  /**
   * Latest time the key may live, ms epoch: a key unwrapped with a cached parent must not outlive
   * that parent, or revoking the CMK would take up to one TTL per hierarchy level to bite. Children
   * therefore inherit their parent's expiry, and "revoked at the KMS → unavailable within the TTL"
   * holds for the whole tree.
   */
  readonly notAfter?: number | undefined;
}

export interface KeyCacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly evictions: number;
  readonly entries: number;
}

export interface KeyCacheOptions {
  readonly maxEntries: number;
  readonly ttlMs: number;
  readonly clock: Clock;
}

/**
 * Bounded, TTL'd cache of unwrapped keys with single-flight loading.
 *
 * Keys are used only inside `use` callbacks, which run synchronously in the same tick as the
 * lookup that found the entry. Handing out the Buffer to be used after an `await` would let a
 * concurrent eviction zero it in between, and the caller would then encrypt under an all-zero key.
 */
export class KeyCache<M> {
  private readonly entries: LruMap<string, KeyEntry<M>>;
  private readonly loads = new SingleFlight<string, void>();
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  /** Bumped by every invalidation, so loads that overlap one know not to keep what they read. */
  private epoch = 0;

  constructor(private readonly options: KeyCacheOptions) {
    this.entries = new LruMap(options.maxEntries, (entry) => {
      this.evictions += 1;
      zeroize(entry.material);
    });
  }

  /**
   * Run `use` with the key `id`, loading it with `load` on a miss. Concurrent misses with the same
   * `flight` (default: the id) share one `load`; callers whose loads differ by who asks give each
   * asker its own flight. `use` must be synchronous and must not keep `entry.material`.
   */
  async withKey<T>(id: string, load: () => Promise<LoadedKey<M>>, use: (entry: KeyEntry<M>) => T, flight: string = id): Promise<T> {
    const cached = this.lookup(id);
    if (cached) {
      this.hits += 1;
      return use(cached);
    }
    this.misses += 1;
    const epoch = this.epoch;
    for (;;) {
      await this.loads.run(flight, async () => {
        this.put(id, await load());
      });
      // Re-checked synchronously after the await: with a tiny cache and heavy churn the entry can
      // already be gone, in which case we load it again rather than use zeroed material. Peeked,
      // not read: a load must not count as a second use, or every new key would look as recently
      // used as the hot ones and eviction would degrade to first-in, first-out.
      const entry = this.lookup(id, true);
      if (entry) {
        try {
          return use(entry);
        } finally {
          // An invalidation (a key disabled or destroyed) happened while this load was in flight:
          // what it read may predate the change, so it serves this one request and is not kept.
          if (this.epoch !== epoch) this.entries.delete(id);
        }
      }
    }
  }

  /**
   * The synchronous fast path: run `use` now if `id` is cached and fresh, else return MISS (the
   * caller then takes the async path through withKey). A hit costs no promise at all.
   */
  tryUse<T>(id: string, use: (entry: KeyEntry<M>) => T): T | typeof MISS {
    const cached = this.lookup(id);
    if (!cached) return MISS;
    this.hits += 1;
    return use(cached);
  }

  /** Insert a key the caller already holds (e.g. one it just created). Takes ownership of material. */
  put(id: string, loaded: LoadedKey<M>): KeyEntry<M> {
    const ttlEnd = this.options.clock.now() + this.options.ttlMs;
    const entry: KeyEntry<M> = Object.freeze({
      id,
      material: loaded.material,
      expiresAt: loaded.notAfter === undefined ? ttlEnd : Math.min(ttlEnd, loaded.notAfter),
      meta: loaded.meta,
    });
    this.entries.set(id, entry);
    return entry;
  }

  /** Drop (and zero) one key now, e.g. when it is disabled. */
  evict(id: string): void {
    this.epoch += 1;
    this.entries.delete(id);
  }

  /** Drop (and zero) every key whose metadata matches, e.g. all keys of an environment. */
  evictWhere(matches: (meta: M) => boolean): number {
    this.epoch += 1;
    const doomed = [...this.entries.values()].filter((entry) => matches(entry.meta)).map((entry) => entry.id);
    for (const id of doomed) this.entries.delete(id);
    return doomed.length;
  }

  /**
   * Drop and zero every expired key now. Lookups already refuse expired entries; sweeping also
   * wipes the material of keys nobody asks for again, so an expired key does not linger in memory.
   */
  sweep(): number {
    const now = this.options.clock.now();
    const expired = [...this.entries.values()].filter((entry) => entry.expiresAt <= now).map((entry) => entry.id);
    for (const id of expired) this.entries.delete(id);
    return expired.length;
  }

  /** Drop and zero every key (shutdown). */
  clear(): void {
    this.entries.clear();
  }

  stats(): KeyCacheStats {
    return { hits: this.hits, misses: this.misses, evictions: this.evictions, entries: this.entries.size };
  }

  private lookup(id: string, peek = false): KeyEntry<M> | undefined {
    const entry = peek ? this.entries.peek(id) : this.entries.get(id);
    if (entry && entry.expiresAt <= this.options.clock.now()) {
      this.entries.delete(id);
      return undefined;
    }
    return entry;
  }
}
