/**
 * What bench/repack-scale.ts and bench/lib/repack-full.ts share: timing, provider calls counted at
 * the registry and in the metrics, the admin's audit for a CMK change, and the check that records
 * sealed before a change still decrypt.
 */
import { newId } from '../../src/core/bytes.js';
import type { CmkProvider } from '../../src/providers/provider.js';
import { ADMIN_ACTOR, type ChangeAudit } from '../../src/service/audit/audit-event.js';
import type { Keystrata } from '../../src/service/keystrata.js';
import type { EnvironmentContext } from '../../src/service/workspaces.js';

export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

export function median(list: readonly number[]): number {
  const sorted = [...list].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Milliseconds as printed: whole numbers from 100 up, one decimal below. */
export const ms = (n: number): string => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1));

export interface Sealed {
  readonly ciphertext: string;
  readonly plaintext: string;
}

/** One provider call, as seen at the registry: the provider being tested/saved, or a stored CMK's. */
export interface Call {
  readonly who: 'new' | 'stored';
  readonly provider: string;
  readonly operation: 'wrap' | 'unwrap' | 'describe';
}

export const callText = (c: Call): string => `${c.who} ${c.provider} ${c.operation}`;

/** Logs every provider call the registry hands out from now on, in order. */
export function logProviderCalls(ks: Keystrata): Call[] {
  const log: Call[] = [];
  const registry = ks.providers;
  const logged = (provider: CmkProvider, who: Call['who']): CmkProvider => ({
    name: provider.name,
    wrap: (key, aad) => (log.push({ who, provider: provider.name, operation: 'wrap' }), provider.wrap(key, aad)),
    unwrap: (c, aad, v) => (log.push({ who, provider: provider.name, operation: 'unwrap' }), provider.unwrap(c, aad, v)),
    describe: () => (log.push({ who, provider: provider.name, operation: 'describe' }), provider.describe()),
    close: () => provider.close(),
  });
  const forCmk = registry.forCmk.bind(registry);
  const openConfig = registry.openConfig.bind(registry);
  registry.forCmk = (cmk) => logged(forCmk(cmk), 'stored');
  // forCmk opens stored CMKs through openConfig(…, sealed = true); only test-and-save opens clear configs.
  registry.openConfig = (name, config, identity, sealed = false) => (sealed ? openConfig(name, config, identity, true) : logged(openConfig(name, config, identity, false), 'new'));
  return log;
}

/** keystrata_provider_calls_total by provider and operation. */
export async function metricCalls(ks: Keystrata): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const line of (await ks.metrics.render()).split('\n')) {
    if (!line.startsWith('keystrata_provider_calls_total{')) continue;
    const op = /operation="([^"]+)"/.exec(line)?.[1];
    const provider = /provider="([^"]+)"/.exec(line)?.[1];
    counts.set(`${provider}:${op}`, (counts.get(`${provider}:${op}`) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return counts;
}

export function metricDelta(before: Map<string, number>, after: Map<string, number>): number {
  let total = 0;
  for (const [key, value] of after) total += value - (before.get(key) ?? 0);
  return total;
}

/** The audit entry the `PUT …/cmk` route writes for the admin. */
export function adminAudit(ks: Keystrata, workspaceId: string, action: string): ChangeAudit {
  return (details) =>
    ks.audit.forChange(
      {
        workspaceId,
        environmentId: details.environment?.environment.id ?? details.environmentId ?? null,
        actor: ADMIN_ACTOR,
        action,
        target: { ...details.target },
        sourceIp: '127.0.0.1',
        requestId: `bench-${newId()}`,
        outcome: 'success',
      },
      details.environment,
    );
}

export interface Verification {
  readonly failures: number;
  readonly ms: number;
  /** Provider unwraps the decrypts made (from a cold cache: 1, the EK). */
  readonly unwraps: number;
}

/** Every record decrypted and compared, from a cold key cache. `calls` is the registry's log (cleared here). */
export async function verifySealed(ks: Keystrata, env: EnvironmentContext, sealed: readonly Sealed[], calls: Call[]): Promise<Verification> {
  ks.cache.clear();
  calls.length = 0;
  const started = nowMs();
  let failures = 0;
  for (const s of sealed) {
    try {
      const { plaintext } = await ks.crypto.decrypt(env, s.ciphertext);
      if (plaintext.toString('utf8') !== s.plaintext) failures++;
    } catch {
      failures++;
    }
  }
  return { failures, ms: nowMs() - started, unwraps: calls.filter((c) => c.operation === 'unwrap').length };
}
