/**
 * The full environment key rotation of issue 5, measured on the environment repack-scale.ts built:
 * `PUT …/cmk` with `rotateEnvironmentKey` (new CMK, new EK, repack row — one transaction that also
 * counts the keys under the old EK), then the repack to done through `ks.runRepacks()` (what the
 * scheduler runs), every key under the old EK re-wrapped under the new one, KEYSTRATA_REPACK_BATCH_SIZE
 * keys per transaction. keystrata is opened again for each batch size (the setting is read at start).
 */
import { randomBytes } from 'node:crypto';
import type { Keystrata } from '../../src/service/keystrata.js';
import type { Store } from '../../src/store/store.js';
import type { RawPeer, PeerRun } from './repack-peers.js';
import { adminAudit, callText, logProviderCalls, metricCalls, metricDelta, nowMs, verifySealed, type Call, type Sealed, type Verification } from './repack-support.js';

export interface FullRotationSetup {
  /** keystrata on the database the EK-only part used, with this repack batch size and no timers. */
  readonly open: (batchSize: number) => Promise<Keystrata>;
  readonly workspaceId: string;
  readonly environmentId: string;
  readonly sealed: readonly Sealed[];
  readonly peer: RawPeer;
  /** Per-key unwrapKey + wrapKey (µs), the crypto a repack cannot avoid. */
  readonly cryptoMicros: () => number;
}

/** Time spent in the store calls of a rotation and its repack (wall, summed over calls). */
interface StepTimes {
  rotateTx: number;
  list: number;
  lists: number;
  apply: number;
  applies: number;
  finish: number;
}

export interface FullRotationResult {
  readonly batchSize: number;
  readonly provider: string;
  /** What the database knew about the keys table before the rotation (statistics: the planner's input). */
  readonly dbState: string;
  readonly note: string;
  /** ks.cmks.put with rotateEnvironmentKey: test-and-save, new EK, the rotation transaction, probe. */
  readonly putMs: number;
  /** store.rotateEnvironmentKey alone (retire old CMK and EK, insert new ones, count keys, repack row, audit). */
  readonly rotateTxMs: number;
  /** ks.runRepacks() until the repack was done. */
  readonly repackMs: number;
  readonly total: number;
  readonly done: number;
  readonly steps: Readonly<StepTimes>;
  readonly putCalls: readonly Call[];
  readonly repackCalls: readonly Call[];
  readonly metricTotal: number;
  /** After: the repack's state, the old EK's state and wrapped length, keys left under it, keys under the new one. */
  readonly state: string;
  readonly oldEk: string;
  readonly leftUnderOld: number;
  readonly underNew: number;
  readonly verify: Verification;
  /** Per-key crypto (µs) measured right after the repack, and the SQL peer run right after that. */
  readonly cryptoMicros: number;
  readonly peer: PeerRun;
}

/** Wraps the store calls a rotation makes with timers (the repacker and the CMK service look them up per call). */
function timeSteps(store: Store): StepTimes {
  const times: StepTimes = { rotateTx: 0, list: 0, lists: 0, apply: 0, applies: 0, finish: 0 };
  const rotate = store.rotateEnvironmentKey.bind(store);
  const list = store.listKeysUnder.bind(store);
  const apply = store.applyRepackBatch.bind(store);
  const finish = store.finishRepack.bind(store);
  // A thunk, not a promise: the SQLite store does its (synchronous) work before its promise exists.
  const timed = async <T>(work: () => Promise<T>, add: (ms: number) => void): Promise<T> => {
    const started = nowMs();
    try {
      return await work();
    } finally {
      add(nowMs() - started);
    }
  };
  store.rotateEnvironmentKey = (change, audit) => timed(() => rotate(change, audit), (ms) => (times.rotateTx += ms));
  store.listKeysUnder = (environmentId, parentId, limit) => timed(() => list(environmentId, parentId, limit), (ms) => ((times.list += ms), times.lists++));
  store.applyRepackBatch = (batch) => timed(() => apply(batch), (ms) => ((times.apply += ms), times.applies++));
  store.finishRepack = (id, at, audit) => timed(() => finish(id, at, audit), (ms) => (times.finish += ms));
  return times;
}

