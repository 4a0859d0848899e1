/**
 * The raw SQL peer of a full repack: the same rows moved to another parent, in batches of the same
 * size, on the same database — without keystrata, without crypto. Its rows are a copy of the
 * environment's keys (same columns, same indexes, same bytes) in a scratch table next to `keys`.
 * One batch: the page of keys still under the old parent in id order (the query listKeysUnder
 * makes), then one write transaction that moves each of them if it still has the old parent and
 * the bytes read (the compare-and-set applyRepackBatch makes), with new wrapped bytes of the same
 * size. SQLite: a prepared UPDATE per key in one IMMEDIATE transaction; PostgreSQL: one
 * `UPDATE … FROM unnest(…)` statement per batch.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { COLUMNS } from '../../src/store/rows.js';
import { nowMs } from './repack-support.js';

export interface PeerRun {
  readonly ms: number;
  readonly moved: number;
  readonly batches: number;
  /** Time in the page reads, and in the write transactions. */
  readonly listMs: number;
  readonly updateMs: number;
}

export interface RawPeer {
  /** Copies the keys directly under `ekId` into the scratch table; returns how many. */
  prepare(environmentId: string, ekId: string): Promise<number>;
  /** Moves every scratch row to the other of two parents, `batchSize` rows per transaction. */
  run(batchSize: number): Promise<PeerRun>;
  /** Keys in keystrata's own table directly under `parentId` (EKs excepted). */
  countUnder(environmentId: string, parentId: string): Promise<number>;
  /** What the database knows about the keys table (statistics, dead rows): the planner's input. */
  describe(): Promise<string>;
  /** PostgreSQL: ANALYZE keystrata's keys table (what autovacuum does when it is on). */
  analyzeKeys?(): Promise<void>;
  close(): Promise<void>;
}

const SCRATCH = 'bench_peer_keys';
const PARENTS = ['bench-peer-parent-a', 'bench-peer-parent-b'] as const;
/**
 * INSERT … SELECT of the environment's keys under one EK into the scratch table, the parent replaced
 * by `parent`, in the physical order of keys (`rowid` / `ctid`): keystrata inserted them one by one
 * in random id order, so a walk in id order touches pages all over the table; a copy made in id
 * order would give the peer a locality keystrata's table does not have.
 */
function copyRows(parent: string, environmentId: string, ekId: string, physicalOrder: string): string {
  const selected = COLUMNS.keys.map((c) => (c === 'parent_id' ? parent : c)).join(', ');
  return `INSERT INTO ${SCRATCH} (${COLUMNS.keys.join(', ')}) SELECT ${selected} FROM keys
    WHERE environment_id = ${environmentId} AND parent_id = ${ekId} AND kind <> 'ek' ORDER BY ${physicalOrder}`;
}

/** New wrapped bytes of the same size (one byte changed): what a re-wrap writes, without the crypto. */
function changed(wrapped: Buffer): Buffer {
  const next = Buffer.from(wrapped);
  next[0] = next[0]! ^ 1;
  return next;
}

interface PeerRow {
  readonly id: string;
  readonly wrapped: Buffer;
}

/** Tracks which parent the scratch rows are under, and times a run's two phases. */
function peerLoop(listPage: (from: string, limit: number) => Promise<PeerRow[]>, apply: (from: string, to: string, rows: PeerRow[]) => Promise<number>) {
  let environmentId = '';
  let parent = '';
  return {
    setRows(environment: string, under: string) {
      environmentId = environment;
      parent = under;
    },
    get environmentId() {
      return environmentId;
    },
    async run(batchSize: number): Promise<PeerRun> {
      const to = parent === PARENTS[0] ? PARENTS[1] : PARENTS[0];
      let listMs = 0;
      let updateMs = 0;
      let moved = 0;
      let batches = 0;
      const started = nowMs();
      for (;;) {
        const t0 = nowMs();
        const rows = await listPage(parent, batchSize);
        const t1 = nowMs();
        listMs += t1 - t0;
        if (rows.length === 0) break;
        moved += await apply(parent, to, rows);
        updateMs += nowMs() - t1;
        batches++;
      }
      const ms = nowMs() - started;
      parent = to;
      return { ms, moved, batches, listMs, updateMs };
    },
  };
}

