import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testStores } from '../support/test-keystrata.js';
import {
  DRILL_ADMIN_TOKEN,
  countKeysUnder,
  drillNodes,
  keyRow,
  newRootKey,
  privateDatabase,
  repackRow,
  runnerPid,
  sqliteInspector,
  tempDir,
  type DbInspector,
  type DrillDatabase,
  type DrillNode,
} from './drill-cluster.js';
import { b64, createDrillClient, forEachConcurrently, sleep, unb64, waitFor } from './drill-http.js';

/**
 * Failure drill: a node is killed with SIGKILL (kill -9) in the middle of an environment key
 * rotation's repack, twice (once as soon as it has made progress, once past half way), and
 * restarted on the same data; the repack must finish by itself and every record written before
 * must still decrypt. Runs the compiled server as a real process, on each store.
 *
 * What would break it: a batch that is not one transaction (the database after the kill shows
 * moved keys that `done` does not count, or the reverse), a repack that is not resumed after a
 * restart, a batch applied twice (done > total), a key left under the old EK when it is destroyed
 * (a record that no longer decrypts), an old EK that is not destroyed at the end.
 */

const CONNECTIONS = 10_000;
const JOBS = 50;
const EVENTS = 50;
const LOGS = 20;
const CONTEXTS = 6;
const OBJECTS = 240;
const CONCURRENCY = 32;
const BATCH = 250;
/** Batches that must remain when a kill is decided, so that the kill always lands before the end. */
const MARGIN = 10 * BATCH;

interface SealedRecord {
  readonly scope: { readonly type: 'connection' | 'job' | 'event' | 'log'; readonly id: string };
  readonly plaintext: string;
  readonly context?: Record<string, string>;
  ciphertext: string;
}

interface StoredObject {
  readonly name: string;
  readonly context: Record<string, string>;
  readonly values: string[];
  id: string;
}

interface RepackProgress {
  readonly id: string;
  readonly state: 'running' | 'paused' | 'done';
  readonly done: number;
  readonly total: number;
  readonly fromEkId: string;
  readonly toEkId: string;
  readonly pausedReason: string | null;
}

