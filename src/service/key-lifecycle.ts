import { contextDigest, type KeyContext } from '../core/key-context.js';
import { KeystrataError, invalidRequest } from '../errors.js';
import { EVERY_ENVIRONMENT, type KeyRecord, type KeyState, type KeyStateEvent, type Store } from '../store/store.js';
import type { ChangeAudit } from './audit/audit-event.js';
import { systemChangeEntry } from './audit/system-change.js';
import type { AuditLog } from './audit/audit-log.js';
import type { Clock } from './clock.js';
import type { KeyCache } from './key-cache.js';
import { effectiveKeyState, type KeyMeta } from './key-hierarchy.js';
import type { EnvironmentContext } from './workspaces.js';

/**
 * Key lifecycle below the CMK (DESIGN §1, §5): disable (reversible), schedule destruction with a
 * waiting period (cancellable), destruction (the wrapped material erased from its row — everything
 * encrypted under the key, and under every key below it, is lost), and crypto-shredding of a key
 * context or a whole environment, which is the destruction of its context key or EK.
 *
 * Every change is a compare-and-set in the store with its audit entry in the same transaction, and
 * is announced to every node (watchKeyStates); on one that takes a key out of use each node drops the
 * environment's cached keys,
 * so a disable or destroy bites everywhere within the notification delay, not after the cache TTL.
 */

export interface KeyView {
  readonly id: string;
  readonly kind: KeyRecord['kind'];
  readonly scopeId: string | null;
  readonly parentId: string;
  readonly state: KeyState;
  readonly createdAt: Date;
  /** When a key scheduled for destruction will be destroyed. */
  readonly destroyAt: Date | null;
}

export interface KeyLifecycleDeps {
  readonly store: Pick<Store, 'getKey' | 'getActiveEk' | 'findScopedKey' | 'setKeyState' | 'listDueDestructions' | 'watchKeyStates' | 'getEnvironment' | 'getRepack'>;
  readonly cache: Pick<KeyCache<KeyMeta>, 'evictWhere'>;
  readonly audit: Pick<AuditLog, 'forChange'>;
  readonly clock: Clock;
  readonly hourlyPeriodSeconds: number;
  /** Default waiting period before a scheduled destruction happens. */
  readonly defaultWaitingDays: number;
}

export const MIN_WAITING_DAYS = 1;
export const MAX_WAITING_DAYS = 365;
const DAY_MS = 86_400_000;

export type KeyLifecycle = ReturnType<typeof createKeyLifecycle>;

