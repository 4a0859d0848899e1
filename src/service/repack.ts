import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { zeroize } from '../core/bytes.js';
import { unwrapKey, wrapKey } from '../core/wrapped-key.js';
import { KeystrataError } from '../errors.js';
import type { KeyRecord, RepackRecord, RepackedKey, Store } from '../store/store.js';
import { systemChangeEntry } from './audit/system-change.js';
import type { AuditLog } from './audit/audit-log.js';
import type { Clock } from './clock.js';
import type { KeyHierarchy } from './key-hierarchy.js';
import type { Metrics } from './metrics.js';

/**
 * The repack of DESIGN §5: after `PUT …/cmk` with `rotateEnvironmentKey`, every key directly under
 * the old environment key (hourly, connection, log and context keys) is re-wrapped under the new
 * one, in batches, each batch one transaction. Job keys and data keys hang below those and are not
 * touched: their parents keep their ids and material, only the wrapping changes.
 *
 * Safe to kill at any moment: a batch is a compare-and-set (parent still the old EK, wrapped bytes
 * unchanged), so a batch that did not commit is simply done again, and one that did is not found
 * again (only keys still under the old EK are listed). Every key is readable throughout: a key
 * names its parent, and the old EK stays readable (its CMK decrypt-only) until no key is under it;
 * only then is it destroyed, in the transaction that marks the repack done.
 *
 * One node works on repacks at a time (store.runExclusive, a PostgreSQL advisory lock that dies
 * with its session); every node looks for unfinished ones on every tick, so a repack whose node
 * died is taken over within `intervalSeconds`.
 */

export interface RepackerDeps {
  readonly store: Pick<Store, 'listUnfinishedRepacks' | 'listKeysUnder' | 'applyRepackBatch' | 'setRepackPaused' | 'finishRepack' | 'getEnvironment' | 'getRepack'>;
  readonly hierarchy: Pick<KeyHierarchy, 'withKeyById'>;
  readonly audit: Pick<AuditLog, 'forChange'>;
  readonly clock: Clock;
  readonly batchSize: number;
  /** Pause between batches (bounds the load of a large repack on the database). */
  readonly batchPauseMs: number;
  /** Names this node in the repack row (operators see who is working on it). */
  readonly runner?: string;
  readonly metrics?: Pick<Metrics, 'repackBatch'>;
}

/** What `GET …/cmk` and `keystrata repack status` show. */
export interface RepackView {
  readonly id: string;
  readonly state: RepackRecord['state'];
  readonly done: number;
  readonly total: number;
  /** Keys per second since the repack started (null before the first batch). */
  readonly ratePerSecond: number | null;
  /** Seconds left at that rate (null when paused, done, or not yet known). */
  readonly etaSeconds: number | null;
  readonly startedAt: Date;
  readonly updatedAt: Date;
  readonly finishedAt: Date | null;
  readonly pausedReason: string | null;
  readonly fromCmkId: string;
  readonly toCmkId: string;
  readonly fromEkId: string;
  readonly toEkId: string;
}

export function repackView(record: RepackRecord): RepackView {
  const elapsedSeconds = (record.updatedAt.getTime() - record.startedAt.getTime()) / 1000;
  const ratePerSecond = record.done > 0 && elapsedSeconds > 0 ? Math.round((record.done / elapsedSeconds) * 10) / 10 : null;
  const remaining = Math.max(0, record.total - record.done);
  const etaSeconds = record.state === 'running' && ratePerSecond !== null ? Math.ceil(remaining / ratePerSecond) : null;
  return {
    id: record.id,
    state: record.state,
    // Keys created under the old EK in the instant before it was retired are moved too: done can
    // pass the count taken at the start, which is shown as the total then.
    done: record.done,
    total: Math.max(record.total, record.done),
    ratePerSecond,
    etaSeconds: record.state === 'done' ? 0 : etaSeconds,
    startedAt: record.startedAt,
    updatedAt: record.updatedAt,
    finishedAt: record.finishedAt,
    pausedReason: record.pausedReason,
    fromCmkId: record.fromCmkId,
    toCmkId: record.toCmkId,
    fromEkId: record.fromEkId,
    toEkId: record.toEkId,
  };
}

export type Repacker = ReturnType<typeof createRepacker>;

/** Why a repack cannot go on, in words an operator can act on (never a secret). */
function pauseReason(which: 'old' | 'new', error: unknown): string {
  const side = which === 'old' ? 'The old environment key (through the old CMK)' : 'The new environment key (through the new CMK)';
  if (error instanceof KeystrataError) return `${side} cannot be used: ${error.message} The repack resumes by itself when it can.`;
  return `${side} cannot be used (unexpected error). The repack resumes by itself when it can.`;
}

