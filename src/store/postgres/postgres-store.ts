/**
 * The PostgreSQL store: a pg Pool shared by all requests of this node; several nodes may share one
 * database. Uniqueness and compare-and-set rules live in the schema and in single statements, so
 * they hold across nodes; methods of several statements run in one transaction on one client.
 */
import pg from 'pg';
import type { PoolClient, QueryConfig, QueryResult, QueryResultRow } from 'pg';
import { decodeObjectCursor, decodeWorkspaceCursor, encodeObjectCursor, encodeWorkspaceCursor, toPage } from '../cursor.js';
import { checkKey, checkLimit, checkNewEnvironment, checkNewObject, checkNextVersion } from '../preconditions.js';
import {
  SCOPED_KINDS, kindCounts, toCmk, toEnvironment, toKey, toObject, toObjectVersion, toWorkspace,
  type EnvironmentRow, type KeyRow, type KindCountRow, type ObjectRow, type ObjectVersionRow, type SettingRow, type WorkspaceRow,
} from '../rows.js';
import { StoreConflictError, type KeyRecord, type NewEnvironment, type Store } from '../store.js';
import { asStoreError } from './connection-errors.js';
import { checkSchemaName, migratePostgres } from './migrations.js';
import { SQL, values, type StatementName } from './statements.js';

export interface PostgresStoreOptions {
  /** postgres://user:password@host:port/database */
  readonly url: string;
  /** Schema to use (created if missing); default: the server's search_path (normally "public"). */
  readonly schema?: string | undefined;
  /** Connections per node; default 10. */
  readonly poolSize?: number | undefined;
}

/** The one call this file makes on a pool or a checked-out client. */
interface Queryable {
  query<R extends QueryResultRow>(config: QueryConfig<unknown[]>): Promise<QueryResult<R>>;
}

async function run<R extends QueryResultRow = QueryResultRow>(db: Queryable, name: StatementName, params: unknown[]): Promise<QueryResult<R>> {
  try {
    return await db.query<R>({ name: `keystrata_${name}`, text: SQL[name], values: params });
  } catch (error) {
    throw asStoreError(error);
  }
}

async function first<R extends QueryResultRow>(db: Queryable, name: StatementName, params: unknown[]): Promise<R | undefined> {
  return (await run<R>(db, name, params)).rows[0];
}

// bigint columns (hour_start, count(*)) would otherwise arrive as strings. Ours stay far below
// 2^53; a value that does not is refused rather than silently rounded.
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`store: bigint ${text} exceeds the safe integer range`);
  return value;
}

const NAME_CONSTRAINTS: Readonly<Record<string, true>> = { environments_workspace_id_name_key: true, objects_environment_id_name_key: true };

/** Turns a uniqueness violation into the store's own error; anything else is rethrown as is. */
function conflict(error: unknown, what: string): unknown {
  if (!(error instanceof pg.DatabaseError) || error.code !== '23505') return error;
  if (error.constraint !== undefined && NAME_CONSTRAINTS[error.constraint]) return new StoreConflictError(`${what} already exists`);
  return new StoreConflictError('a record with that id already exists');
}

