import type { ClientUsageDelta, Store } from '../../store/store.js';

/**
 * Per-client request counters and last-used time. Counting in the database on every request
 * would put a write on the hot path of every encrypt, so usage is summed in memory and added to
 * the stored counters in one batch every few seconds (and at shutdown). Readers add what is still
 * pending on this node (pending()), so a node always reports its own requests at once.
 */
export function createUsageTracker(deps: { readonly store: Pick<Store, 'recordClientUsage'>; readonly flushIntervalMs: number }) {
  let pending = new Map<string, { requests: number; failures: number; lastUsedAt: Date; lastUsedIp: string }>();
  let flushing: Promise<void> | undefined;

  async function flush(): Promise<void> {
    if (flushing) await flushing;
    if (pending.size === 0) return;
    const batch = pending;
    pending = new Map();
    const deltas: ClientUsageDelta[] = [...batch].map(([clientId, u]) => ({ clientId, ...u }));
    flushing = deps.store.recordClientUsage(deltas).then(
      () => undefined,
      () => {
        // Keep the counts for the next attempt rather than losing them while the store is down.
        for (const d of deltas) note(d.clientId, d.requests, d.failures, d.lastUsedAt, d.lastUsedIp);
      },
    );
    try {
      await flushing;
    } finally {
      flushing = undefined;
    }
  }

  function note(clientId: string, requests: number, failures: number, at: Date, ip: string): void {
    const current = pending.get(clientId);
    if (current === undefined) {
      pending.set(clientId, { requests, failures, lastUsedAt: at, lastUsedIp: ip });
      return;
    }
    current.requests += requests;
    current.failures += failures;
    if (at.getTime() >= current.lastUsedAt.getTime()) {
      current.lastUsedAt = at;
      current.lastUsedIp = ip;
    }
  }

  const timer = setInterval(() => void flush(), deps.flushIntervalMs);
  timer.unref();

  return {
    record(clientId: string, failed: boolean, at: Date, ip: string): void {
      note(clientId, 1, failed ? 1 : 0, at, ip);
    },
    pending(clientId: string): Readonly<{ requests: number; failures: number; lastUsedAt: Date; lastUsedIp: string }> | undefined {
      return pending.get(clientId);
    },
    flush,
    async close(): Promise<void> {
      clearInterval(timer);
      await flush();
    },
  };
}
export type UsageTracker = ReturnType<typeof createUsageTracker>;
