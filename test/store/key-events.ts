/** Helpers for watchKeyStates tests: recording events, waiting for one, knowing a store is listening. */
import type { EnvironmentRecord, KeyStateEvent, Store } from '../../src/store/store.js';
import { key } from './fixtures.js';

export interface EventRecorder {
  readonly events: KeyStateEvent[];
  readonly listener: (event: KeyStateEvent) => void;
  /** The first recorded event matching `match`, waiting up to `timeoutMs` for it; rejects after. */
  waitFor(match: (event: KeyStateEvent) => boolean, timeoutMs?: number): Promise<KeyStateEvent>;
}

export function recorder(): EventRecorder {
  const events: KeyStateEvent[] = [];
  return {
    events,
    listener: (event) => {
      events.push(event);
    },
    async waitFor(match, timeoutMs = 1_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = events.find(match);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no matching key state event within ${timeoutMs} ms (got ${JSON.stringify(events)})`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
  };
}

/**
 * Waits until `watcher` delivers changes made through `changer` (PostgreSQL listens on a session
 * that opens after the first subscription, and again after a reconnect): a probe key of `env` is
 * flipped between active and disabled until an event for it arrives. Returns how long it took.
 */
export async function untilDelivered(watcher: Store, changer: Store, env: EnvironmentRecord, timeoutMs = 5_000): Promise<number> {
  const probe = await changer.insertKeyIfAbsent(key(env.id, 'connection', { scopeId: `probe-${Date.now()}-${Math.random()}` }));
  const seen = recorder();
  const unsubscribe = watcher.watchKeyStates(seen.listener);
  const started = Date.now();
  try {
    let state: 'active' | 'disabled' = 'active';
    for (;;) {
      const next: 'active' | 'disabled' = state === 'active' ? 'disabled' : 'active';
      await changer.setKeyState({ environmentId: env.id, keyId: probe.id, from: [state], to: next });
      state = next;
      try {
        await seen.waitFor((e) => e.keyId === probe.id, 100);
        return Date.now() - started;
      } catch (error) {
        if (Date.now() - started > timeoutMs) throw error;
      }
    }
  } finally {
    unsubscribe();
  }
}
