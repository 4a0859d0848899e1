import Database from 'better-sqlite3';
import pg from 'pg';
import { sqlitePath } from '../../src/service/keystrata.js';
import { TEST_DATABASE_URL, type TestStoreHandle } from './test-keystrata.js';

/**
 * Raw access to the audit tables (audit_entries, audit_heads) of a test store, bypassing the Store
 * interface and keystrata entirely: what someone with write access to the database could do. Used
 * to tamper with the chain and check that `audit verify` notices. Same calls on both backends.
 */

/** One stored audit row; `at` as epoch milliseconds on both backends. */
export interface RawAuditRow {
  readonly workspaceId: string;
  readonly seq: number;
  readonly id: string;
  readonly environmentId: string | null;
  readonly at: number;
  readonly sealing: string;
  readonly body: Buffer;
  readonly link: Buffer;
}

export interface RawAuditDb {
  /** A workspace's entries in seq order. */
  rows(workspaceId: string): Promise<RawAuditRow[]>;
  row(workspaceId: string, seq: number): Promise<RawAuditRow>;
  head(workspaceId: string): Promise<{ seq: number; link: Buffer } | undefined>;
  /** Overwrites columns of one entry (found by workspace and seq). */
  update(workspaceId: string, seq: number, patch: Partial<Omit<RawAuditRow, 'workspaceId' | 'seq'>> & { workspaceId?: string; seq?: number }): Promise<void>;
  insert(row: RawAuditRow): Promise<void>;
  deleteEntry(workspaceId: string, seq: number): Promise<void>;
  deleteEntriesAfter(workspaceId: string, seq: number): Promise<void>;
  /** Adds `by` to the seq of every entry with seq >= fromSeq (making room for an inserted row). */
  shiftSeqs(workspaceId: string, fromSeq: number, by: number): Promise<void>;
  setHead(workspaceId: string, head: { seq: number; link: Buffer }): Promise<void>;
  deleteHead(workspaceId: string): Promise<void>;
  close(): Promise<void>;
}

const COLUMN: Record<keyof RawAuditRow, string> = {
  workspaceId: 'workspace_id',
  seq: 'seq',
  id: 'id',
  environmentId: 'environment_id',
  at: 'at',
  sealing: 'sealing',
  body: 'body',
  link: 'link',
};

interface Sql {
  all(sql: string, params: readonly unknown[]): Promise<Record<string, unknown>[]>;
  run(sql: string, params: readonly unknown[]): Promise<number>;
  /** How `at` is read and written: epoch ms as an integer (SQLite) or timestamptz (PostgreSQL). */
  readonly atSelect: string;
  readonly atParam: (placeholder: string) => string;
  close(): Promise<void>;
}