export function createKeyLifecycle(deps: KeyLifecycleDeps) {
  const { store, cache, clock } = deps;

  const view = (record: KeyRecord): KeyView => ({
    id: record.id,
    kind: record.kind,
    scopeId: record.scopeId,
    parentId: record.parentId,
    state: effectiveKeyState(record, clock.now(), deps.hourlyPeriodSeconds),
    createdAt: record.createdAt,
    destroyAt: record.destroyAt ?? null,
  });

  const forgetEnvironment = (environmentId: string): void => {
    cache.evictWhere((meta) => environmentId === EVERY_ENVIRONMENT || meta.environmentId === environmentId);
  };
  // Changes from every node, this one included, that take a key out of use drop the environment's
  // cached keys here. A key becoming active (enabled) or decrypt-only (an EK retired by a rotation, a
  // retired log key) leaves every cached key as usable as it was: the old EK keeps serving the keys
  // its repack has not moved yet without another call to its CMK.
  const REVOKING: ReadonlySet<KeyState> = new Set<KeyState>(['disabled', 'scheduled-destruction', 'destroyed']);
  const unsubscribe = store.watchKeyStates((event: KeyStateEvent) => {
    if (event.environmentId === EVERY_ENVIRONMENT || REVOKING.has(event.state)) forgetEnvironment(event.environmentId);
  });

  /** The environment's EKs that are not destroyed or scheduled for destruction: the active one and a repack's two. */
  async function liveEnvironmentKeys(environmentId: string): Promise<KeyRecord[]> {
    const ids = new Set<string>();
    const active = await store.getActiveEk(environmentId);
    if (active) ids.add(active.id);
    const repack = await store.getRepack(environmentId);
    if (repack && repack.state !== 'done') {
      ids.add(repack.fromEkId);
      ids.add(repack.toEkId);
    }
    const keys = await Promise.all([...ids].map((id) => store.getKey(environmentId, id)));
    return keys.filter((key): key is KeyRecord => key !== undefined && key.state !== 'destroyed' && key.state !== 'scheduled-destruction');
  }

  async function requireKey(env: EnvironmentContext, keyId: string): Promise<KeyRecord> {
    const record = await store.getKey(env.environment.id, keyId);
    if (!record) throw new KeystrataError('key_not_found', `No key ${keyId} in this environment.`);
    return record;
  }

  /**
   * Log keys seal the environment's audit entries: disabling or destroying one through the API
   * would let an admin make the record of their own actions unreadable. They are retired by
   * rotation (KEYSTRATA_LOG_KEY_ROTATION_DAYS); shredding the whole environment still destroys them.
   */
  function refuseLogKey(record: KeyRecord): KeyRecord {
    if (record.kind === 'log') {
      throw new KeystrataError('key_state_conflict', 'Log keys seal the audit log: they are retired by rotation, not disabled or destroyed one by one.', {
        details: { state: record.state },
      });
    }
    return record;
  }

  /**
   * The state an enabled key returns to. An EK is decided by its role, not by the order in which
   * keys are enabled: the EK a rotation retired (the repack's fromEk) and any EK while another is
   * active go back to decrypt-only; only the environment's current EK becomes active again.
   */
  async function enabledState(env: EnvironmentContext, record: KeyRecord): Promise<KeyState> {
    if (record.kind !== 'ek') return 'active';
    const repack = await store.getRepack(env.environment.id);
    if (repack && repack.state !== 'done' && repack.fromEkId === record.id) return 'decrypt-only';
    const active = await store.getActiveEk(env.environment.id);
    return active !== undefined && active.id !== record.id ? 'decrypt-only' : 'active';
  }

  function waitingDays(days: number | undefined): number {
    const value = days ?? deps.defaultWaitingDays;
    if (!Number.isInteger(value) || value < MIN_WAITING_DAYS || value > MAX_WAITING_DAYS) {
      throw invalidRequest('waitingPeriodDays', `waitingPeriodDays must be an integer from ${MIN_WAITING_DAYS} to ${MAX_WAITING_DAYS}.`);
    }
    return value;
  }

  /** Apply a transition; a key not in one of `from` states gets a clear 409 naming its state. */
  async function transition(
    env: EnvironmentContext,
    record: KeyRecord,
    from: readonly KeyState[],
    to: KeyState,
    audit: ChangeAudit,
    extra: { destroyAt?: Date; target?: Record<string, string> } = {},
  ): Promise<KeyView> {
    // Sealed under the workspace audit key, not the environment's log key: the record of who
    // disabled or destroyed a key must survive the destruction (of an EK, or anything above the
    // log key) it records.
    const entry = await audit({
      environmentId: env.environment.id,
      target: { keyId: record.id, kind: record.kind, from: record.state, to, ...(record.scopeId === null ? {} : { scopeId: record.scopeId }), ...extra.target },
    });
    const updated = await store.setKeyState({ environmentId: env.environment.id, keyId: record.id, from, to, destroyAt: extra.destroyAt ?? null }, entry);
    if (!updated) {
      const now = await store.getKey(env.environment.id, record.id);
      throw new KeystrataError('key_state_conflict', `Key ${record.id} is ${now?.state ?? 'gone'}; it cannot become ${to} from there.`, {
        details: { state: now?.state ?? null },
      });
    }
    forgetEnvironment(env.environment.id);
    return view(updated);
  }

  async function scheduleDestruction(env: EnvironmentContext, record: KeyRecord, days: number | undefined, audit: ChangeAudit, target: Record<string, string> = {}) {
    const wait = waitingDays(days);
    const destroyAt = new Date(clock.now() + wait * DAY_MS);
    return transition(env, record, ['active', 'decrypt-only', 'disabled'], 'scheduled-destruction', audit, {
      destroyAt,
      target: { ...target, waitingPeriodDays: String(wait), destroyAt: destroyAt.toISOString() },
    });
  }

  return {
    async get(env: EnvironmentContext, keyId: string): Promise<KeyView> {
      return view(await requireKey(env, keyId));
    },

    /** Reversible: the key (and everything below it) refuses use until enabled. */
    async disable(env: EnvironmentContext, keyId: string, audit: ChangeAudit): Promise<KeyView> {
      return transition(env, refuseLogKey(await requireKey(env, keyId)), ['active', 'decrypt-only'], 'disabled', audit);
    },

    async enable(env: EnvironmentContext, keyId: string, audit: ChangeAudit): Promise<KeyView> {
      const record = await requireKey(env, keyId);
      return transition(env, record, ['disabled'], await enabledState(env, record), audit);
    },

    /** The key stops working now and is destroyed after the waiting period unless cancelled. */
    async scheduleDestruction(env: EnvironmentContext, keyId: string, days: number | undefined, audit: ChangeAudit): Promise<KeyView> {
      return scheduleDestruction(env, refuseLogKey(await requireKey(env, keyId)), days, audit);
    },

    /** Back to disabled (not active): re-enabling is a separate, deliberate step. */
    async cancelDestruction(env: EnvironmentContext, keyId: string, audit: ChangeAudit): Promise<KeyView> {
      return transition(env, await requireKey(env, keyId), ['scheduled-destruction'], 'disabled', audit);
    },

    /** Crypto-shred a key context: its context key is scheduled for destruction (all objects, all versions). */
    async shredContext(env: EnvironmentContext, context: KeyContext, days: number | undefined, audit: ChangeAudit): Promise<KeyView> {
      const record = await store.findScopedKey(env.environment.id, 'context', contextDigest(context).toString('hex'));
      if (!record) throw new KeystrataError('key_not_found', 'No object in this environment was ever stored under that key context.');
      return scheduleDestruction(env, record, days, audit, { shred: 'context' });
    },

    /** Crypto-shred a whole environment: its environment key is scheduled for destruction. */
    async shredEnvironment(env: EnvironmentContext, days: number | undefined, audit: ChangeAudit): Promise<KeyView> {
      const ek = await store.getActiveEk(env.environment.id);
      if (!ek) {
        throw new KeystrataError('key_state_conflict', 'The environment key is not active (disabled, already scheduled for destruction, or destroyed).', {
          details: { state: null },
        });
      }
      const view = await scheduleDestruction(env, ek, days, audit, { shred: 'environment' });
      // Every EK of the environment that still works goes too: mid-repack the old one (keys not yet
      // moved would escape the shred), and the new one if a rotation committed between the read
      // above and the change (then the EK just scheduled was already the old one). Looked at again
      // until nothing is left, since a rotation can still be racing the first look.
      for (let round = 0; round < 3; round++) {
        const alive = await liveEnvironmentKeys(env.environment.id);
        if (alive.length === 0) break;
        for (const key of alive) {
          await scheduleDestruction(env, key, days, audit, { shred: 'environment' }).catch((error: unknown) => {
            // Changed meanwhile (destroyed by a finished repack, scheduled by a concurrent shred).
            if (!(error instanceof KeystrataError && error.code === 'key_state_conflict')) throw error;
          });
        }
      }
      return view;
    },

    /**
     * Destroy every key whose waiting period is over. Safe on many nodes at once: each destruction
     * is a compare-and-set, so exactly one node applies it (and writes its audit entry).
     */
    async destroyDue(): Promise<number> {
      let destroyed = 0;
      for (;;) {
        const due = await store.listDueDestructions(new Date(clock.now()), 100);
        let applied = 0;
        for (const record of due) {
          const entry = await systemChangeEntry(
            { store, audit: deps.audit },
            record.environmentId,
            'key.destroy',
            { keyId: record.id, kind: record.kind, ...(record.scopeId === null ? {} : { scopeId: record.scopeId }) },
            'scheduler',
          );
          const updated = await store.setKeyState(
            { environmentId: record.environmentId, keyId: record.id, from: ['scheduled-destruction'], to: 'destroyed' },
            entry ?? undefined,
          );
          if (updated) {
            applied++;
            forgetEnvironment(record.environmentId);
          }
        }
        destroyed += applied;
        if (due.length < 100 || applied === 0) return destroyed;
      }
    },

    close(): void {
      unsubscribe();
    },
  };
}