export async function fullRotation(setup: FullRotationSetup, batchSize: number, provider: 'uploaded' | 'platform', note = ''): Promise<FullRotationResult> {
  const { environmentId } = setup;
  const dbState = await setup.peer.describe();
  const ks = await setup.open(batchSize);
  let result: Omit<FullRotationResult, 'peer' | 'cryptoMicros'>;
  let cryptoMicros: number;
  try {
    const calls = logProviderCalls(ks);
    const env = await ks.workspaces.resolveEnvironment(setup.workspaceId, 'production');
    const fromEk = await ks.store.getActiveEk(environmentId);
    if (!fromEk) throw new Error('no active EK');
    const before = await ks.store.keyStats(environmentId);
    const config = provider === 'uploaded' ? { keyMaterial: randomBytes(32).toString('base64') } : undefined;
    const steps = timeSteps(ks.store);

    ks.cache.clear();
    const metricsBefore = await metricCalls(ks);
    const started = nowMs();
    const view = await ks.cmks.put(env, { provider, config, rotateEnvironmentKey: true }, adminAudit(ks, setup.workspaceId, 'cmk.update'));
    const putMs = nowMs() - started;
    const putCalls = calls.splice(0);
    const repackStarted = nowMs();
    const finished = await ks.runRepacks();
    const repackMs = nowMs() - repackStarted;
    const repackCalls = calls.splice(0);
    cryptoMicros = setup.cryptoMicros();
    const metricTotal = metricDelta(metricsBefore, await metricCalls(ks));
    if (finished !== 1) throw new Error(`runRepacks finished ${String(finished)} repacks, not 1`);

    const repack = await ks.store.getRepack(environmentId);
    if (!repack || repack.id !== view.repack?.id) throw new Error('the rotation has no repack');
    const old = await ks.store.getKey(environmentId, fromEk.id);
    const after = await ks.store.keyStats(environmentId);
    if (JSON.stringify({ ...after.counts, ek: 0 }) !== JSON.stringify({ ...before.counts, ek: 0 })) throw new Error('the rotation changed the key counts');
    result = {
      batchSize,
      provider,
      dbState,
      note,
      putMs,
      rotateTxMs: steps.rotateTx,
      repackMs,
      total: repack.total,
      done: repack.done,
      steps: { ...steps },
      putCalls,
      repackCalls,
      metricTotal,
      state: repack.state,
      oldEk: old ? `${old.state}, ${old.wrapped.length} wrapped bytes` : 'missing',
      leftUnderOld: await setup.peer.countUnder(environmentId, fromEk.id),
      underNew: await setup.peer.countUnder(environmentId, repack.toEkId),
      verify: await verifySealed(ks, env, setup.sealed, calls),
    };
  } finally {
    await ks.close();
  }
  return { ...result, cryptoMicros, peer: await setup.peer.run(batchSize) };
}

const n = (value: number): string => value.toLocaleString('en-US');
const s = (ms: number): string => (ms / 1000).toFixed(2);

/** The report of one store's full rotations, against the raw limit measured in the same run. */
export function printFullRotations(kind: string, results: readonly FullRotationResult[]): void {
  console.log(`\n### ${kind}: full EK rotation (new CMK + new EK, every key under the old EK re-wrapped), one per batch size`);
  console.log(
    '\n| batch | provider | PUT ms (of which rotation tx) | repack to done s | keys moved / counted | keys/s | batches | in listKeysUnder s | in applyRepackBatch s | rest (re-wrap crypto, EK lookups, yields) s | provider calls: PUT + repack (metrics) | after | 1,060 old records (cold) |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const rest = r.repackMs - r.steps.list - r.steps.apply - r.steps.finish;
    const after = `${r.state}; old EK ${r.oldEk}; ${r.leftUnderOld} left under it, ${n(r.underNew)} under the new`;
    console.log(
      `| ${n(r.batchSize)}${r.note} | ${r.provider} | ${r.putMs.toFixed(1)} (${r.rotateTxMs.toFixed(1)}) | **${s(r.repackMs)}** | ${n(r.done)} / ${n(r.total)} | ${n(Math.round(r.done / (r.repackMs / 1000)))} | ${r.steps.applies} | ${s(r.steps.list)} | ${s(r.steps.apply)} | ${s(rest)} | ${r.putCalls.length} + ${r.repackCalls.length} (${r.metricTotal}) | ${after} | ${r.verify.failures === 0 ? 'all' : `${r.verify.failures} FAILED`} in ${r.verify.ms.toFixed(1)} ms, ${r.verify.unwraps} provider unwrap |`,
    );
  }
  console.log('\nsame run, raw limit (no keystrata): crypto = per-key unwrapKey + wrapKey × keys moved; SQL peer = the same rows moved in the same batches on a scratch copy of them');
  console.log('\n| batch | keystrata repack s | per-key crypto µs | crypto alone s | SQL peer s (list / update) | crypto + SQL peer s | keystrata / (crypto + peer) | keystrata / peer |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const crypto = (r.cryptoMicros * r.done) / 1000;
    const limit = crypto + r.peer.ms;
    if (r.peer.moved !== r.done) console.log(`(peer moved ${n(r.peer.moved)} rows, keystrata ${n(r.done)})`);
    console.log(
      `| ${n(r.batchSize)}${r.note} | ${s(r.repackMs)} | ${r.cryptoMicros.toFixed(1)} | ${s(crypto)} | ${s(r.peer.ms)} (${s(r.peer.listMs)} / ${s(r.peer.updateMs)}) | ${s(limit)} | **${(r.repackMs / limit).toFixed(2)}×** | ${(r.repackMs / r.peer.ms).toFixed(2)}× |`,
    );
  }
  console.log('  the keys table before each rotation:');
  for (const r of results) console.log(`    batch ${n(r.batchSize)}${r.note}: ${r.dbState}`);
  console.log('  provider calls, in order:');
  for (const r of results) {
    console.log(`    batch ${n(r.batchSize)}${r.note} PUT: ${r.putCalls.map(callText).join(', ')}; repack: ${r.repackCalls.map(callText).join(', ') || 'none'}`);
  }
}
