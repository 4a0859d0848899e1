import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { sqlitePath } from '../../src/service/keystrata.js';
import { TEST_DATABASE_URL, type TestStoreHandle } from './test-keystrata.js';

/**
 * Read what a store holds without going through the Store interface: the raw bytes of the SQLite
 * files, or every row of every table as text. Used to prove that no plaintext reaches the
 * database and that a failed start left the database untouched.
 */

/** Every file in the data directory (database, WAL, shared memory, root key), concatenated. */
export function rawDataDirBytes(handle: TestStoreHandle): Buffer {
  const files = readdirSync(handle.dataDir)
    .map((name) => join(handle.dataDir, name))
    .filter((path) => statSync(path).isFile());
  return Buffer.concat(files.map((path) => readFileSync(path)));
}

function cellText(value: unknown): string {
  if (Buffer.isBuffer(value)) return `\\x${value.toString('hex')}`;
  if (value instanceof Date) return value.toISOString();
  return typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
}

/**
 * Every row of every table, one line per row, in a stable order. Binary columns appear as hex
 * (`\x…`), as PostgreSQL prints bytea.
 */
export async function dumpTables(handle: TestStoreHandle): Promise<string> {
  const lines: string[] = [];
  if (handle.kind === 'sqlite') {
    const db = new Database(sqlitePath({ dataDir: handle.dataDir }), { readonly: true, fileMustExist: true });
    try {
      const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as { name: string }[];
      for (const { name } of tables) {
        const rows = db.prepare(`SELECT * FROM "${name}"`).all() as Record<string, unknown>[];
        for (const row of rows) lines.push(`${name}: ${Object.entries(row).map(([k, v]) => `${k}=${cellText(v)}`).join(' ')}`);
      }
    } finally {
      db.close();
    }
  } else {
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      const tables = await client.query<{ table_name: string }>(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`,
        [handle.schema],
      );
      for (const { table_name: name } of tables.rows) {
        const rows = await client.query<{ row: string }>(`SELECT t::text AS row FROM "${handle.schema}"."${name}" t`);
        for (const { row } of rows.rows) lines.push(`${name}: ${row}`);
      }
    } finally {
      await client.end();
    }
  }
  return lines.sort().join('\n');
}

/** The encodings a secret could be stored under by mistake: raw, hex, base64, base64url. */
export function encodingsOf(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  return [secret, bytes.toString('hex'), bytes.toString('base64'), bytes.toString('base64url')];
}