export function sqlitePeer(path: string): RawPeer {
  const db = new Database(path);
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  // The keys table's own DDL and indexes, renamed.
  const ddl = db.prepare<[], { type: string; sql: string }>(`SELECT type, sql FROM sqlite_master WHERE tbl_name = 'keys' AND sql IS NOT NULL ORDER BY type DESC`).all();
  db.exec(`DROP TABLE IF EXISTS ${SCRATCH}`);
  for (const { sql } of ddl) {
    db.exec(sql.replace(/^CREATE TABLE keys\b/, `CREATE TABLE ${SCRATCH}`).replace(/^CREATE (UNIQUE )?INDEX (\w+) ON keys\b/, `CREATE $1INDEX ${SCRATCH}_$2 ON ${SCRATCH}`));
  }
  const list = db.prepare<[string, string, number], PeerRow>(`SELECT id, wrapped FROM ${SCRATCH} WHERE environment_id = ? AND parent_id = ? AND kind <> 'ek' ORDER BY id LIMIT ?`);
  const update = db.prepare<[string, Buffer, string, string, string, Buffer]>(
    `UPDATE ${SCRATCH} SET parent_id = ?, wrapped = ? WHERE id = ? AND environment_id = ? AND parent_id = ? AND kind <> 'ek' AND wrapped = ?`,
  );
  const count = db.prepare<[string, string], { n: number }>(`SELECT count(*) AS n FROM keys WHERE environment_id = ? AND parent_id = ? AND kind <> 'ek'`);
  const loop = peerLoop(
    async (from, limit) => list.all(loop.environmentId, from, limit),
    async (from, to, rows) =>
      db
        .transaction(() => {
          let moved = 0;
          for (const row of rows) moved += update.run(to, changed(row.wrapped), row.id, loop.environmentId, from, row.wrapped).changes;
          return moved;
        })
        .immediate(),
  );
  return {
    async prepare(environmentId, ekId) {
      const copied = db
        .prepare(copyRows('?', '?', '?', 'rowid'))
        .run(PARENTS[0], environmentId, ekId).changes;
      loop.setRows(environmentId, PARENTS[0]);
      return copied;
    },
    run: (batchSize) => loop.run(batchSize),
    countUnder: async (environmentId, parentId) => count.get(environmentId, parentId)?.n ?? 0,
    async describe() {
      const stat = db.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE name = 'sqlite_stat1'`).get() as { n: number };
      return stat.n === 0 ? 'no ANALYZE statistics (sqlite_stat1 absent)' : 'sqlite_stat1 present';
    },
    async close() {
      db.exec(`DROP TABLE IF EXISTS ${SCRATCH}`);
      db.close();
    },
  };
}

export async function postgresPeer(url: string, schema: string): Promise<RawPeer> {
  const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  await client.connect();
  await client.query(`DROP TABLE IF EXISTS ${SCRATCH}`);
  // Same columns, defaults, CHECKs and indexes (the COLLATE "C" one of listKeysUnder included).
  await client.query(`CREATE TABLE ${SCRATCH} (LIKE keys INCLUDING ALL)`);
  const loop = peerLoop(
    async (from, limit) =>
      (
        await client.query<PeerRow>({
          name: 'bench_peer_list',
          text: `SELECT id, wrapped FROM ${SCRATCH} WHERE environment_id = $1 AND parent_id = $2 AND kind <> 'ek' ORDER BY id COLLATE "C" LIMIT $3`,
          values: [loop.environmentId, from, limit],
        })
      ).rows,
    async (from, to, rows) =>
      (
        await client.query({
          name: 'bench_peer_update',
          text: `UPDATE ${SCRATCH} k SET parent_id = $3, wrapped = u.wrapped
            FROM unnest($4::text[], $5::bytea[], $6::bytea[]) AS u (id, expected, wrapped)
            WHERE k.id = u.id AND k.environment_id = $1 AND k.parent_id = $2 AND k.kind <> 'ek' AND k.wrapped = u.expected`,
          values: [loop.environmentId, from, to, rows.map((r) => r.id), rows.map((r) => r.wrapped), rows.map((r) => changed(r.wrapped))],
        })
      ).rowCount ?? 0,
  );
  return {
    async prepare(environmentId, ekId) {
      const copied = await client.query(
copyRows('$1::text', '$2', '$3', 'ctid'), [PARENTS[0], environmentId, ekId]
      );
      // The raw limit: with statistics the planner probes the primary key for each row of the batch.
      await client.query(`ANALYZE ${SCRATCH}`);
      loop.setRows(environmentId, PARENTS[0]);
      return copied.rowCount ?? 0;
    },
    run: (batchSize) => loop.run(batchSize),
    async countUnder(environmentId, parentId) {
      const result = await client.query<{ n: string }>(`SELECT count(*) AS n FROM keys WHERE environment_id = $1 AND parent_id = $2 AND kind <> 'ek'`, [environmentId, parentId]);
      return Number(result.rows[0]?.n ?? 0);
    },
    async describe() {
      const autovacuum = (await client.query<{ setting: string }>(`SELECT setting FROM pg_settings WHERE name = 'autovacuum'`)).rows[0]?.setting;
      const stats = await client.query<{ reltuples: number; last_analyze: Date | null; last_autoanalyze: Date | null; n_live_tup: string; n_dead_tup: string }>(
        `SELECT c.reltuples, s.last_analyze, s.last_autoanalyze, s.n_live_tup, s.n_dead_tup FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid
          WHERE c.oid = 'keys'::regclass`,
      );
      const row = stats.rows[0];
      if (!row) return `autovacuum ${autovacuum}; keys not found`;
      const analyzed = row.last_analyze ?? row.last_autoanalyze;
      return `autovacuum ${autovacuum}; keys: ${analyzed ? `analyzed ${analyzed.toISOString()}` : 'never analyzed'}, reltuples ${row.reltuples}, ${row.n_live_tup} live and ${row.n_dead_tup} dead rows`;
    },
    async analyzeKeys() {
      await client.query('ANALYZE keys');
    },
    async close() {
      await client.query(`DROP TABLE IF EXISTS ${SCRATCH}`);
      await client.end();
    },
  };
}
