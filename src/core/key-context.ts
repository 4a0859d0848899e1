import { createHash } from 'node:crypto';

/** A key context: a flat object of string values that isolates vault objects from each other. */
export type KeyContext = Readonly<Record<string, string>>;

/**
 * The one canonical form of a key context: JSON with keys sorted by UTF-16 code units and no
 * whitespace. Two contexts with the same pairs in any order share one context key; any difference
 * in a key or value gives another key. Callers validate the shape (flat, strings) before this.
 */
export function canonicalContext(context: KeyContext): string {
  const sorted = Object.keys(context).sort();
  // Serialised pair by pair: an object rebuilt from the sorted entries would list integer-like keys
  // ("2", "10") first, in numeric order, whatever order they were inserted in.
  return `{${sorted.map((key) => `${JSON.stringify(key)}:${JSON.stringify(context[key])}`).join(',')}}`;
}

/** SHA-256 of the canonical context: the 32 bytes bound into every ciphertext made under it. */
export function contextDigest(context: KeyContext): Buffer {
  return createHash('sha256').update(canonicalContext(context), 'utf8').digest();
}
