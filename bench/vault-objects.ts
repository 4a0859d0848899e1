/**
 * Vault object create and read throughput through keystrata's service API (encryption, data key
 * per version, context key, store writes), 32 concurrent callers, on embedded SQLite and on
 * PostgreSQL — each compared in the same run with the raw driver writing/reading a row of the same
 * shape (two inserts in one transaction, two point reads): the database's own ceiling.
 *
 *   npm run build && node dist/bench/vault-objects.js [--count 6000] [--concurrency 32] [--stores sqlite,postgres]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { loadConfig } from '../src/config.js';
import { openKeystrata } from '../src/service/keystrata.js';
import { openStore } from '../src/store/open-store.js';
import { machineLine } from './lib/measure.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '6000' },
    concurrency: { type: 'string', default: '32' },
    stores: { type: 'string', default: 'sqlite,postgres' },
  },
});
const count = Number(values.count);
const concurrency = Number(values.concurrency);
const databaseUrl = process.env.KEYSTRATA_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const value = randomBytes(96).toString('base64'); // a 128-character secret
const context = { organization_id: 'org_bench' };

/** Run `op(i)` for i in [0, count) with `concurrency` workers; ops per second. */
async function throughput(op: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) await op(i);
    }),
  );
  return (count * 1e9) / Number(process.hrtime.bigint() - start);
}

async function keystrataRun(kind: 'sqlite' | 'postgres', dataDir: string, schema: string) {
  const config = loadConfig({ KEYSTRATA_DATA_DIR: dataDir, KEYSTRATA_LOG_LEVEL: 'silent' }, dataDir);
  const store = await openStore(kind === 'postgres' ? { databaseUrl, sqlitePath: '', postgresSchema: schema } : { sqlitePath: join(dataDir, 'keystrata.db') });
  const ks = await openKeystrata(config, { store });
  try {
    const workspace = await ks.workspaces.createWorkspace('bench');
    const env = await ks.workspaces.resolveEnvironment(workspace.id, 'production');
    await ks.objects.create(env, { name: 'warm-up', value, context });
    const ids: string[] = new Array(count);
    const create = await throughput(async (i) => {
      ids[i] = (await ks.objects.create(env, { name: `secret-${i}`, value, context })).id;
    });
    const read = await throughput(async (i) => {
      const object = await ks.objects.get(env, ids[(i * 7919) % count]!);
      if (object.value !== value) throw new Error('read back a wrong value');
    });
    return { create, read };
  } finally {
    await ks.close();
  }
}

// Raw peers: the same row shapes (object row + version row with a 61-byte wrapped key and a
// ciphertext of the same size), written in one transaction and read with two point queries.
const ciphertext = randomBytes(value.length + 100);
const wrapped = randomBytes(61);

async function rawSqlite(dataDir: string) {
  const db = new Database(join(dataDir, 'raw.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE o (id TEXT PRIMARY KEY, env TEXT, name TEXT, context TEXT, metadata TEXT, version INTEGER, created_at INTEGER, UNIQUE(env, name));
           CREATE TABLE v (object_id TEXT REFERENCES o(id), version INTEGER, dk TEXT, wrapped BLOB, ct BLOB, created_at INTEGER, PRIMARY KEY (object_id, version));`);
  const insO = db.prepare('INSERT INTO o VALUES (?, ?, ?, ?, ?, 1, ?)');
  const insV = db.prepare('INSERT INTO v VALUES (?, 1, ?, ?, ?, ?)');
  const getO = db.prepare('SELECT * FROM o WHERE id = ? AND env = ?');
  const getV = db.prepare('SELECT * FROM v WHERE object_id = ? AND version = ?');
  const insert = db.transaction((i: number) => {
    insO.run(`id-${i}`, 'env', `secret-${i}`, '{"organization_id":"org_bench"}', '{}', Date.now());
    insV.run(`id-${i}`, `dk-${i}`, wrapped, ciphertext, Date.now());
  });
  const create = await throughput(async (i) => insert(i));
  const read = await throughput(async (i) => {
    const id = `id-${(i * 7919) % count}`;
    getO.get(id, 'env');
    getV.get(id, 1);
  });
  db.close();
  return { create, read };
}

async function rawPostgres(schema: string) {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 10, options: `-c search_path=${schema}` });
  await pool.query(`CREATE TABLE o (id TEXT PRIMARY KEY, env TEXT, name TEXT, context JSONB, metadata JSONB, version INTEGER, created_at TIMESTAMPTZ, UNIQUE(env, name));
                    CREATE TABLE v (object_id TEXT REFERENCES o(id), version INTEGER, dk TEXT, wrapped BYTEA, ct BYTEA, created_at TIMESTAMPTZ, PRIMARY KEY (object_id, version));`);
  const create = await throughput(async (i) => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query({ name: 'ro', text: 'INSERT INTO o VALUES ($1, $2, $3, $4, $5, 1, now())', values: [`id-${i}`, 'env', `secret-${i}`, '{"organization_id":"org_bench"}', '{}'] });
      await client.query({ name: 'rv', text: 'INSERT INTO v VALUES ($1, 1, $2, $3, $4, now())', values: [`id-${i}`, `dk-${i}`, wrapped, ciphertext] });
      await client.query('COMMIT');
    } finally {
      client.release();
    }
  });
  const read = await throughput(async (i) => {
    const id = `id-${(i * 7919) % count}`;
    await pool.query({ name: 'go', text: 'SELECT * FROM o WHERE id = $1 AND env = $2', values: [id, 'env'] });
    await pool.query({ name: 'gv', text: 'SELECT * FROM v WHERE object_id = $1 AND version = $2', values: [id, 1] });
  });
  await pool.end();
  return { create, read };
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

const targets = { sqlite: 3000, postgres: 2000 } as const;
console.log(`# vault objects: ${count} creates then ${count} reads, ${concurrency} concurrent callers, in-process service API (${machineLine()})`);
for (const kind of values.stores.split(',') as ('sqlite' | 'postgres')[]) {
  const dataDir = mkdtempSync(join(tmpdir(), 'keystrata-objects-bench-'));
  const tag = randomBytes(4).toString('hex');
  try {
    const ours = kind === 'postgres' ? await withSchema(`ks_bench_${tag}`, () => keystrataRun(kind, dataDir, `ks_bench_${tag}`)) : await keystrataRun(kind, dataDir, '');
    const raw = kind === 'postgres' ? await withSchema(`raw_bench_${tag}`, () => rawPostgres(`raw_bench_${tag}`)) : await rawSqlite(dataDir);
    const f = (n: number) => Math.round(n).toLocaleString('en-US').padStart(7);
    console.log(`${kind.padEnd(9)} create ${f(ours.create)}/s (raw driver ${f(raw.create)}/s, ${((ours.create / raw.create) * 100).toFixed(0)}%)   read ${f(ours.read)}/s (raw driver ${f(raw.read)}/s, ${((ours.read / raw.read) * 100).toFixed(0)}%)   target create >= ${targets[kind]}/s: ${ours.create >= targets[kind] ? 'met' : 'NOT met'}`);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}