for (const store of testStores()) {
  describe(`drill: kill -9 mid-repack, restart, the repack completes (${store})`, () => {
    const nodes = drillNodes();
    const client = createDrillClient(DRILL_ADMIN_TOKEN, CONCURRENCY + 8);
    const data = tempDir('keystrata-drill-kill-');
    let database: DrillDatabase | undefined;
    let db: DbInspector;
    let settings: Record<string, string>;
    let node: DrillNode;
    let envPath = '';
    let environmentId = '';
    let oldEkId = '';
    let keysUnderOldEk = 0;
    let repack: RepackProgress;
    let firstKillDone = 0;
    const killedAt: string[] = [];
    const records: SealedRecord[] = [];
    const objects: StoredObject[] = [];

    beforeAll(async () => {
      settings = {
        KEYSTRATA_DATA_DIR: data.path,
        KEYSTRATA_ROOT_KEY: newRootKey(),
        KEYSTRATA_REPACK_BATCH_SIZE: String(BATCH),
        // Slow enough to be killed mid-way at two points (about 40 batches).
        KEYSTRATA_REPACK_BATCH_PAUSE_MS: '100',
        KEYSTRATA_REPACK_INTERVAL_SECONDS: '1',
      };
      if (store === 'postgres') {
        database = await privateDatabase();
        settings.KEYSTRATA_DATABASE_URL = database.url;
        db = database.inspector;
      } else {
        db = sqliteInspector(join(data.path, 'keystrata.db'));
      }
      node = await nodes.start(settings);
    });

    afterAll(async () => {
      await nodes.killAll();
      client.close();
      await db?.close();
      await database?.drop();
      data.remove();
    });

    const cmk = async (): Promise<RepackProgress> => (await client.ok(node.url, 'GET', `${envPath}/cmk`, undefined)).repack as RepackProgress;

    /** What the database says right after a kill: unfinished, and `done` exactly the keys moved. */
    async function expectUnfinishedOnDisk(killedPid: number, seenDone: number): Promise<void> {
      const row = (await repackRow(db, environmentId))!;
      expect(row.id).toBe(repack.id);
      expect(row.state).toBe('running');
      expect(row.done).toBeGreaterThanOrEqual(seenDone);
      expect(row.done).toBeLessThan(row.total);
      expect(row.total).toBe(keysUnderOldEk);
      // The counter and the moves commit together: a batch cut short by the kill left no trace.
      expect(await countKeysUnder(db, oldEkId)).toBe(row.total - row.done);
      expect(await countKeysUnder(db, repack.toEkId)).toBe(row.done);
      expect((await keyRow(db, oldEkId))?.state).toBe('decrypt-only');
      expect(runnerPid(row.runner)).toBe(killedPid);
    }

    /**
     * kill -9 the node while the repack runs. On PostgreSQL, the moment its session is seen inside
     * a batch transaction (the batch's UPDATE running, or run and not yet committed), so that a
     * half-applied batch is what the kill leaves behind; on SQLite, whose transactions cannot be
     * seen from outside, after a random delay of up to about one batch.
     */
    async function killMidRepack(): Promise<string> {
      if (store === 'postgres') {
        const deadline = Date.now() + 1000;
        while (Date.now() < deadline) {
          const open = await db.all(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction') AND query LIKE 'WITH moved AS (UPDATE keys%'",
          );
          if (open.length > 0) {
            await node.kill9();
            return 'a batch transaction was open';
          }
        }
        await node.kill9();
        return 'no batch transaction seen open in 1 s';
      }
      await sleep(Math.floor(Math.random() * 150));
      await node.kill9();
      return 'after a random delay';
    }

    async function decryptAll(list: readonly SealedRecord[]): Promise<void> {
      await forEachConcurrently(list, CONCURRENCY, async (record) => {
        const body = { ciphertext: record.ciphertext, scope: record.scope, ...(record.context ? { context: record.context } : {}) };
        const opened = await client.ok(node.url, 'POST', `${envPath}/decrypt`, body);
        expect(opened.scope).toEqual(record.scope);
        expect(unb64(opened.plaintext as string)).toBe(record.plaintext);
      });
    }

    async function readAllObjects(list: readonly StoredObject[]): Promise<void> {
      await forEachConcurrently(list, CONCURRENCY, async (object) => {
        const current = await client.ok(node.url, 'GET', `${envPath}/objects/${object.id}`, undefined);
        expect(current).toMatchObject({ name: object.name, version: object.values.length, context: object.context, value: object.values.at(-1) });
        for (let version = 1; version < object.values.length; version++) {
          const old = await client.ok(node.url, 'GET', `${envPath}/objects/${object.id}/versions/${version}`, undefined);
          expect(old.value).toBe(object.values[version - 1]);
        }
      });
    }

    it(`writes ${CONNECTIONS + JOBS + EVENTS + LOGS} records and ${OBJECTS} objects through the HTTP API`, async () => {
      const workspace = await client.ok(node.url, 'POST', '/v1/workspaces', { name: `drill-kill-${store}` }, 201);
      envPath = `/v1/workspaces/${workspace.id}/environments/production`;
      environmentId = workspace.environments[0].id;
      const salt = randomBytes(4).toString('hex');
      const plan: SealedRecord[] = [];
      for (let i = 0; i < CONNECTIONS; i++) plan.push({ scope: { type: 'connection', id: `conn-${i}` }, plaintext: `connection ${i} ${salt}`, ciphertext: '' });
      for (let i = 0; i < JOBS; i++) plan.push({ scope: { type: 'job', id: `job-${i}` }, plaintext: `job ${i} ${salt}`, ciphertext: '' });
      for (let i = 0; i < EVENTS; i++) plan.push({ scope: { type: 'event', id: `event-${i}` }, plaintext: `event ${i} ${salt}`, ciphertext: '', context: { tenant: `t${i % 3}` } });
      for (let i = 0; i < LOGS; i++) plan.push({ scope: { type: 'log', id: `log-${i}` }, plaintext: `log line ${i} ${salt}`, ciphertext: '' });
      await forEachConcurrently(plan, CONCURRENCY, async (record) => {
        const body = { scope: record.scope, plaintext: b64(record.plaintext), ...(record.context ? { context: record.context } : {}) };
        record.ciphertext = (await client.ok(node.url, 'POST', `${envPath}/encrypt`, body)).ciphertext as string;
        records.push(record);
      });
      const planned: StoredObject[] = Array.from({ length: OBJECTS }, (_, i) => ({
        name: `object-${i}`,
        context: { organization_id: `org-${i % CONTEXTS}` },
        values: [`value ${i} v1 ${salt}`, ...(i % 3 === 0 ? [`value ${i} v2 ${salt}`] : [])],
        id: '',
      }));
      await forEachConcurrently(planned, CONCURRENCY, async (object) => {
        const created = await client.ok(node.url, 'POST', `${envPath}/objects`, { name: object.name, value: object.values[0], context: object.context }, 201);
        object.id = created.id as string;
        for (let version = 1; version < object.values.length; version++) {
          await client.ok(node.url, 'PUT', `${envPath}/objects/${object.id}`, { value: object.values[version], expectedVersion: version });
        }
        objects.push(object);
      });

      const keys = await client.ok(node.url, 'GET', `${envPath}/keys`, undefined);
      expect(keys.counts).toMatchObject({ connection: CONNECTIONS, job: JOBS, context: CONTEXTS, log: 1 });
      oldEkId = keys.ek.id as string;
      keysUnderOldEk = await countKeysUnder(db, oldEkId);
      // Connection, context and log keys, and one hourly key per period the writes spanned.
      expect(keysUnderOldEk).toBe(CONNECTIONS + CONTEXTS + 1 + (keys.counts.hourly as number));
    }, 300_000);

    it('rotates the environment key; kill -9 as soon as the repack has moved keys: the database shows it unfinished and consistent', async () => {
      const rotated = await client.ok(node.url, 'PUT', `${envPath}/cmk`, { provider: 'platform', rotateEnvironmentKey: true });
      repack = rotated.repack as RepackProgress;
      expect(repack).toMatchObject({ state: 'running', fromEkId: oldEkId, total: keysUnderOldEk });
      expect(repack.toEkId).not.toBe(oldEkId);

      const seen = await waitFor('the repack to make progress', 60_000, async () => {
        const now = await cmk();
        return now.done > 0 ? now : undefined;
      });
      expect(seen.state).toBe('running');
      // Several batches must remain, or there would be nothing left to resume.
      expect(seen.done, 'the repack went too fast to be killed early').toBeLessThanOrEqual(seen.total - MARGIN);
      killedAt.push(`done=${seen.done} (${await killMidRepack()})`);
      await expectUnfinishedOnDisk(node.pid, seen.done);
      firstKillDone = seen.done;
    }, 90_000);

    it('a restart on the same data resumes it (records stay readable meanwhile); kill -9 again past half way', async () => {
      node = await nodes.start(settings);
      // Read through both environment keys while keys sit under each, on a node whose caches are cold.
      await decryptAll(records.filter((_, i) => i % 50 === 0));
      await readAllObjects(objects.filter((_, i) => i % 10 === 0));

      const seen = await waitFor('the resumed repack to pass half way', 60_000, async () => {
        const now = await cmk();
        return now.done >= now.total / 2 ? now : undefined;
      });
      expect(seen.state).toBe('running');
      expect(seen.done, 'the repack went too fast to be killed late').toBeLessThanOrEqual(seen.total - MARGIN);
      expect(seen.done).toBeGreaterThan(firstKillDone);
      killedAt.push(`done=${seen.done} (${await killMidRepack()})`);
      await expectUnfinishedOnDisk(node.pid, seen.done);
    }, 90_000);

    it('after a second restart the repack completes: done == total, nothing left under the old EK, which is destroyed', async () => {
      node = await nodes.start(settings);
      const finished = await waitFor('the repack to complete', 90_000, async () => {
        const now = await cmk();
        return now.state === 'done' ? now : undefined;
      }, 100);
      expect(finished).toMatchObject({ id: repack.id, done: keysUnderOldEk, total: keysUnderOldEk, pausedReason: null, fromEkId: oldEkId, toEkId: repack.toEkId });

      const row = (await repackRow(db, environmentId))!;
      expect(row).toMatchObject({ state: 'done', done: keysUnderOldEk, total: keysUnderOldEk });
      expect(runnerPid(row.runner)).toBe(node.pid);
      expect(await countKeysUnder(db, oldEkId)).toBe(0);
      expect(await countKeysUnder(db, repack.toEkId)).toBe(keysUnderOldEk);
      expect(await keyRow(db, oldEkId)).toEqual({ state: 'destroyed', wrappedBytes: 0 });

      const oldEk = await client.ok(node.url, 'GET', `${envPath}/keys/${oldEkId}`, undefined);
      expect(oldEk.state).toBe('destroyed');
      const keys = await client.ok(node.url, 'GET', `${envPath}/keys`, undefined);
      expect(keys.ek).toMatchObject({ id: repack.toEkId, state: 'active' });
      expect(keys.counts.connection).toBe(CONNECTIONS);
      console.info(`drill kill-mid-repack (${store}): ${keysUnderOldEk} keys repacked; killed at ${killedAt.join(' and at ')}`);
    }, 120_000);

    it(`every record (${CONNECTIONS + JOBS + EVENTS + LOGS}) decrypts to its plaintext and every object version reads back`, async () => {
      expect(records).toHaveLength(CONNECTIONS + JOBS + EVENTS + LOGS);
      await decryptAll(records);
      expect(objects).toHaveLength(OBJECTS);
      await readAllObjects(objects);
      // A clean stop after all this: the repack left nothing that blocks a graceful shutdown.
      expect(await node.stop()).toBe(0);
    }, 150_000);
  });
}
