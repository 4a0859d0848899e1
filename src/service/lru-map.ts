/**
 * A Map bounded to `maxEntries`, dropping the least recently used entry first. `onEvict` sees
 * every value that leaves the map by eviction, delete or clear, so owners of secret values can
 * wipe them.
 */
export class LruMap<K, V> {
  private readonly map = new Map<K, V>();

  constructor(
    private readonly maxEntries: number,
    private readonly onEvict: (value: V, key: K) => void = () => {},
  ) {
    if (maxEntries < 1) throw new RangeError('maxEntries must be at least 1');
  }

  get size(): number {
    return this.map.size;
  }

  /** The value, marked most recently used. */
  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      // Map keeps insertion order: re-inserting moves the key to the "newest" end.
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    const previous = this.map.get(key);
    if (previous !== undefined) {
      this.map.delete(key);
      if (previous !== value) this.onEvict(previous, key);
    }
    this.map.set(key, value);
    while (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      this.delete(oldest.value);
    }
  }

  delete(key: K): boolean {
    const value = this.map.get(key);
    if (value === undefined) return false;
    this.map.delete(key);
    this.onEvict(value, key);
    return true;
  }

  clear(): void {
    for (const [key, value] of this.map) this.onEvict(value, key);
    this.map.clear();
  }

  values(): IterableIterator<V> {
    return this.map.values();
  }
}