export function createRepacker(deps: RepackerDeps) {
  const { store, hierarchy, clock } = deps;
  const runner = deps.runner ?? `${hostname()}:${process.pid}`;
  let stopping = false;
  let running: Promise<number> | undefined;

  /** A copy of an EK's material (the caller zeroes it), or the reason it cannot be had. */
  async function ekMaterial(environmentId: string, ekId: string): Promise<Buffer> {
    return hierarchy.withKeyById(environmentId, ekId, (key) => Buffer.from(key.material));
  }

  /** Re-wrap one batch in memory; the returned wrapped keys hold no secret. */
  function rewrap(repack: RepackRecord, keys: readonly KeyRecord[], oldEk: Buffer, newEk: Buffer): RepackedKey[] | { readonly badKey: KeyRecord } {
    const moved: RepackedKey[] = [];
    for (const key of keys) {
      // A destroyed key has nothing to re-wrap; it moves with its (empty) bytes and stays destroyed.
      if (key.wrapped.length === 0) {
        moved.push({ id: key.id, expectedWrapped: key.wrapped, wrapped: key.wrapped });
        continue;
      }
      const binding = { environmentId: repack.environmentId, keyId: key.id, kind: key.kind };
      const material = unwrapKey(oldEk, key.wrapped, { ...binding, parentId: repack.fromEkId });
      if (!material) return { badKey: key };
      try {
        moved.push({ id: key.id, expectedWrapped: key.wrapped, wrapped: wrapKey(newEk, material, { ...binding, parentId: repack.toEkId }) });
      } finally {
        zeroize(material);
      }
    }
    return moved;
  }

  async function pause(repack: RepackRecord, reason: string): Promise<void> {
    deps.metrics?.repackBatch('paused', 0);
    if (repack.state === 'paused' && repack.pausedReason === reason) return;
    await store.setRepackPaused(repack.id, reason, runner, new Date(clock.now()));
  }

  /** Sealed under the workspace audit key: it records the destruction of an environment key. */
  function finishAudit(repack: RepackRecord) {
    const target = { repackId: repack.id, fromEkId: repack.fromEkId, toEkId: repack.toEkId, keys: String(repack.done) };
    return systemChangeEntry({ store, audit: deps.audit }, repack.environmentId, 'repack.finish', target, 'repack');
  }

  /** Work on one repack until it is done, paused, or this node is stopping. */
  async function work(initial: RepackRecord): Promise<RepackRecord> {
    let repack = initial;
    while (!stopping) {
      const keys = await store.listKeysUnder(repack.environmentId, repack.fromEkId, deps.batchSize);
      if (keys.length === 0) {
        const finished = await store.finishRepack(repack.id, new Date(clock.now()), await finishAudit(repack));
        if (finished) return finished;
        // A key slipped in under the old EK, or the repack is no longer unfinished: look again.
        const now = await store.getRepack(repack.environmentId);
        if (!now || now.id !== repack.id || now.state === 'done') return now ?? repack;
        continue;
      }
      let oldEk: Buffer | undefined;
      let newEk: Buffer | undefined;
      try {
        try {
          oldEk = await ekMaterial(repack.environmentId, repack.fromEkId);
        } catch (error) {
          await pause(repack, pauseReason('old', error));
          return repack;
        }
        try {
          newEk = await ekMaterial(repack.environmentId, repack.toEkId);
        } catch (error) {
          await pause(repack, pauseReason('new', error));
          return repack;
        }
        const moved = rewrap(repack, keys, oldEk, newEk);
        if (!Array.isArray(moved)) {
          const bad = 'badKey' in moved ? moved.badKey : undefined;
          // Never guess with a key that fails its integrity check: stop, keep everything as it is.
          await pause(repack, `Key ${bad?.id ?? '?'} (${bad?.kind ?? '?'}) failed its integrity check under the old environment key; the repack is stopped so that nothing is lost. See docs/operations.md.`);
          return repack;
        }
        const applied = await store.applyRepackBatch({
          repackId: repack.id,
          environmentId: repack.environmentId,
          fromEkId: repack.fromEkId,
          toEkId: repack.toEkId,
          keys: moved,
          runner,
          at: new Date(clock.now()),
        });
        if (!applied) return (await store.getRepack(repack.environmentId)) ?? repack;
        deps.metrics?.repackBatch('applied', applied.done - repack.done);
        repack = applied;
      } finally {
        zeroize(oldEk);
        zeroize(newEk);
      }
      if (deps.batchPauseMs > 0) await sleep(deps.batchPauseMs);
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return repack;
  }

  async function runPending(): Promise<number> {
    let finished = 0;
    for (const repack of await store.listUnfinishedRepacks(100)) {
      if (stopping) break;
      if ((await work(repack)).state === 'done') finished++;
    }
    return finished;
  }

  return {
    runner,
    /**
     * Work on every unfinished repack now (the caller holds the cluster-wide lease). Calls made while
     * a run is under way on this node share it. Resolves to the number of repacks finished.
     */
    runOnce(): Promise<number> {
      if (stopping) return Promise.resolve(0);
      running ??= runPending().finally(() => {
        running = undefined;
      });
      return running;
    },
    /** Stop after the batch in progress (its transaction commits or not; either way nothing is lost). */
    async stop(): Promise<void> {
      stopping = true;
      await running?.catch(() => undefined);
    },
  };
}
