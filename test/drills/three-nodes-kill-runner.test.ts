import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testStores } from '../support/test-keystrata.js';
import { startAnswerLossProxy, type AnswerLossProxy } from './answer-loss-proxy.js';
import { startLoad, type AckedObject, type AckedRecord, type Load } from './cluster-load.js';
import {
  DRILL_ADMIN_TOKEN,
  countKeysUnder,
  drillNodes,
  keyRow,
  newRootKey,
  privateDatabase,
  repackRow,
  runnerPid,
  tempDir,
  type DbInspector,
  type DrillDatabase,
  type DrillNode,
  type RepackRow,
} from './drill-cluster.js';
import { b64, createDrillClient, forEachConcurrently, sleep, unb64, waitFor } from './drill-http.js';

/**
 * Failure drill: three keystrata processes on one PostgreSQL database, under a write load spread
 * over all three; an environment key rotation starts during the load, and the node working on its
 * repack (repacks.runner = host:pid) is killed with SIGKILL while the load goes on. Writers whose
 * node died move to the others and resend what was in flight. The writers reach the nodes through
 * proxies that also lose, now and then, the answer to a create or an update the node committed (what
 * a kill does only by luck), so that retries of committed writes happen on every run.
 *
 * Asserted: no acknowledged write is lost and none is duplicated (every object once, with exactly
 * the versions acknowledged), one hourly key per environment and period and one key per scope,
 * the repack taken over and completed by a surviving node (runner changes to its pid), no key left
 * under the old environment key — including keys created during the rotation — and every record
 * written before and during the drill decrypts to its plaintext.
 */

const NODES = 3;
const WRITERS_PER_NODE = 3;
const PRELOAD_CONNECTIONS = 1500;
const PRELOAD_OBJECTS = 60;
/** Objects spread over this many contexts; the first three exist before the rotation. */
const CONTEXTS = 6;
const BATCH = 50;
const CONCURRENCY = 24;
const CREATE = /^POST \/v1\/workspaces\/[^/]+\/environments\/production\/objects$/;
const UPDATE = /^PUT \/v1\/workspaces\/[^/]+\/environments\/production\/objects\/[^/]+$/;

