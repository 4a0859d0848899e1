import { describe, expect, it } from 'vitest';
import { LruMap } from '../../src/service/lru-map.js';

describe('LruMap (second-chance eviction)', () => {
  it('never holds more than maxEntries and reports every eviction', () => {
    const evicted: string[] = [];
    const map = new LruMap<string, number>(3, (_value, key) => evicted.push(key));
    for (const key of ['a', 'b', 'c', 'd', 'e']) map.set(key, 1);
    expect(map.size).toBe(3);
    expect(evicted).toEqual(['a', 'b']);
  });

  it('keeps a recently read entry over an unread older one', () => {
    const map = new LruMap<string, number>(3);
    map.set('a', 1);
    map.set('b', 2);
    map.set('c', 3);
    expect(map.get('a')).toBe(1);
    map.set('d', 4);
    expect(map.get('a')).toBe(1);
    expect(map.get('b')).toBeUndefined();
  });

  it('evicts even when every entry was recently read', () => {
    const evicted: string[] = [];
    const map = new LruMap<string, number>(2, (_value, key) => evicted.push(key));
    map.set('a', 1);
    map.set('b', 2);
    map.get('a');
    map.get('b');
    map.set('c', 3);
    expect(map.size).toBe(2);
    expect(evicted).toEqual(['a']);
  });

  it('calls onEvict for delete, clear and replaced values', () => {
    const evicted: number[] = [];
    const map = new LruMap<string, number>(10, (value) => evicted.push(value));
    map.set('a', 1);
    map.set('a', 2);
    map.set('b', 3);
    expect(map.delete('b')).toBe(true);
    expect(map.delete('b')).toBe(false);
    map.clear();
    expect(evicted).toEqual([1, 3, 2]);
    expect(map.size).toBe(0);
  });
});
