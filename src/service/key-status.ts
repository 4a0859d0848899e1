import { KeystrataError } from '../errors.js';
import type { CmkRecord, KeyKind, KeyRecord, KeyState, Store } from '../store/store.js';
import type { Clock } from './clock.js';
import { effectiveKeyState } from './key-hierarchy.js';
import type { EnvironmentContext } from './workspaces.js';

export interface KeyStatus {
  readonly environment: { readonly id: string; readonly name: string };
  readonly cmk: { readonly id: string; readonly provider: string; readonly state: KeyState; readonly createdAt: Date };
  readonly ek: { readonly id: string; readonly state: KeyState; readonly createdAt: Date; readonly wrappingKeyVersion: string | null };
  readonly hourly: {
    readonly periodSeconds: number;
    readonly current: { readonly id: string; readonly hourStart: Date; readonly state: KeyState } | null;
    readonly latest: { readonly id: string; readonly hourStart: Date; readonly state: KeyState } | null;
  };
  readonly counts: Readonly<Record<KeyKind, number>>;
}

export type KeyStatusService = ReturnType<typeof createKeyStatusService>;

/** Read-only view of an environment's hierarchy; never creates keys and never touches a provider. */
export function createKeyStatusService(deps: {
  readonly store: Pick<Store, 'getActiveCmk' | 'getActiveEk' | 'getHourlyKey' | 'keyStats'>;
  readonly currentHourStart: () => number;
  readonly clock: Clock;
  readonly hourlyPeriodSeconds: number;
}) {
  const { store, clock, hourlyPeriodSeconds } = deps;

  function hourlyView(record: KeyRecord | undefined) {
    if (!record || record.hourStart === null) return null;
    return { id: record.id, hourStart: new Date(record.hourStart * 1000), state: effectiveKeyState(record, clock.now(), hourlyPeriodSeconds) };
  }

  async function cmkOf(environmentId: string): Promise<CmkRecord> {
    const cmk = await store.getActiveCmk(environmentId);
    if (!cmk) throw new KeystrataError('integrity_check_failed', 'The environment has no active CMK.');
    return cmk;
  }

  return {
    async status(env: EnvironmentContext): Promise<KeyStatus> {
      const environmentId = env.environment.id;
      const [cmk, ek, current, stats] = await Promise.all([
        cmkOf(environmentId),
        store.getActiveEk(environmentId),
        store.getHourlyKey(environmentId, deps.currentHourStart()),
        store.keyStats(environmentId),
      ]);
      if (!ek) throw new KeystrataError('integrity_check_failed', 'The environment has no active environment key.');
      return {
        environment: { id: environmentId, name: env.environment.name },
        cmk: { id: cmk.id, provider: cmk.provider, state: cmk.state, createdAt: cmk.createdAt },
        ek: { id: ek.id, state: ek.state, createdAt: ek.createdAt, wrappingKeyVersion: ek.wrappingKeyVersion },
        hourly: { periodSeconds: hourlyPeriodSeconds, current: hourlyView(current), latest: hourlyView(stats.latestHourly) },
        counts: stats.counts,
      };
    },
  };
}