describe.runIf(testStores().includes('postgres'))('drill: three nodes on PostgreSQL under write load, the repack runner killed (postgres)', () => {
  const nodes = drillNodes();
  const client = createDrillClient(DRILL_ADMIN_TOKEN, 48);
  const dirs = Array.from({ length: NODES }, () => tempDir('keystrata-drill-node-'));
  let database: DrillDatabase;
  let db: DbInspector;
  let cluster: DrillNode[] = [];
  let envPath = '';
  let environmentId = '';
  let oldEkId = '';
  let toEkId = '';
  let repackId = '';
  let victim: DrillNode | undefined;
  let takenOver: RepackRow | undefined;
  let load: Load | undefined;
  let proxies: AnswerLossProxy[] = [];
  let losing = false;
  const salt = randomBytes(4).toString('hex');
  const before: { records: AckedRecord[]; objects: AckedObject[] } = { records: [], objects: [] };

  const lostAnswers = (): number => proxies.reduce((sum, proxy) => sum + proxy.lost(), 0);
  const survivors = (): DrillNode[] => cluster.filter((node) => node !== victim);
  const someNode = (i: number): DrillNode => {
    const live = survivors();
    return live[i % live.length]!;
  };

  beforeAll(async () => {
    database = await privateDatabase();
    db = database.inspector;
    const rootKey = newRootKey();
    const settings = (i: number) => ({
      KEYSTRATA_DATA_DIR: dirs[i]!.path,
      KEYSTRATA_DATABASE_URL: database.url,
      KEYSTRATA_ROOT_KEY: rootKey,
      KEYSTRATA_REPACK_BATCH_SIZE: String(BATCH),
      KEYSTRATA_REPACK_BATCH_PAUSE_MS: '100',
      KEYSTRATA_REPACK_INTERVAL_SECONDS: '1',
    });
    // The first node migrates the schema; the others join it.
    cluster = [await nodes.start(settings(0))];
    cluster.push(...(await Promise.all([1, 2].map((i) => nodes.start(settings(i))))));
    proxies = await Promise.all(cluster.map((node) => startAnswerLossProxy(node.url)));
  }, 90_000);

  afterAll(async () => {
    losing = false;
    await load?.stop().catch(() => undefined);
    await nodes.killAll();
    await Promise.all(proxies.map((proxy) => proxy.close()));
    client.close();
    await database?.drop();
    for (const dir of dirs) dir.remove();
  }, 60_000);

  it(`writes ${PRELOAD_CONNECTIONS} connection records and ${PRELOAD_OBJECTS} objects through all three nodes`, async () => {
    const workspace = await client.ok(cluster[0]!.url, 'POST', '/v1/workspaces', { name: 'drill-three-nodes' }, 201);
    envPath = `/v1/workspaces/${workspace.id}/environments/production`;
    environmentId = workspace.environments[0].id as string;
    const plan = Array.from({ length: PRELOAD_CONNECTIONS }, (_, i) => ({ type: 'connection' as const, id: `pre-${i}` }));
    await forEachConcurrently(plan, CONCURRENCY, async (scope, i) => {
      const plaintext = `preload ${scope.id} ${salt}`;
      const sealed = await client.ok(cluster[i % NODES]!.url, 'POST', `${envPath}/encrypt`, { scope, plaintext: b64(plaintext) });
      before.records.push({ scope, plaintext, ciphertext: sealed.ciphertext as string });
    });
    await forEachConcurrently(Array.from({ length: PRELOAD_OBJECTS }, (_, i) => i), CONCURRENCY, async (i) => {
      const object = { name: `pre-${i}`, value: `preload object ${i} ${salt}`, context: { tenant: `t${i % 3}` } };
      const created = await client.ok(cluster[i % NODES]!.url, 'POST', `${envPath}/objects`, object, 201);
      before.objects.push({ name: object.name, context: object.context, id: created.id as string, values: [object.value] });
    });
    const keys = await client.ok(cluster[0]!.url, 'GET', `${envPath}/keys`, undefined);
    expect(keys.counts).toMatchObject({ connection: PRELOAD_CONNECTIONS, context: 3 });
    oldEkId = keys.ek.id as string;
  }, 120_000);

  it('under load, the EK rotation starts; the node running the repack is killed; a survivor takes it over while the load goes on', async () => {
    load = startLoad({
      client,
      nodes: cluster.map((node, i) => ({ url: proxies[i]!.url, pid: node.pid })),
      envPath,
      writersPerNode: WRITERS_PER_NODE,
      contexts: CONTEXTS,
      salt,
    });
    losing = true;
    const loser = (async () => {
      for (let i = 0; losing; i++) {
        const at = i % NODES;
        if (cluster[at] !== victim) proxies[at]!.loseNextAnswer(i % 2 === 0 ? CREATE : UPDATE);
        await sleep(250);
      }
    })();
    await sleep(1500);

    const rotated = await client.ok(cluster[0]!.url, 'PUT', `${envPath}/cmk`, { provider: 'platform', rotateEnvironmentKey: true });
    expect(rotated.repack).toMatchObject({ state: 'running', fromEkId: oldEkId });
    repackId = rotated.repack.id as string;
    toEkId = rotated.repack.toEkId as string;

    const working = await waitFor('a node to apply a repack batch', 60_000, async () => {
      const row = await repackRow(db, environmentId);
      return row && row.id === repackId && row.done > 0 ? row : undefined;
    });
    expect(working.done, 'the repack went too fast to be killed mid-way').toBeLessThanOrEqual(working.total - 3 * BATCH);
    const pid = runnerPid(working.runner);
    victim = cluster.find((node) => node.pid === pid);
    expect(victim, `runner ${working.runner} is none of our nodes (${cluster.map((n) => n.pid).join(', ')})`).toBeDefined();
    await victim!.kill9();

    const afterKill = (await repackRow(db, environmentId))!;
    expect(afterKill.state).toBe('running');
    expect(afterKill.done).toBeLessThan(afterKill.total);

    // The load goes on without the victim; a survivor takes the repack over meanwhile.
    await sleep(3000);
    takenOver = await waitFor('a surviving node to take the repack over', 60_000, async () => {
      const row = await repackRow(db, environmentId);
      return row && runnerPid(row.runner) !== victim!.pid ? row : undefined;
    });
    expect(survivors().map((node) => node.pid)).toContain(runnerPid(takenOver.runner));
    losing = false;
    await loser;
    await load.stop();

    const done = await waitFor('the repack to complete', 90_000, async () => {
      const row = await repackRow(db, environmentId);
      return row?.state === 'done' ? row : undefined;
    }, 100);
    expect(survivors().map((node) => node.pid)).toContain(runnerPid(done.runner));
    // Every key the rotation counted was moved once: no batch lost, none applied twice.
    expect(done.done).toBe(done.total);
    const shown = await client.ok(someNode(0).url, 'GET', `${envPath}/cmk`, undefined);
    expect(shown.repack).toMatchObject({ id: repackId, state: 'done', done: done.total, total: done.total, pausedReason: null });
    console.info(
      `drill three-nodes: killed ${victim!.pid} at done=${working.done}/${working.total}; taken over by ${takenOver.runner}; ` +
        `load: ${load.objects.length} objects, ${load.records.length} records, ${load.stats.networkErrors} connection failures resent, ` +
        `${lostAnswers()} answers lost on purpose; ${load.stats.recoveredCreates} creates and ${load.stats.recoveredUpdates} updates found committed on retry`,
    );
  }, 180_000);

  it('no write failed; the writers of the dead node moved to the others; every write whose answer was lost was found committed on retry', () => {
    expect(load!.failures).toEqual([]);
    expect(load!.stats.networkErrors).toBeGreaterThan(0);
    expect(load!.stats.recoveredCreates).toBeGreaterThan(0);
    expect(load!.stats.recoveredUpdates).toBeGreaterThan(0);
    // (The kill loses answers too, by luck: recoveries can outnumber the answers the proxies lost.)
    expect(lostAnswers()).toBeGreaterThan(0);
    for (const node of survivors()) expect(load!.stats.byPid.get(node.pid) ?? 0).toBeGreaterThan(0);
    expect(load!.objects.length).toBeGreaterThan(0);
  });

  it('the database: one row per object, the versions acknowledged, one hourly key per period, one key per scope, nothing under the old EK', async () => {
    const all = [...before.objects, ...load!.objects];
    const rows = await db.all<{ id: string; name: string; version: number; versions: string }>(
      'SELECT o.id, o.name, o.version, (SELECT count(*) FROM object_versions v WHERE v.object_id = o.id) AS versions FROM objects o WHERE o.environment_id = ?',
      [environmentId],
    );
    // Exactly the objects acknowledged: none lost, none extra, none twice.
    expect(rows.map((row) => row.name).sort()).toEqual(all.map((object) => object.name).sort());
    const byName = new Map(rows.map((row) => [row.name, row]));
    const wrong = all.filter((object) => {
      const row = byName.get(object.name)!;
      return row.id !== object.id || Number(row.version) !== object.values.length || Number(row.versions) !== object.values.length;
    });
    expect(wrong.map((object) => ({ object, row: byName.get(object.name) }))).toEqual([]);

    const hourlyTwice = await db.all(
      "SELECT environment_id, hour_start, count(*) AS n FROM keys WHERE kind = 'hourly' GROUP BY environment_id, hour_start HAVING count(*) > 1",
    );
    expect(hourlyTwice).toEqual([]);
    const scopedTwice = await db.all(
      "SELECT environment_id, kind, scope_id, count(*) AS n FROM keys WHERE kind IN ('job', 'connection', 'context') GROUP BY environment_id, kind, scope_id HAVING count(*) > 1",
    );
    expect(scopedTwice).toEqual([]);
    const hourly = await db.all<{ n: string }>("SELECT count(*) AS n FROM keys WHERE environment_id = ? AND kind = 'hourly'", [environmentId]);
    expect(Number(hourly[0]!.n)).toBeGreaterThanOrEqual(1);

    expect(await countKeysUnder(db, oldEkId)).toBe(0);
    expect(await keyRow(db, oldEkId)).toEqual({ state: 'destroyed', wrappedBytes: 0 });
    // Every key hanging from an EK hangs from the new one, including those created during the rotation.
    const elsewhere = await db.all(
      "SELECT id, kind, parent_id FROM keys WHERE environment_id = ? AND kind IN ('hourly', 'connection', 'log', 'context') AND parent_id <> ?",
      [environmentId, toEkId],
    );
    expect(elsewhere).toEqual([]);
    const connections = await db.all<{ n: string }>("SELECT count(*) AS n FROM keys WHERE environment_id = ? AND kind = 'connection'", [environmentId]);
    expect(Number(connections[0]!.n)).toBe(PRELOAD_CONNECTIONS + load!.records.filter((record) => record.scope.type === 'connection').length);
  }, 60_000);

  it('every record written before and during the drill decrypts, and every object version reads back, on the survivors', async () => {
    const records = [...before.records, ...load!.records];
    await forEachConcurrently(records, CONCURRENCY, async (record, i) => {
      const opened = await client.ok(someNode(i).url, 'POST', `${envPath}/decrypt`, { ciphertext: record.ciphertext, scope: record.scope });
      expect(unb64(opened.plaintext as string)).toBe(record.plaintext);
    });
    const objects = [...before.objects, ...load!.objects];
    await forEachConcurrently(objects, CONCURRENCY, async (object, i) => {
      const url = someNode(i).url;
      const current = await client.ok(url, 'GET', `${envPath}/objects/${object.id}`, undefined);
      expect(current).toMatchObject({ name: object.name, context: object.context, version: object.values.length, value: object.values.at(-1) });
      for (let version = 1; version < object.values.length; version++) {
        const old = await client.ok(url, 'GET', `${envPath}/objects/${object.id}/versions/${version}`, undefined);
        expect(old.value).toBe(object.values[version - 1]);
      }
    });
    for (const node of survivors()) expect(await node.stop()).toBe(0);
  }, 120_000);
});
