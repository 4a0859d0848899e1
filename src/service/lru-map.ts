/**
 * A Map bounded to `maxEntries` that evicts approximately least-recently-used entries (the CLOCK
 * / second-chance policy): a hit only sets a flag, and eviction walks from the oldest entry,
 * giving flagged entries one more round. Exact LRU would re-insert the key on every hit, which
 * costs more on the hot path than the cache saves.
 *
 * `onEvict` sees every value that leaves the map by eviction, delete or clear, so owners of secret
 * values can wipe them.
 */
export class LruMap<K, V> {
  private readonly map = new Map<K, { value: V; referenced: boolean }>();

  constructor(
    private readonly maxEntries: number,
    private readonly onEvict: (value: V, key: K) => void = () => {},
  ) {
    if (maxEntries < 1) throw new RangeError('maxEntries must be at least 1');
  }

  get size(): number {
    return this.map.size;
  }

  /** The value, marked as recently used. */
  get(key: K): V | undefined {
    const slot = this.map.get(key);
    if (slot === undefined) return undefined;
    slot.referenced = true;
    return slot.value;
  }

  /** The value, without marking it as used (for a caller that just inserted it). */
  peek(key: K): V | undefined {
    return this.map.get(key)?.value;
  }

  set(key: K, value: V): void {
    const previous = this.map.get(key);
    if (previous !== undefined) {
      this.map.delete(key);
      if (previous.value !== value) this.onEvict(previous.value, key);
    }
    // Make room first, so the entry being added can never be the one evicted.
    if (this.map.size >= this.maxEntries) this.evictOne();
    this.map.set(key, { value, referenced: false });
  }

  /** A snapshot-free walk over [key, value] (does not mark entries as used). */
  *entries(): IterableIterator<[K, V]> {
    for (const [key, slot] of this.map) yield [key, slot.value];
  }

  delete(key: K): boolean {
    const slot = this.map.get(key);
    if (slot === undefined) return false;
    this.map.delete(key);
    this.onEvict(slot.value, key);
    return true;
  }

  clear(): void {
    for (const [key, slot] of this.map) this.onEvict(slot.value, key);
    this.map.clear();
  }

  values(): IterableIterator<V> {
    const slots = this.map.values();
    return (function* () {
      for (const slot of slots) yield slot.value;
    })();
  }

  private evictOne(): void {
    // Terminates: a Map iterator also visits entries re-inserted during the walk, and those come
    // back with their flag cleared.
    for (const [key, slot] of this.map) {
      if (!slot.referenced) {
        this.delete(key);
        return;
      }
      // Second chance: move to the newest end with the flag cleared.
      slot.referenced = false;
      this.map.delete(key);
      this.map.set(key, slot);
    }
  }
}
