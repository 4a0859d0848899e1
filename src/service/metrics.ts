import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ProviderCallObserver } from '../providers/registry.js';

/**
 * Prometheus metrics, in a registry of their own (several apps can live in one test process).
 * Labels are bounded sets — route patterns, not URLs; reasons, not values — and nothing here is
 * ever a secret, a token, a key id or a tenant's data.
 */
export interface CacheStatsSource {
  stats(): { readonly hits: number; readonly misses: number; readonly evictions: number; readonly entries: number };
}

export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics(options: { readonly cache: CacheStatsSource; readonly defaultMetrics?: boolean }) {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'keystrata_' });
  const registers = [registry];

  const httpRequests = new Counter({
    name: 'keystrata_http_requests_total',
    help: 'HTTP requests by route pattern, method and status.',
    labelNames: ['method', 'route', 'status'] as const,
    registers,
  });
  const httpDuration = new Histogram({
    name: 'keystrata_http_request_duration_seconds',
    help: 'HTTP request latency by route pattern and method.',
    labelNames: ['method', 'route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const providerCalls = new Counter({
    name: 'keystrata_provider_calls_total',
    help: 'CMK provider calls by provider, operation (wrap, unwrap, describe) and outcome (ok, or the failure reason).',
    labelNames: ['provider', 'operation', 'outcome'] as const,
    registers,
  });
  const providerDuration = new Histogram({
    name: 'keystrata_provider_call_duration_seconds',
    help: 'CMK provider call latency.',
    labelNames: ['provider', 'operation'] as const,
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const authFailures = new Counter({
    name: 'keystrata_auth_failures_total',
    help: 'Rejected credentials by reason.',
    labelNames: ['reason'] as const,
    registers,
  });
  const rateLimited = new Counter({
    name: 'keystrata_rate_limited_total',
    help: 'Requests refused with 429, by limit (client: per-client rate; auth_failures: per-address failed logins).',
    labelNames: ['limit'] as const,
    registers,
  });
  const auditEntries = new Counter({
    name: 'keystrata_audit_entries_total',
    help: 'Audit entries written, by outcome of the recorded action.',
    labelNames: ['outcome'] as const,
    registers,
  });
  const auditWriteFailures = new Counter({
    name: 'keystrata_audit_write_failures_total',
    help: 'Requests refused because their audit entry could not be written.',
    registers,
  });

  // Key cache: read from the cache's own counters at scrape time.
  type CacheStats = ReturnType<CacheStatsSource['stats']>;
  const cacheTotal = (name: string, help: string, pick: (s: CacheStats) => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(pick(options.cache.stats()));
      },
    });
  cacheTotal('keystrata_key_cache_hits_total', 'Key cache hits.', (s) => s.hits);
  cacheTotal('keystrata_key_cache_misses_total', 'Key cache misses (each one loads a key from the store, and an EK from its CMK provider).', (s) => s.misses);
  cacheTotal('keystrata_key_cache_evictions_total', 'Keys evicted from the cache (and zeroed) to stay within its size.', (s) => s.evictions);
  new Gauge({
    name: 'keystrata_key_cache_entries',
    help: 'Plaintext keys in the cache now.',
    registers,
    collect() {
      this.set(options.cache.stats().entries);
    },
  });

  const cmkHealthChanges = new Counter({
    name: 'keystrata_cmk_health_changes_total',
    help: 'Customer CMK health state changes seen by the probe, by provider and new state.',
    labelNames: ['provider', 'state'] as const,
    registers,
  });
  // The latest state of every probed CMK, counted per provider and state at scrape time.
  const cmkStates = new Map<string, { provider: string; state: string }>();
  new Gauge({
    name: 'keystrata_cmk_health',
    help: 'Customer CMKs by provider and current health state (healthy, key_disabled, unreachable …).',
    labelNames: ['provider', 'state'] as const,
    registers,
    collect() {
      this.reset();
      for (const { provider, state } of cmkStates.values()) this.inc({ provider, state });
    },
  });

  const repackKeys = new Counter({
    name: 'keystrata_repack_keys_total',
    help: 'Keys re-wrapped under a new environment key by repacks on this node.',
    registers,
  });
  const repackBatches = new Counter({
    name: 'keystrata_repack_batches_total',
    help: 'Repack batches on this node, by outcome (applied, paused: a CMK or key could not be used).',
    labelNames: ['outcome'] as const,
    registers,
  });

  const observeProviderCall: ProviderCallObserver = (provider, operation, outcome, seconds) => {
    providerCalls.inc({ provider, operation, outcome });
    providerDuration.observe({ provider, operation }, seconds);
  };

  return {
    registry,
    observeProviderCall,
    httpRequest(method: string, route: string, status: number, seconds: number): void {
      httpRequests.inc({ method, route, status: String(status) });
      httpDuration.observe({ method, route }, seconds);
    },
    /** A probe result; `changed` when the CMK entered this state now. */
    cmkHealth(cmkId: string, provider: string, state: string, changed: boolean): void {
      cmkStates.set(cmkId, { provider, state });
      if (changed) cmkHealthChanges.inc({ provider, state });
    },
    repackBatch(outcome: 'applied' | 'paused', keys: number): void {
      repackBatches.inc({ outcome });
      if (keys > 0) repackKeys.inc(keys);
    },
    authFailure(reason: string): void {
      authFailures.inc({ reason });
    },
    rateLimited(limit: 'client' | 'auth_failures'): void {
      rateLimited.inc({ limit });
    },
    auditEntry(outcome: 'success' | 'failure'): void {
      auditEntries.inc({ outcome });
    },
    auditWriteFailure(): void {
      auditWriteFailures.inc();
    },
    /** Prometheus text exposition. */
    render(): Promise<string> {
      return registry.metrics();
    },
    contentType: registry.contentType,
  };
}
