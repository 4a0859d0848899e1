import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { spawnServer, type SpawnedServer } from '../support/spawn-server.js';
import { TEST_DATABASE_URL } from '../support/test-keystrata.js';

/**
 * Real server processes for the failure drills: the compiled keystrata (`npm test` builds dist/
 * first), started as children bound to 127.0.0.1 on a free port, killed with SIGKILL when a drill
 * says so. Every child is tracked so that afterAll can kill whatever is still running, whatever
 * failed before; only our own child pids are ever signalled.
 */

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** The launcher of the compiled server; KEYSTRATA_DRILL_BIN runs the drills against another build. */
const bin = process.env.KEYSTRATA_DRILL_BIN ?? join(repoRoot, 'bin/keystrata.js');

export const DRILL_ADMIN_TOKEN = `drill-admin-token-${'d'.repeat(32)}`;

export interface DrillNode {
  readonly url: string;
  readonly pid: number;
  readonly server: SpawnedServer;
  /** SIGKILL (kill -9) and wait until the process is gone. */
  kill9(): Promise<void>;
  /** SIGTERM (graceful shutdown); resolves with the exit code. */
  stop(): Promise<number | null>;
  alive(): boolean;
}

export interface DrillNodes {
  start(settings: Readonly<Record<string, string>>): Promise<DrillNode>;
  /** SIGKILL every child still running (afterAll). */
  killAll(): Promise<void>;
}

/** The process environment without any keystrata setting of the developer's shell. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('KEYSTRATA_') && name !== 'PORT') env[name] = value;
  }
  return env;
}

export function drillNodes(): DrillNodes {
  const children: DrillNode[] = [];
  return {
    async start(settings) {
      const env = {
        ...baseEnv(),
        KEYSTRATA_HOST: '127.0.0.1',
        PORT: '0',
        KEYSTRATA_ADMIN_TOKEN: DRILL_ADMIN_TOKEN,
        KEYSTRATA_LOG_LEVEL: 'error',
        KEYSTRATA_CLIENT_RATE_LIMIT_PER_SECOND: '1000000',
        KEYSTRATA_CMK_REPLACE_INTERVAL_HOURS: '0',
        ...settings,
      };
      const server = await spawnServer(process.execPath, [bin, 'serve'], env);
      const { child } = server;
      const alive = () => child.exitCode === null && child.signalCode === null;
      const node: DrillNode = {
        url: server.url,
        pid: child.pid!,
        server,
        alive,
        async kill9() {
          if (!alive()) return;
          const exited = once(child, 'exit');
          child.kill('SIGKILL');
          await exited;
        },
        stop: () => server.stop(),
      };
      children.push(node);
      return node;
    },
    async killAll() {
      await Promise.all(children.map((node) => node.kill9()));
    },
  };
}

/** A temporary data directory, removed by `remove()`. */
export function tempDir(prefix: string): { readonly path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export const newRootKey = (): string => randomBytes(32).toString('base64');

/** `host:pid` as the repacker writes it into repacks.runner → the pid, if it names this host. */
export function runnerPid(runner: string | null | undefined): number | undefined {
  if (!runner) return undefined;
  const at = runner.lastIndexOf(':');
  if (runner.slice(0, at) !== hostname()) return undefined;
  const pid = Number(runner.slice(at + 1));
  return Number.isInteger(pid) ? pid : undefined;
}

// ---- The database, read behind the server's back ------------------------------------------------

/**
 * Read-only SQL over the store a drill's servers use (`?` placeholders on both stores). Used to see
 * the state a killed node left, and to check invariants no HTTP route shows (one row per identity).
 */
export interface DbInspector {
  all<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export function sqliteInspector(file: string): DbInspector {
  let db: Database.Database | undefined;
  return {
    async all<T>(sql: string, params: readonly unknown[] = []) {
      // Opened on first use (the server creates the file); readonly, so it never checkpoints or writes.
      db ??= new Database(file, { readonly: true, fileMustExist: true });
      return db.prepare(sql).all(...params) as T[];
    },
    async close() {
      db?.close();
    },
  };
}

function pgInspector(url: string): DbInspector {
  let client: pg.Client | undefined;
  return {
    async all<T>(sql: string, params: readonly unknown[] = []) {
      if (!client) {
        client = new pg.Client({ connectionString: url });
        await client.connect();
      }
      let n = 0;
      const text = sql.replace(/\?/g, () => `$${++n}`);
      return (await client.query(text, [...params])).rows as T[];
    },
    async close() {
      await client?.end();
    },
  };
}

export interface DrillDatabase {
  /** KEYSTRATA_DATABASE_URL for the servers. */
  readonly url: string;
  readonly inspector: DbInspector;
  drop(): Promise<void>;
}

/**
 * A private PostgreSQL database for one drill. The server has no schema setting (the store's
 * `postgresSchema` is for in-process tests), and a deployment without a schema takes its advisory
 * locks (`keystrata::repack`) and NOTIFY channel by name per database — so two drills sharing the
 * test database would wait on each other's repack lock. A database of its own isolates all three.
 */
export async function privateDatabase(): Promise<DrillDatabase> {
  const name = `ks_drill_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  const inspector = pgInspector(url.toString());
  return {
    url: url.toString(),
    inspector,
    async drop() {
      await inspector.close().catch(() => undefined);
      const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await client.connect();
      try {
        // FORCE: a killed node's sessions may not be gone yet.
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** The repacks row as stored (numbers as numbers on both stores). */
export interface RepackRow {
  readonly id: string;
  readonly state: string;
  readonly done: number;
  readonly total: number;
  readonly runner: string | null;
  readonly from_ek_id: string;
  readonly to_ek_id: string;
}

export async function repackRow(db: DbInspector, environmentId: string): Promise<RepackRow | undefined> {
  const rows = await db.all<RepackRow>(
    'SELECT id, state, done, total, runner, from_ek_id, to_ek_id FROM repacks WHERE environment_id = ? ORDER BY started_at DESC LIMIT 1',
    [environmentId],
  );
  const row = rows[0];
  return row ? { ...row, done: Number(row.done), total: Number(row.total) } : undefined;
}

/** Keys (not EKs) whose parent is `parentId`. */
export async function countKeysUnder(db: DbInspector, parentId: string): Promise<number> {
  const rows = await db.all<{ n: number | string }>("SELECT count(*) AS n FROM keys WHERE parent_id = ? AND kind <> 'ek'", [parentId]);
  return Number(rows[0]?.n ?? 0);
}

export async function keyRow(db: DbInspector, keyId: string): Promise<{ state: string; wrappedBytes: number } | undefined> {
  const rows = await db.all<{ state: string; n: number | string }>('SELECT state, length(wrapped) AS n FROM keys WHERE id = ?', [keyId]);
  const row = rows[0];
  return row ? { state: row.state, wrappedBytes: Number(row.n) } : undefined;
}
