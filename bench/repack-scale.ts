/**
 * Repack at scale (issue 5): "repack of an environment with 8,760 hourly keys and 100,000
 * connection keys (target < 5 s with ≤ 2 CMK provider calls when only the EK is re-wrapped)".
 *
 * When an environment moves to another CMK (`ks.cmks.put` without `rotateEnvironmentKey`, or
 * `ks.cmks.rotate` on a platform CMK): test-and-save's live wrap+unwrap round trip with the new
 * CMK, then ONLY the environment key (EK) is re-wrapped — one unwrap through the old CMK (cold
 * cache) and one wrap by the new one — and saved in one transaction. The 108,760 keys below the EK
 * are not touched. This measures that, and then the full EK rotation (4.), at that scale, on
 * SQLite and PostgreSQL:
 *
 * 1. Build (not the measured figure): a workspace whose production environment gets 8,760 hourly
 *    keys (one per hour of a year, ManualClock) and 100,000 connection keys, wrapped under the EK
 *    with src/core/wrapped-key.ts exactly as the hierarchy's createKey does, inserted with
 *    `ks.store.insertKeyIfAbsent` (the store has no batch insert: sequential on SQLite, a few
 *    concurrent callers on PostgreSQL). Before any change, 1,000 connection-scoped records (10
 *    connections × 100) and 60 events (5 in each of 12 hours spread over the year) are encrypted.
 * 2. Measured, each from a cold key cache (`ks.cache.clear()`), `--cycles` times: put → uploaded
 *    CMK, put → platform CMK, rotate (platform). Provider calls are logged in order at the
 *    registry (which provider, which operation) and cross-checked with
 *    keystrata_provider_calls_total. After every change: cold cache, all 1,060 records decrypted.
 * 3. Same-run peer, after every change: one `store.getActiveEk` + one raw AES-256-GCM unwrap and
 *    wrap of 32 bytes + one `store.replaceCmk` (no audit entry) on a separate environment in the same
 *    database — the unavoidable work of an EK-only re-wrap. And the per-key cost of
 *    `unwrapKey`+`wrapKey` (src/core/wrapped-key.ts), for the lower bound of a full repack.
 * 4. The full EK rotation, on the same environment after the EK-only cycles, once per batch size
 *    (`--batch-sizes`): `ks.cmks.put(…, { rotateEnvironmentKey: true })` then `ks.runRepacks()` to
 *    done — every key under the old EK re-wrapped under a new one — against the raw limit measured
 *    in the same run: the per-key crypto of 3. × keys moved, and a raw SQL peer moving the same rows
 *    in the same batches on the same database (bench/lib/repack-full.ts, bench/lib/repack-peers.ts).
 *
 *    On PostgreSQL, one more at `--analyzed-batch` after `ANALYZE keys` (the test database runs
 *    without autovacuum, so keys otherwise has no statistics, which changes the repack's plan).
 *
 *   npm run build && node dist/bench/repack-scale.js [--stores sqlite,postgres] [--hourly 8760] [--connections 100000] [--cycles 5] [--batch-sizes 500,2000,5000] [--analyzed-batch 2000]
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { loadConfig } from '../src/config.js';
import { newId, randomKey } from '../src/core/bytes.js';
import { unwrapKey, wrapKey } from '../src/core/wrapped-key.js';
import { ManualClock } from '../src/service/clock.js';
import { openKeystrata, type Keystrata } from '../src/service/keystrata.js';
import type { EnvironmentContext } from '../src/service/workspaces.js';
import { openStore } from '../src/store/open-store.js';
import type { CmkRecord, KeyRecord } from '../src/store/store.js';
import { machineLine } from './lib/measure.js';
import { fullRotation, printFullRotations, type FullRotationResult } from './lib/repack-full.js';
import { postgresPeer, sqlitePeer } from './lib/repack-peers.js';
import { adminAudit, logProviderCalls, median, metricCalls, metricDelta, ms, nowMs, verifySealed, type Sealed } from './lib/repack-support.js';

const { values } = parseArgs({
  options: {
    stores: { type: 'string', default: 'sqlite,postgres' },
    hourly: { type: 'string', default: '8760' },
    connections: { type: 'string', default: '100000' },
    cycles: { type: 'string', default: '5' },
    'batch-sizes': { type: 'string', default: '500,2000,5000' },
    // PostgreSQL: one more full rotation at this batch size after ANALYZE keys ('' = none).
    'analyzed-batch': { type: 'string', default: '2000' },
  },
});
const hourlyCount = Number(values.hourly);
const connectionCount = Number(values.connections);
const cycles = Number(values.cycles);
// Empty: no full rotation.
const batchSizes = values['batch-sizes'].split(',').filter((b) => b !== '').map(Number);
const analyzedBatch = values['analyzed-batch'] === '' ? undefined : Number(values['analyzed-batch']);
const databaseUrl = process.env.KEYSTRATA_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const YEAR_START = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;
const SAMPLE_CONNECTIONS = 10;
const PER_CONNECTION = 100;
const SAMPLE_HOURS = 12;
const PER_HOUR = 5;
const TARGET_MS = 5000;

// ---- raw AES-256-GCM (the peer's crypto) ----
function rawSeal(key: Buffer, plaintext: Buffer): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}
function rawOpen(key: Buffer, sealed: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]);
}

/** Per-key cost (µs) of unwrapKey + wrapKey with the core functions: median of 5 rounds of `n` (after one to warm up). */
function perKeyRewrapMicros(n: number): number {
  const oldEk = randomKey();
  const newEk = randomKey();
  const environmentId = newId();
  const parentId = newId();
  const bindings = Array.from({ length: 1000 }, () => ({ environmentId, keyId: newId(), kind: 'connection', parentId }));
  const wrapped = bindings.map((b) => wrapKey(oldEk, randomKey(), b));
  const rounds: number[] = [];
  for (let round = 0; round < 6; round++) {
    const started = nowMs();
    for (let i = 0; i < n; i++) {
      const b = bindings[i % 1000]!;
      const child = unwrapKey(oldEk, wrapped[i % 1000]!, b);
      if (!child) throw new Error('unwrap failed');
      wrapKey(newEk, child, b);
      child.fill(0);
    }
    if (round > 0) rounds.push(((nowMs() - started) * 1000) / n); // round 0 warms up
  }
  return median(rounds);
}