function sqliteSql(handle: TestStoreHandle): Sql {
  const db = new Database(sqlitePath({ dataDir: handle.dataDir }), { fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  return {
    async all(sql, params) {
      return db.prepare(sql).all(...params) as Record<string, unknown>[];
    },
    async run(sql, params) {
      return db.prepare(sql).run(...params).changes;
    },
    atSelect: 'at',
    atParam: (p) => p,
    async close() {
      db.close();
    },
  };
}

async function postgresSql(handle: TestStoreHandle): Promise<Sql> {
  if (handle.schema === undefined) throw new Error('a postgres test handle has a schema');
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  await client.query(`SET search_path TO "${handle.schema}"`);
  // `?` placeholders in, `$n` out: one SQL text for both backends.
  const numbered = (sql: string) => {
    let n = 0;
    return sql.replace(/\?/g, () => `$${++n}`);
  };
  return {
    async all(sql, params) {
      return (await client.query(numbered(sql), [...params])).rows as Record<string, unknown>[];
    },
    async run(sql, params) {
      return (await client.query(numbered(sql), [...params])).rowCount ?? 0;
    },
    atSelect: `(extract(epoch from at) * 1000)::float8 AS at`,
    atParam: (p) => `to_timestamp(${p}::float8 / 1000)`,
    async close() {
      await client.end();
    },
  };
}

function toRow(raw: Record<string, unknown>): RawAuditRow {
  return {
    workspaceId: String(raw['workspace_id']),
    seq: Number(raw['seq']),
    id: String(raw['id']),
    environmentId: raw['environment_id'] === null ? null : String(raw['environment_id']),
    at: Math.round(Number(raw['at'])),
    sealing: String(raw['sealing']),
    body: Buffer.from(raw['body'] as Uint8Array),
    link: Buffer.from(raw['link'] as Uint8Array),
  };
}

export async function openRawAudit(handle: TestStoreHandle): Promise<RawAuditDb> {
  const sql = handle.kind === 'sqlite' ? sqliteSql(handle) : await postgresSql(handle);
  const select = `SELECT workspace_id, seq, id, environment_id, ${sql.atSelect}, sealing, body, link FROM audit_entries`;
  const db: RawAuditDb = {
    async rows(workspaceId) {
      return (await sql.all(`${select} WHERE workspace_id = ? ORDER BY seq`, [workspaceId])).map(toRow);
    },
    async row(workspaceId, seq) {
      const [found] = await sql.all(`${select} WHERE workspace_id = ? AND seq = ?`, [workspaceId, seq]);
      if (found === undefined) throw new Error(`no audit entry ${seq} in workspace ${workspaceId}`);
      return toRow(found);
    },
    async head(workspaceId) {
      const [found] = await sql.all(`SELECT seq, link FROM audit_heads WHERE workspace_id = ?`, [workspaceId]);
      return found === undefined ? undefined : { seq: Number(found['seq']), link: Buffer.from(found['link'] as Uint8Array) };
    },
    async update(workspaceId, seq, patch) {
      const sets: string[] = [];
      const params: unknown[] = [];
      for (const [key, value] of Object.entries(patch) as [keyof RawAuditRow, unknown][]) {
        sets.push(`${COLUMN[key]} = ${key === 'at' ? sql.atParam('?') : '?'}`);
        params.push(value);
      }
      const changed = await sql.run(`UPDATE audit_entries SET ${sets.join(', ')} WHERE workspace_id = ? AND seq = ?`, [...params, workspaceId, seq]);
      if (changed !== 1) throw new Error(`tamper: entry ${seq} of ${workspaceId} not updated`);
    },
    async insert(row) {
      await sql.run(
        `INSERT INTO audit_entries (workspace_id, seq, id, environment_id, at, sealing, body, link) VALUES (?, ?, ?, ?, ${sql.atParam('?')}, ?, ?, ?)`,
        [row.workspaceId, row.seq, row.id, row.environmentId, row.at, row.sealing, row.body, row.link],
      );
    },
    async deleteEntry(workspaceId, seq) {
      const changed = await sql.run(`DELETE FROM audit_entries WHERE workspace_id = ? AND seq = ?`, [workspaceId, seq]);
      if (changed !== 1) throw new Error(`tamper: entry ${seq} of ${workspaceId} not deleted`);
    },
    async deleteEntriesAfter(workspaceId, seq) {
      await sql.run(`DELETE FROM audit_entries WHERE workspace_id = ? AND seq > ?`, [workspaceId, seq]);
    },
    async shiftSeqs(workspaceId, fromSeq, by) {
      // Two steps, so that no intermediate row collides with another on (workspace_id, seq).
      const far = 1_000_000_000;
      await sql.run(`UPDATE audit_entries SET seq = seq + ? WHERE workspace_id = ? AND seq >= ?`, [far, workspaceId, fromSeq]);
      await sql.run(`UPDATE audit_entries SET seq = seq - ? WHERE workspace_id = ? AND seq >= ?`, [far - by, workspaceId, far + fromSeq]);
    },
    async setHead(workspaceId, head) {
      const changed = await sql.run(`UPDATE audit_heads SET seq = ?, link = ? WHERE workspace_id = ?`, [head.seq, head.link, workspaceId]);
      if (changed === 0) await sql.run(`INSERT INTO audit_heads (workspace_id, seq, link) VALUES (?, ?, ?)`, [workspaceId, head.seq, head.link]);
    },
    async deleteHead(workspaceId) {
      const changed = await sql.run(`DELETE FROM audit_heads WHERE workspace_id = ?`, [workspaceId]);
      if (changed !== 1) throw new Error(`tamper: head of ${workspaceId} not deleted`);
    },
    close: () => sql.close(),
  };
  return db;
}

/** Runs `fn` with a raw connection to the test store, closed afterwards. */
export async function withRawAudit<T>(handle: TestStoreHandle, fn: (db: RawAuditDb) => Promise<T>): Promise<T> {
  const db = await openRawAudit(handle);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}
