/**
 * The watchKeyStates listeners of one store, and the wire form of a key state event that
 * PostgreSQL nodes send each other (NOTIFY payload).
 */
import { isKeyState } from './rows.js';
import type { KeyStateEvent } from './store.js';

export type KeyStateListener = (event: KeyStateEvent) => void;

/** A set of listeners; one that throws is skipped, so it can neither fail the store call nor starve the others. */
export class KeyStateListeners {
  readonly #listeners = new Set<KeyStateListener>();

  get size(): number {
    return this.#listeners.size;
  }

  /** Adds the listener; the returned function removes it (calling it again does nothing). */
  add(listener: KeyStateListener): () => void {
    if (typeof listener !== 'function') throw new TypeError('store precondition: a key state listener must be a function');
    // Wrapped, so that the same function subscribed twice is two subscriptions with their own unsubscribe.
    const entry: KeyStateListener = (event) => listener(event);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  emit(event: KeyStateEvent): void {
    const frozen = Object.freeze({ environmentId: event.environmentId, keyId: event.keyId, state: event.state });
    // A copy: a listener may unsubscribe (itself or another) while it is being told.
    for (const listener of [...this.#listeners]) {
      try {
        listener(frozen);
      } catch {
        // The change is committed whatever a listener does; its failure is its own to report.
      }
    }
  }
}

/** The NOTIFY payload: short keys, as every node of the database receives every change. */
export function encodeKeyStateEvent(event: KeyStateEvent): string {
  return JSON.stringify({ e: event.environmentId, k: event.keyId, s: event.state });
}

/** The event in a NOTIFY payload, or undefined if it is not one (another sender on the channel, a newer format). */
export function decodeKeyStateEvent(payload: string | undefined): KeyStateEvent | undefined {
  if (payload === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { e, k, s } = parsed as Record<string, unknown>;
  if (typeof e !== 'string' || e === '' || typeof k !== 'string' || k === '' || !isKeyState(s)) return undefined;
  return { environmentId: e, keyId: k, state: s };
}