export async function openPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  const { schema } = options;
  if (schema !== undefined) checkSchemaName(schema);
  const types = new pg.TypeOverrides();
  types.setTypeParser(pg.types.builtins.INT8, parseInt8);
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 10,
    // A startup parameter rather than a SET after connect: it holds for every pooled connection,
    // including ones opened later to replace a broken one, with no window where it is unset.
    ...(schema !== undefined ? { options: `-c search_path=${schema}` } : {}),
    types,
    application_name: 'keystrata',
    connectionTimeoutMillis: 10_000,
  });
  // An idle connection dropped by the server (restart, failover) is discarded by the pool and
  // replaced on the next query; without a listener the 'error' event would crash the process.
  pool.on('error', () => undefined);

  const connect = async (): Promise<PoolClient> => {
    try {
      return await pool.connect();
    } catch (error) {
      throw asStoreError(error);
    }
  };

  const transaction = async <T>(work: (client: PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> => {
    const client = await connect();
    let broken = false;
    try {
      await client.query(begin);
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      // A client whose ROLLBACK failed is in an unknown state: destroy it instead of pooling it.
      await client.query('ROLLBACK').catch(() => { broken = true; });
      throw asStoreError(error);
    } finally {
      client.release(broken);
    }
  };

  try {
    const client = await connect();
    try {
      await migratePostgres(client, schema);
      client.release();
    } catch (error) {
      client.release(true);
      throw error;
    }
  } catch (error) {
    await pool.end();
    throw error;
  }

  const insertEnvironmentRows = async (client: PoolClient, env: NewEnvironment): Promise<void> => {
    await run(client, 'insertEnvironment', values.environment(env));
    await run(client, 'insertCmk', values.cmk(env));
    await run(client, 'insertEk', values.key(env.ek));
  };

  const identityWinner = (key: KeyRecord): Promise<KeyRow | undefined> => {
    if (key.kind === 'hourly') return first<KeyRow>(pool, 'getHourly', [key.environmentId, key.hourStart]);
    if (SCOPED_KINDS.includes(key.kind)) return first<KeyRow>(pool, 'getScoped', [key.environmentId, key.kind, key.scopeId]);
    if (key.state !== 'active') return Promise.resolve(undefined);
    return first<KeyRow>(pool, key.kind === 'log' ? 'getActiveLog' : 'getActiveEk', [key.environmentId]);
  };

  const one = async <R extends QueryResultRow, T>(name: StatementName, params: unknown[], map: (row: R) => T): Promise<T | undefined> => {
    const row = await first<R>(pool, name, params);
    return row && map(row);
  };

  let closed = false;
  const store: Store = {
    kind: 'postgres',

    async getSetting(name) {
      return (await first<SettingRow>(pool, 'getSetting', [name]))?.value;
    },
    async putSettingIfAbsent(name, value) {
      const inserted = await first<SettingRow>(pool, 'insertSetting', [name, value]);
      // Settings are never deleted, so the value that beat us is still there to read.
      return inserted?.value ?? (await first<SettingRow>(pool, 'getSetting', [name]))!.value;
    },
    async putSetting(name, value) {
      await run(pool, 'putSetting', [name, value]);
    },

    async createWorkspace(workspace, firstEnv) {
      checkNewEnvironment(firstEnv, workspace);
      try {
        await transaction(async (client) => {
          await run(client, 'insertWorkspace', values.workspace(workspace));
          await insertEnvironmentRows(client, firstEnv);
        });
      } catch (error) {
        throw conflict(error, 'a workspace with that id');
      }
    },
    getWorkspace: (id) => one('getWorkspace', [id], toWorkspace),
    async listWorkspaces({ limit, cursor }) {
      checkLimit(limit);
      const after = cursor === undefined ? undefined : decodeWorkspaceCursor(cursor);
      const result = after
        ? await run<WorkspaceRow>(pool, 'listWorkspacesAfter', [new Date(after.createdAtMs), after.id, limit + 1])
        : await run<WorkspaceRow>(pool, 'listWorkspaces', [limit + 1]);
      return toPage(result.rows.map(toWorkspace), limit, (w) => encodeWorkspaceCursor(w.createdAt, w.id));
    },
    async createEnvironment(env) {
      checkNewEnvironment(env);
      try {
        await transaction((client) => insertEnvironmentRows(client, env));
      } catch (error) {
        throw conflict(error, `an environment named "${env.environment.name}" in this workspace`);
      }
    },
    async listEnvironments(workspaceId) {
      return (await run<EnvironmentRow>(pool, 'listEnvironments', [workspaceId])).rows.map(toEnvironment);
    },
    getEnvironmentByName: (workspaceId, name) => one('getEnvironmentByName', [workspaceId, name], toEnvironment),
    getEnvironment: (id) => one('getEnvironment', [id], toEnvironment),

    getCmk: (id) => one('getCmk', [id], toCmk),
    getActiveCmk: (environmentId) => one('getActiveCmk', [environmentId], toCmk),

    getKey: (environmentId, keyId) => one('getKey', [environmentId, keyId], toKey),
    getActiveEk: (environmentId) => one('getActiveEk', [environmentId], toKey),
    getHourlyKey: (environmentId, hourStart) => one('getHourly', [environmentId, hourStart], toKey),
    async findScopedKey(environmentId, kind, scopeId) {
      if (kind === 'hourly') throw new TypeError('store: hourly keys are found by getHourlyKey');
      if (kind === 'log') return one('getActiveLog', [environmentId], toKey);
      if (kind === 'ek') return one('getActiveEk', [environmentId], toKey);
      return scopeId === null ? undefined : one('getScoped', [environmentId, kind, scopeId], toKey);
    },
    async insertKeyIfAbsent(key) {
      checkKey(key);
      if ((await run(pool, 'insertKey', values.key(key))).rowCount === 1) return key;
      // DO NOTHING waited for the conflicting insert to commit, so the winner is visible to the next
      // statement. The id itself may be what collided: a retry of the same insert gets the stored key.
      const winner = (await identityWinner(key)) ?? (await first<KeyRow>(pool, 'getKeyById', [key.id]));
      if (!winner || winner.environment_id !== key.environmentId || winner.kind !== key.kind) {
        throw new StoreConflictError('a key with that id already exists');
      }
      return toKey(winner);
    },
    async keyStats(environmentId) {
      // One snapshot for both reads, so the counts and the newest hourly key agree.
      return transaction(async (client) => {
        const counts = await run<KindCountRow>(client, 'countKinds', [environmentId]);
        const latest = await first<KeyRow>(client, 'latestHourly', [environmentId]);
        return { counts: kindCounts(counts.rows), latestHourly: latest && toKey(latest) };
      }, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    },

    async createObject(object, firstVersion) {
      checkNewObject(object, firstVersion);
      try {
        const [, ...versionValues] = values.version(firstVersion);
        await run(pool, 'createObject', [...values.object(object), ...versionValues]);
      } catch (error) {
        throw conflict(error, `an object named "${object.name}" in this environment`);
      }
    },
    getObject: (environmentId, id) => one('getObject', [environmentId, id], toObject),
    getObjectByName: (environmentId, name) => one('getObjectByName', [environmentId, name], toObject),
    async listObjects(environmentId, { limit, cursor }) {
      checkLimit(limit);
      const after = cursor === undefined ? undefined : decodeObjectCursor(cursor);
      const result = after === undefined
        ? await run<ObjectRow>(pool, 'listObjects', [environmentId, limit + 1])
        : await run<ObjectRow>(pool, 'listObjectsAfter', [environmentId, after, limit + 1]);
      return toPage(result.rows.map(toObject), limit, (o) => encodeObjectCursor(o.name));
    },
    async addObjectVersion(environmentId, objectId, expectedVersion, version, updatedAt) {
      checkNextVersion(objectId, expectedVersion, version);
      const [, , ...versionValues] = values.version(version);
      const row = await first<ObjectRow>(pool, 'casObjectAddVersion', [expectedVersion + 1, updatedAt, environmentId, objectId, expectedVersion, ...versionValues]);
      return row && toObject(row);
    },
    getObjectVersion: (objectId, version) => one('getVersion', [objectId, version], toObjectVersion),
    async listObjectVersions(objectId) {
      return (await run<ObjectVersionRow>(pool, 'listVersions', [objectId])).rows.map(toObjectVersion);
    },
    async deleteObject(environmentId, id) {
      return ((await run(pool, 'deleteObject', [environmentId, id])).rowCount ?? 0) > 0;
    },

    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
  return store;
}