interface ChangeResult {
  readonly label: string;
  readonly ms: number;
  readonly roundTrip: number;
  readonly rewrap: number;
  readonly probe: number;
  readonly other: number;
  readonly metricTotal: number;
  readonly sequence: string;
  readonly verifyMs: number;
  readonly verifyFailures: number;
  readonly verifyUnwraps: number;
  readonly peerMs: number;
}

interface StoreResult {
  readonly store: string;
  readonly buildMs: number;
  readonly keyCounts: string;
  readonly changes: ChangeResult[];
  readonly full: FullRotationResult[];
}

async function runStore(kind: 'sqlite' | 'postgres', dataDir: string, schema: string): Promise<StoreResult> {
  const sqlitePath = join(dataDir, 'keystrata.db');
  const clock = new ManualClock(YEAR_START);
  /** keystrata on this store's database (opened again for each repack batch size: the setting is read at start). */
  const open = async (batchSize: number): Promise<Keystrata> => {
    const config = loadConfig(
      { KEYSTRATA_DATA_DIR: dataDir, KEYSTRATA_LOG_LEVEL: 'silent', KEYSTRATA_CMK_REPLACE_INTERVAL_HOURS: '0', KEYSTRATA_REPACK_BATCH_SIZE: String(batchSize) },
      dataDir,
    );
    const store = await openStore(kind === 'postgres' ? { databaseUrl, sqlitePath: '', postgresSchema: schema } : { sqlitePath });
    // Repacks run when the bench says (ks.runRepacks), not on a timer.
    return openKeystrata(config, { store, clock, defaultMetrics: false, probeCmks: false, scheduleRepacks: false });
  };
  const ks = await open(2000);
  let built: Omit<StoreResult, 'full'>;
  let setup: { workspaceId: string; environmentId: string; ekId: string; sealed: readonly Sealed[] };
  try {
    const calls = logProviderCalls(ks);
    const audit = (workspaceId: string, action: string) => adminAudit(ks, workspaceId, action);

    // ---- 1. build ----
    const ws = await ks.workspaces.createWorkspace('bench-repack');
    const env = await ks.workspaces.resolveEnvironment(ws.id, 'production');
    const environmentId = env.environment.id;
    const ek = await ks.store.getActiveEk(environmentId);
    if (!ek) throw new Error('no EK');
    // Load the EK into the cache (one unwrap by its platform CMK), then copy its material out.
    await ks.crypto.encrypt(env, { type: 'connection', id: 'warm-up' }, Buffer.from('x'));
    let ekMaterial: Buffer | undefined;
    ks.cache.tryUse(ek.id, (entry) => {
      ekMaterial = Buffer.from(entry.material);
    });
    if (!ekMaterial) throw new Error('EK not in the cache after an encrypt');
    const material = ekMaterial;

    const record = (template: Pick<KeyRecord, 'kind' | 'scopeId' | 'hourStart'>): KeyRecord => {
      const id = newId();
      const child = randomKey();
      const wrapped = wrapKey(material, child, { environmentId, keyId: id, kind: template.kind, parentId: ek.id });
      child.fill(0);
      return { ...template, id, environmentId, parentId: ek.id, wrapped, wrappingKeyVersion: null, state: 'active', createdAt: new Date(clock.now()) };
    };
    const total = hourlyCount + connectionCount;
    const nth = (i: number): KeyRecord =>
      i < hourlyCount
        ? record({ kind: 'hourly', scopeId: null, hourStart: (YEAR_START + i * HOUR) / 1000 })
        : record({ kind: 'connection', scopeId: `conn-${i - hourlyCount}`, hourStart: null });
    const buildStarted = nowMs();
    let next = 0;
    const workers = kind === 'postgres' ? 8 : 1;
    await Promise.all(
      Array.from({ length: workers }, async () => {
        for (let i = next++; i < total; i = next++) {
          const key = nth(i);
          const stored = await ks.store.insertKeyIfAbsent(key);
          if (stored.id !== key.id) throw new Error(`key ${i} already existed`);
        }
      }),
    );
    const buildMs = nowMs() - buildStarted;
    material.fill(0);
    const stats = await ks.store.keyStats(environmentId);
    const keyCounts = Object.entries(stats.counts)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k} ${n.toLocaleString('en-US')}`)
      .join(', ');
    if (stats.counts.hourly !== hourlyCount || stats.counts.connection < connectionCount) throw new Error(`built ${keyCounts}`);

    // Records sealed before any change: connection scopes spread over the 100,000, events in hours over the year.
    const sealed: Sealed[] = [];
    for (let c = 0; c < SAMPLE_CONNECTIONS; c++) {
      const id = `conn-${Math.floor((c * connectionCount) / SAMPLE_CONNECTIONS) + 7}`;
      for (let i = 0; i < PER_CONNECTION; i++) {
        const plaintext = `${id} record ${i} ${randomBytes(12).toString('hex')}`;
        sealed.push({ ciphertext: (await ks.crypto.encrypt(env, { type: 'connection', id }, Buffer.from(plaintext))).ciphertext, plaintext });
      }
    }
    for (let h = 0; h < SAMPLE_HOURS; h++) {
      clock.set(YEAR_START + Math.floor((h * hourlyCount) / SAMPLE_HOURS) * HOUR + 17 * 60_000);
      for (let i = 0; i < PER_HOUR; i++) {
        const plaintext = `event ${h}/${i} ${randomBytes(12).toString('hex')}`;
        sealed.push({ ciphertext: (await ks.crypto.encrypt(env, { type: 'event', id: `e-${h}-${i}` }, Buffer.from(plaintext))).ciphertext, plaintext });
      }
    }
    clock.set(YEAR_START + hourlyCount * HOUR + 60_000);
    const statsAfter = await ks.store.keyStats(environmentId);
    if (statsAfter.counts.hourly !== hourlyCount || statsAfter.counts.connection !== stats.counts.connection) {
      throw new Error('sealing the samples created keys: they should all have used the built ones');
    }

    // The peer's environment (in the same database) and a small environment to warm the JIT up on.
    const peerWs = await ks.workspaces.createWorkspace('bench-repack-peer');
    const peerEnvId = (await ks.workspaces.resolveEnvironment(peerWs.id, 'production')).environment.id;
    const oldCmkKey = randomKey();
    const newCmkKey = randomKey();
    const peerWrapped = rawSeal(oldCmkKey, randomKey());
    const peer = async (): Promise<number> => {
      const started = nowMs();
      const peerEk = await ks.store.getActiveEk(peerEnvId);
      if (!peerEk) throw new Error('peer: no EK');
      const plain = rawOpen(oldCmkKey, peerWrapped);
      const wrapped = rawSeal(newCmkKey, plain);
      plain.fill(0);
      const cmk: CmkRecord = { id: newId(), environmentId: peerEnvId, provider: 'uploaded', config: {}, state: 'active', createdAt: new Date(clock.now()) };
      const ok = await ks.store.replaceCmk({ environmentId: peerEnvId, fromCmkId: peerEk.parentId, cmk, ekId: peerEk.id, wrapped, wrappingKeyVersion: '1' });
      if (!ok) throw new Error('peer: replaceCmk refused');
      return nowMs() - started;
    };

    const changes: [string, (target: EnvironmentContext, workspaceId: string) => Promise<unknown>][] = [
      ['put → uploaded', (t, w) => ks.cmks.put(t, { provider: 'uploaded', config: { keyMaterial: randomBytes(32).toString('base64') } }, audit(w, 'cmk.update'))],
      ['put → platform', (t, w) => ks.cmks.put(t, { provider: 'platform' }, audit(w, 'cmk.update'))],
      ['rotate (platform)', (t, w) => ks.cmks.rotate(t, audit(w, 'cmk.rotate'))],
    ];
    const warmWs = await ks.workspaces.createWorkspace('bench-repack-warm-up');
    const warmEnv = await ks.workspaces.resolveEnvironment(warmWs.id, 'production');
    for (let i = 0; i < 5; i++) {
      for (const [, change] of changes) {
        ks.cache.clear();
        await change(warmEnv, warmWs.id);
      }
      await peer();
    }

    const results: ChangeResult[] = [];
    for (let cycle = 0; cycle < cycles; cycle++) {
      for (const [label, change] of changes) {
        ks.cache.clear();
        calls.length = 0;
        const metricsBefore = await metricCalls(ks);
        const started = nowMs();
        await change(env, ws.id);
        const ms = nowMs() - started;
        const metricTotal = metricDelta(metricsBefore, await metricCalls(ks));
        // Test-and-save's round trip: the first wrap and unwrap by the provider under test.
        const newCalls = calls.filter((c) => c.who === 'new');
        const roundTrip = Math.min(2, newCalls.length);
        const rewrap = newCalls.length - roundTrip + calls.filter((c) => c.who === 'stored' && c.operation === 'unwrap').length;
        const probe = calls.filter((c) => c.who === 'stored' && c.operation === 'describe').length;
        const other = calls.length - roundTrip - rewrap - probe;
        const sequence = calls.map((c) => `${c.who === 'new' ? 'new' : 'stored'} ${c.provider} ${c.operation}`).join(', ');

        // Correctness: every record sealed before any change decrypts, from a cold cache.
        const verify = await verifySealed(ks, env, sealed, calls);
        results.push({
          label, ms, roundTrip, rewrap, probe, other, metricTotal, sequence, verifyMs: verify.ms, verifyFailures: verify.failures, verifyUnwraps: verify.unwraps,
          peerMs: await peer(),
        });
      }
    }
    const final = await ks.store.keyStats(environmentId);
    if (final.counts.hourly !== hourlyCount || final.counts.connection !== stats.counts.connection) throw new Error('a CMK change changed the key counts');
    built = { store: kind, buildMs, keyCounts, changes: results };
    setup = { workspaceId: ws.id, environmentId, ekId: ek.id, sealed };
  } finally {
    await ks.close();
  }

  // ---- 4. full EK rotations, on the same environment, one per batch size ----
  const full: FullRotationResult[] = [];
  if (batchSizes.length > 0) {
    const peer = kind === 'postgres' ? await postgresPeer(databaseUrl, schema) : sqlitePeer(sqlitePath);
    try {
      await peer.prepare(setup.environmentId, setup.ekId);
      const rotationSetup = {
        ...setup,
        peer,
        // A minute between rotations: "the last repack" is the newest one (a ManualClock does not move by itself).
        open: (batchSize: number) => (clock.advance(60_000), open(batchSize)),
        // Measured right after each repack: this host's speed drifts within seconds.
        cryptoMicros: () => perKeyRewrapMicros(10_000),
      };
      for (const [i, batchSize] of batchSizes.entries()) full.push(await fullRotation(rotationSetup, batchSize, i % 2 === 0 ? 'uploaded' : 'platform'));
      // The test database runs without autovacuum: keys has no statistics unless analysed. Once more with them.
      if (analyzedBatch !== undefined && peer.analyzeKeys) {
        await peer.analyzeKeys();
        full.push(await fullRotation(rotationSetup, analyzedBatch, 'platform', ' after ANALYZE keys'));
      }
    } finally {
      await peer.close();
    }
  }
  return { ...built, full };
}

async function withSchema<T>(schema: string, run: () => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  await client.query(`CREATE SCHEMA ${schema}`);
  try {
    return await run();
  } finally {
    await client.query(`DROP SCHEMA ${schema} CASCADE`);
    await client.end();
  }
}

console.log(
  `# repack at scale (issue 5): ${hourlyCount.toLocaleString('en-US')} hourly + ${connectionCount.toLocaleString('en-US')} connection keys under one EK; CMK change measured ${cycles}× per kind from a cold key cache (${machineLine()})`,
);
const perKeyMicros = perKeyRewrapMicros(50_000);
const children = hourlyCount + connectionCount;
for (const kind of values.stores.split(',') as ('sqlite' | 'postgres')[]) {
  const dataDir = mkdtempSync(join(tmpdir(), 'keystrata-repack-bench-'));
  const schema = `ks_repack_${randomBytes(4).toString('hex')}`;
  try {
    const result = kind === 'postgres' ? await withSchema(schema, () => runStore(kind, dataDir, schema)) : await runStore(kind, dataDir, '');
    const perKeyInsert = (result.buildMs * 1000) / children;
    console.log(`\n## ${kind}: built ${result.keyCounts} in ${(result.buildMs / 1000).toFixed(1)} s (${perKeyInsert.toFixed(0)} µs per key through store.insertKeyIfAbsent; not the measured figure)`);
    console.log('\n| change | wall ms | provider calls: test round trip | EK re-wrap | probe (describe) | other | metrics total | peer ms | ratio | 1,060 old records decrypt (cold) |');
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    for (const c of result.changes) {
      console.log(
        `| ${c.label} | ${ms(c.ms)} | ${c.roundTrip} | ${c.rewrap} | ${c.probe} | ${c.other} | ${c.metricTotal} | ${c.peerMs.toFixed(2)} | ${(c.ms / c.peerMs).toFixed(1)}× | ${c.verifyFailures === 0 ? 'all' : `${c.verifyFailures} FAILED`} in ${ms(c.verifyMs)} ms, ${c.verifyUnwraps} provider unwrap |`,
      );
    }
    const labels = [...new Set(result.changes.map((c) => c.label))];
    console.log('\nmedians:');
    for (const label of labels) {
      const rows = result.changes.filter((c) => c.label === label);
      const m = median(rows.map((c) => c.ms));
      const maxRewrap = Math.max(...rows.map((c) => c.rewrap));
      console.log(
        `  ${kind} ${label}: ${ms(m)} ms (min ${ms(Math.min(...rows.map((c) => c.ms)))}, max ${ms(Math.max(...rows.map((c) => c.ms)))}), peer ${median(rows.map((c) => c.peerMs)).toFixed(2)} ms, ratio ${median(rows.map((c) => c.ms / c.peerMs)).toFixed(1)}×; re-wrap provider calls ≤ ${maxRewrap}; target < ${TARGET_MS} ms with ≤ 2: ${m < TARGET_MS && maxRewrap <= 2 ? 'met' : 'NOT met'}`,
      );
    }
    console.log(`  call sequence (last ${labels.length}):`);
    for (const c of result.changes.slice(-labels.length)) console.log(`    ${c.label}: ${c.sequence}`);
    if (result.full.length > 0) printFullRotations(kind, result.full);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}
console.log(`\nper-key unwrapKey + wrapKey (src/core/wrapped-key.ts, AES-256-GCM, 61-byte wrapped key): ${perKeyMicros.toFixed(2)} µs (median of 5 rounds of 50,000)`);
