import type { ClientUsageDelta } from './store.js';

/**
 * One delta per client from a batch that may name a client several times: counts summed, the
 * newest use kept (on a tie, the later delta's address), in client id order. A client must appear
 * once: a PostgreSQL UPDATE … FROM applies only one of several matching source rows.
 */
export function mergeUsageDeltas(deltas: readonly ClientUsageDelta[]): ClientUsageDelta[] {
  const merged = new Map<string, ClientUsageDelta>();
  for (const d of deltas) {
    const seen = merged.get(d.clientId);
    if (!seen) {
      merged.set(d.clientId, d);
      continue;
    }
    const newer = d.lastUsedAt.getTime() >= seen.lastUsedAt.getTime() ? d : seen;
    merged.set(d.clientId, {
      clientId: d.clientId,
      requests: seen.requests + d.requests,
      failures: seen.failures + d.failures,
      lastUsedAt: newer.lastUsedAt,
      lastUsedIp: newer.lastUsedIp,
    });
  }
  return [...merged.values()].sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0));
}
