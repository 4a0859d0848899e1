/**
 * The PostgreSQL store: a pg Pool shared by all requests of this node; several nodes may share one
 * database. Uniqueness and compare-and-set rules live in the schema and in single statements, so
 * they hold across nodes; methods of several statements run in one transaction on one client.
 * Key state changes reach the other nodes by NOTIFY (key-state-watcher.ts).
 */
import pg from 'pg';
import type { PoolClient, QueryConfig, QueryResult, QueryResultRow } from 'pg';
import { chainEntries, groupByWorkspace } from '../audit-chain.js';
import { mergeUsageDeltas } from '../client-usage.js';
import { decodeNameCursor, decodeWorkspaceCursor, encodeNameCursor, encodeWorkspaceCursor, toPage } from '../cursor.js';
import {
  checkAudit, checkAuditPage, checkAuditWorkspace, checkBatchOfRepack, checkClientPatch, checkClientToken, checkCmkHealth, checkCmkListing,
  checkCmkReplacement, checkDueListing, checkEkRewrap, checkEkRotation, checkKey, checkKeyStateChange, checkKeysUnderListing, checkLimit, checkNewClient,
  checkNewEnvironment, checkNewObject, checkNextVersion, checkRepackBatch, checkRepackFinish, checkRepackListing, checkRepackPause, checkRotationTimes,
  checkUsageDeltas,
} from '../preconditions.js';
import { encodeKeyStateEvent } from '../key-state-listeners.js';
import {
  KEY_STATES, SCOPED_KINDS, kindCounts, toAuditEntry, toAuditHead, toClient, toClientToken, toClientTokenJoin, toClientWithUsage, toCmk, toCmkHealth,
  toEnvironment, toKey, toObject, toObjectVersion, toRepack, toWorkspace,
  type AuditEntryRow, type AuditHeadRow, type ClientRow, type ClientTokenRow, type ClientUsageRow, type CmkHealthRow, type CmkRow, type EnvironmentRow,
  type KeyRow, type KindCountRow, type ObjectRow, type ObjectVersionRow, type RepackRow, type SettingRow, type WorkspaceRow,
} from '../rows.js';
import {
  AUDIT_GENESIS_LINK, StaleParentError, StoreConflictError,
  type AuditAppend, type AuditEntryRecord, type AuditHead, type KeyRecord, type KeyState, type NewEnvironment, type Store,
} from '../store.js';
import { asStoreError } from './connection-errors.js';
import { createKeyStateWatcher, keyStateChannel } from './key-state-watcher.js';
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

const NAME_CONSTRAINTS: Readonly<Record<string, true>> = {
  environments_workspace_id_name_key: true,
  objects_environment_id_name_key: true,
  clients_workspace_id_name_key: true,
  repacks_one_unfinished: true,
};

/**
 * How transactions that lock rows and then write from what they read begin (audit appends, usage
 * flushes): at READ COMMITTED each statement sees what committed before it, so the row a
 * SELECT … FOR UPDATE returns after waiting is the newest version (at REPEATABLE READ a concurrent
 * writer would fail the transaction instead), whatever the server's default_transaction_isolation says.
 */
const READ_COMMITTED = 'BEGIN ISOLATION LEVEL READ COMMITTED';

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
    await run(client, 'insertCmk', values.cmk(env.cmk));
    await run(client, 'insertEk', values.key(env.ek));
  };

  /**
   * Appends to each workspace's chain inside the caller's transaction. The head rows are locked in
   * workspace id order, so concurrent appends to a chain queue on its head across nodes, and
   * appends spanning several workspaces cannot deadlock. A new chain's head is created first
   * (ON CONFLICT DO NOTHING: a concurrent append may be creating it too) and then locked. Each
   * entry's seq and link follow from the locked head; entries and new heads go in one statement.
   */
  const appendAuditInTx = async (client: PoolClient, append: AuditAppend): Promise<void> => {
    const records: AuditEntryRecord[] = [];
    const heads: (AuditHead & { workspaceId: string })[] = [];
    for (const [workspaceId, entries] of groupByWorkspace(append.entries)) {
      let locked = await first<AuditHeadRow>(client, 'lockAuditHead', [workspaceId]);
      if (!locked) {
        await run(client, 'ensureAuditHead', [workspaceId, AUDIT_GENESIS_LINK]);
        locked = await first<AuditHeadRow>(client, 'lockAuditHead', [workspaceId]);
        if (!locked) throw new Error(`store: the audit head of workspace ${workspaceId} could not be created`);
      }
      const chained = chainEntries(toAuditHead(locked), entries, append.link);
      records.push(...chained.records);
      heads.push({ workspaceId, ...chained.head });
    }
    await run(client, 'writeAudit', values.audit(records, heads));
  };

  /** For a change inside an environment: its audit must be about that environment's workspace. */
  const appendEnvironmentAuditInTx = async (client: PoolClient, environmentId: string, audit: AuditAppend): Promise<void> => {
    const env = await first<EnvironmentRow>(client, 'getEnvironment', [environmentId]);
    if (!env) throw new Error(`store: environment ${environmentId} vanished inside a transaction`);
    checkAuditWorkspace(audit, env.workspace_id);
    await appendAuditInTx(client, audit);
  };

  /** For a change to a CMK: its audit must be about the workspace of the CMK's environment. */
  const appendCmkAuditInTx = async (client: PoolClient, cmkId: string, audit: AuditAppend): Promise<void> => {
    const cmk = await first<CmkRow>(client, 'getCmk', [cmkId]);
    if (!cmk) throw new Error(`store: CMK ${cmkId} vanished inside a transaction`);
    await appendEnvironmentAuditInTx(client, cmk.environment_id, audit);
  };

  /** Runs one statement on its own, or in a transaction with the audit entries when there are some. */
  const audited = async <T>(
    audit: AuditAppend | undefined,
    work: (db: Queryable) => Promise<T>,
    append: (client: PoolClient, audit: AuditAppend, result: T) => Promise<void>,
  ): Promise<T> => {
    if (!audit) return work(pool);
    return transaction(async (client) => {
      const result = await work(client);
      await append(client, audit, result);
      return result;
    }, READ_COMMITTED);
  };

  const identityWinner = (key: KeyRecord): Promise<KeyRow | undefined> => {
    if (key.kind === 'hourly') return first<KeyRow>(pool, 'getHourly', [key.environmentId, key.hourStart]);
    if (SCOPED_KINDS.includes(key.kind)) return first<KeyRow>(pool, 'getScoped', [key.environmentId, key.kind, key.scopeId]);
    if (key.state !== 'active') return Promise.resolve(undefined);
    return first<KeyRow>(pool, key.kind === 'log' ? 'getActiveLog' : 'getActiveEk', [key.environmentId]);
  };

  /** Announces a key state change at the commit of the caller's transaction (every node's watchers). */
  const notifyKeyState = async (client: PoolClient, row: KeyRow): Promise<void> => {
    const event = { environmentId: row.environment_id, keyId: row.id, state: row.state as KeyState };
    await run(client, 'notifyKeyState', [channel, encodeKeyStateEvent(event)]);
  };

  /** Locks the repack's row (see lockRepack); returns it if unfinished, undefined if done or missing. */
  const lockUnfinishedRepack = async (client: PoolClient, repackId: string): Promise<RepackRow | undefined> => {
    const row = await first<RepackRow>(client, 'lockRepack', [repackId]);
    return row && row.state !== 'done' ? row : undefined;
  };

  const one = async <R extends QueryResultRow, T>(name: StatementName, params: unknown[], map: (row: R) => T): Promise<T | undefined> => {
    const row = await first<R>(pool, name, params);
    return row && map(row);
  };

  const channel = keyStateChannel(schema);
  const watcher = createKeyStateWatcher({ url: options.url, channel });

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

    async createWorkspace(workspace, firstEnv, audit) {
      checkNewEnvironment(firstEnv, workspace);
      if (audit) checkAudit(audit, workspace.id);
      try {
        await transaction(async (client) => {
          await run(client, 'insertWorkspace', values.workspace(workspace));
          await insertEnvironmentRows(client, firstEnv);
          if (audit) await appendAuditInTx(client, audit);
        }, READ_COMMITTED);
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
    async createEnvironment(env, audit) {
      checkNewEnvironment(env);
      if (audit) checkAudit(audit, env.environment.workspaceId);
      try {
        await transaction(async (client) => {
          await insertEnvironmentRows(client, env);
          if (audit) await appendAuditInTx(client, audit);
        }, READ_COMMITTED);
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
    async replaceCmk(change, audit) {
      checkCmkReplacement(change);
      if (audit) checkAudit(audit);
      const { environmentId, ekId, fromCmkId } = change;
      try {
        return await transaction(async (client) => {
          // The compare-and-set, on the locked EK: the environment is still on fromCmkId, through the EK the caller re-wrapped.
          const ek = await first<Pick<KeyRow, 'id' | 'parent_id'>>(client, 'lockActiveEk', [environmentId]);
          if (!ek || ek.id !== ekId || ek.parent_id !== fromCmkId) return false;
          // No row: the EK names a CMK that is not this environment's, so it has no active CMK to move from.
          if (((await run(client, 'retireCmk', [fromCmkId, environmentId])).rowCount ?? 0) === 0) return false;
          await run(client, 'insertCmk', values.cmk(change.cmk));
          await run(client, 'moveEk', [environmentId, ekId, change.cmk.id, change.wrapped, change.wrappingKeyVersion]);
          if (audit) await appendEnvironmentAuditInTx(client, environmentId, audit);
          return true;
        }, READ_COMMITTED);
      } catch (error) {
        throw conflict(error, 'a CMK with that id');
      }
    },
    async rewrapEk(change, audit) {
      checkEkRewrap(change);
      if (audit) checkAudit(audit);
      const params = [change.wrapped, change.wrappingKeyVersion, change.environmentId, change.ekId, change.cmkId, change.expectedWrapped];
      try {
        return await audited(
          audit,
          async (db) => ((await run(db, 'casEkWrapping', params)).rowCount ?? 0) > 0,
          async (client, a, updated) => {
            if (updated) await appendEnvironmentAuditInTx(client, change.environmentId, a);
          },
        );
      } catch (error) {
        throw conflict(error, 'an audit entry with that id');
      }
    },
    async listActiveCmks({ excludeProviders, limit, afterId }) {
      checkCmkListing(excludeProviders, limit, afterId);
      const excluded = [...excludeProviders];
      const result = afterId === undefined
        ? await run<CmkRow>(pool, 'listActiveCmks', [excluded, limit])
        : await run<CmkRow>(pool, 'listActiveCmksAfter', [excluded, afterId, limit]);
      return result.rows.map(toCmk);
    },
    getCmkHealth: (cmkId) => one('getCmkHealth', [cmkId], toCmkHealth),
    async putCmkHealth(record, auditIfChanged) {
      checkCmkHealth(record);
      const params = values.cmkHealth(record);
      // Without an audit the upsert alone decides since (its CASE), atomically.
      if (!auditIfChanged) return toCmkHealth((await first<CmkHealthRow>(pool, 'putCmkHealth', params))!);
      checkAudit(auditIfChanged);
      try {
        const row = await transaction(async (client) => {
          // Locked before it is read, so the state compared is the one this upsert replaces: of two
          // probes seeing the same new state, the second waits and then finds it unchanged.
          let before = await first<Pick<CmkHealthRow, 'state'>>(client, 'lockCmkHealth', [record.cmkId]);
          if (!before) {
            const inserted = await first<CmkHealthRow>(client, 'insertCmkHealth', params);
            if (inserted) {
              await appendCmkAuditInTx(client, record.cmkId, auditIfChanged);
              return inserted;
            }
            // A concurrent probe inserted the row first; DO NOTHING waited for it to commit, so it is there to lock.
            before = await first<Pick<CmkHealthRow, 'state'>>(client, 'lockCmkHealth', [record.cmkId]);
            if (!before) throw new Error(`store: the health of CMK ${record.cmkId} vanished inside a transaction`);
          }
          const stored = (await first<CmkHealthRow>(client, 'putCmkHealth', params))!;
          if (before.state !== record.state) await appendCmkAuditInTx(client, record.cmkId, auditIfChanged);
          return stored;
        }, READ_COMMITTED);
        return toCmkHealth(row);
      } catch (error) {
        throw conflict(error, 'an audit entry with that id');
      }
    },

    async setKeyState(change, audit) {
      checkKeyStateChange(change);
      if (audit) checkAudit(audit);
      try {
        // Always a transaction: the NOTIFY must be sent by the transaction that made the change.
        const row = await transaction(async (client) => {
          const updated = await first<KeyRow>(client, 'setKeyState', values.keyState(change));
          if (!updated) return undefined;
          await notifyKeyState(client, updated);
          if (audit) await appendEnvironmentAuditInTx(client, change.environmentId, audit);
          return updated;
        }, READ_COMMITTED);
        return row && toKey(row);
      } catch (error) {
        throw conflict(error, 'an audit entry with that id');
      }
    },
    async listDueDestructions(now, limit) {
      checkDueListing(now, limit);
      return (await run<KeyRow>(pool, 'listDueDestructions', [now, limit])).rows.map(toKey);
    },
    watchKeyStates: (listener) => watcher.subscribe(listener),

    async rotateEnvironmentKey(change, audit) {
      checkEkRotation(change);
      if (audit) checkAudit(audit);
      const { environmentId, fromEkId, fromCmkId } = change;
      try {
        const row = await transaction(async (client) => {
          // The compare-and-set of replaceCmk, on the locked EK. The lock also orders this rotation
          // against inserts under the EK (insertKey share-locks it): those that got it first have
          // committed by now and are counted below; later ones find the EK decrypt-only and are refused.
          const ek = await first<Pick<KeyRow, 'id' | 'parent_id'>>(client, 'lockActiveEk', [environmentId]);
          if (!ek || ek.id !== fromEkId || ek.parent_id !== fromCmkId) return undefined;
          // Rotations of one environment queue on its EK lock, so this check is not raced by another one.
          if (await first(client, 'unfinishedRepack', [environmentId])) throw new StoreConflictError('an unfinished repack of this environment already exists');
          if (((await run(client, 'retireCmk', [fromCmkId, environmentId])).rowCount ?? 0) === 0) return undefined;
          await run(client, 'insertCmk', values.cmk(change.cmk));
          const retired = await first<KeyRow>(client, 'setKeyState', values.keyState({ environmentId, keyId: fromEkId, from: ['active'], to: 'decrypt-only' }));
          if (!retired) throw new Error(`store: the locked EK ${fromEkId} vanished inside a transaction`);
          await notifyKeyState(client, retired);
          await run(client, 'insertEk', values.key(change.ek));
          const total = (await first<KindCountRow>(client, 'countKeysUnder', [environmentId, fromEkId]))?.n ?? 0;
          const repack = (await first<RepackRow>(client, 'insertRepack', values.repack(change, Number(total))))!;
          if (audit) await appendEnvironmentAuditInTx(client, environmentId, audit);
          return repack;
        }, READ_COMMITTED);
        return row && toRepack(row);
      } catch (error) {
        throw conflict(error, 'an unfinished repack of this environment');
      }
    },
    getRepack: (environmentId) => one('getRepack', [environmentId], toRepack),
    async listUnfinishedRepacks(limit) {
      checkRepackListing(limit);
      return (await run<RepackRow>(pool, 'listUnfinishedRepacks', [limit])).rows.map(toRepack);
    },
    async listKeysUnder(environmentId, parentId, limit) {
      checkKeysUnderListing(environmentId, parentId, limit);
      return (await run<KeyRow>(pool, 'listKeysUnder', [environmentId, parentId, limit])).rows.map(toKey);
    },
    async applyRepackBatch(batch) {
      checkRepackBatch(batch);
      const row = await transaction(async (client) => {
        // Locked first: batches of one repack from several nodes apply one after the other (and the
        // key rows of one batch are never locked in two orders at once), each re-checking every key.
        const locked = await lockUnfinishedRepack(client, batch.repackId);
        if (!locked) return undefined;
        checkBatchOfRepack(batch, toRepack(locked));
        return first<RepackRow>(client, 'applyRepackBatch', values.repackBatch(batch));
      }, READ_COMMITTED);
      return row && toRepack(row);
    },
    async setRepackPaused(repackId, reason, runner, at) {
      checkRepackPause(repackId, reason, runner, at);
      return one('setRepackPaused', [repackId, reason, runner, at], toRepack);
    },
    async finishRepack(repackId, at, audit) {
      checkRepackFinish(repackId, at);
      if (audit) checkAudit(audit);
      try {
        const row = await transaction(async (client) => {
          const locked = await lockUnfinishedRepack(client, repackId);
          if (!locked) return undefined;
          // The old EK is locked before the look for keys under it: see lockKey.
          await run(client, 'lockKey', [locked.environment_id, locked.from_ek_id]);
          if (await first(client, 'anyKeyUnder', [locked.environment_id, locked.from_ek_id])) return undefined;
          const finished = (await first<RepackRow>(client, 'finishRepack', [repackId, at]))!;
          // Crypto-shredding as setKeyState does it (wrapped erased in the same write); not announced again if already destroyed.
          const destroyed = await first<KeyRow>(client, 'setKeyState', values.keyState({
            environmentId: locked.environment_id, keyId: locked.from_ek_id, from: KEY_STATES.filter((s) => s !== 'destroyed'), to: 'destroyed',
          }));
          if (destroyed) await notifyKeyState(client, destroyed);
          if (audit) await appendEnvironmentAuditInTx(client, locked.environment_id, audit);
          return finished;
        }, READ_COMMITTED);
        return row && toRepack(row);
      } catch (error) {
        throw conflict(error, 'an audit entry with that id');
      }
    },

    getKey: (environmentId, keyId) => one('getKey', [environmentId, keyId], toKey),
    getActiveEk: (environmentId) => one('getActiveEk', [environmentId], toKey),
    getHourlyKey: (environmentId, hourStart) => one('getHourly', [environmentId, hourStart], toKey),
    latestHourlyKey: (environmentId) => one('latestHourly', [environmentId], toKey),
    async findScopedKey(environmentId, kind, scopeId) {
      if (kind === 'hourly') throw new TypeError('store: hourly keys are found by getHourlyKey');
      if (kind === 'log') return one('getActiveLog', [environmentId], toKey);
      if (kind === 'ek') return one('getActiveEk', [environmentId], toKey);
      return scopeId === null ? undefined : one('getScoped', [environmentId, kind, scopeId], toKey);
    },
    async insertKeyIfAbsent(key) {
      checkKey(key);
      const result = (await first<{ inserted: number; parent_state: string | null }>(pool, 'insertKey', values.key(key)))!;
      if (result.inserted === 1) return { ...key, destroyAt: key.destroyAt ?? null };
      // DO NOTHING waited for the conflicting insert to commit, so the winner is visible to the next
      // statement. The id itself may be what collided: a retry of the same insert gets the stored key.
      const winner = (await identityWinner(key)) ?? (await first<KeyRow>(pool, 'getKeyById', [key.id]));
      const same = winner !== undefined && winner.environment_id === key.environmentId && winner.kind === key.kind;
      // Not inserted because the parent EK is retired: only a key that is already stored answers it.
      if (result.parent_state !== null && result.parent_state !== 'active' && !same) {
        throw new StaleParentError(`key ${key.id}: its parent environment key ${key.parentId} is ${result.parent_state}, no longer active`);
      }
      if (!same) throw new StoreConflictError('a key with that id already exists');
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

    async createObject(object, firstVersion, audit) {
      checkNewObject(object, firstVersion);
      if (audit) checkAudit(audit);
      try {
        const [, ...versionValues] = values.version(firstVersion);
        await audited(
          audit,
          (db) => run(db, 'createObject', [...values.object(object), ...versionValues]),
          (client, a) => appendEnvironmentAuditInTx(client, object.environmentId, a),
        );
      } catch (error) {
        throw conflict(error, `an object named "${object.name}" in this environment`);
      }
    },
    getObject: (environmentId, id) => one('getObject', [environmentId, id], toObject),
    getObjectByName: (environmentId, name) => one('getObjectByName', [environmentId, name], toObject),
    async listObjects(environmentId, { limit, cursor }) {
      checkLimit(limit);
      const after = cursor === undefined ? undefined : decodeNameCursor(cursor);
      const result = after === undefined
        ? await run<ObjectRow>(pool, 'listObjects', [environmentId, limit + 1])
        : await run<ObjectRow>(pool, 'listObjectsAfter', [environmentId, after, limit + 1]);
      return toPage(result.rows.map(toObject), limit, (o) => encodeNameCursor(o.name));
    },
    async addObjectVersion(environmentId, objectId, expectedVersion, version, updatedAt, audit) {
      checkNextVersion(objectId, expectedVersion, version);
      if (audit) checkAudit(audit);
      const [, , ...versionValues] = values.version(version);
      try {
        const row = await audited(
          audit,
          (db) => first<ObjectRow>(db, 'casObjectAddVersion', [expectedVersion + 1, updatedAt, environmentId, objectId, expectedVersion, ...versionValues]),
          async (client, a, updated) => {
            if (updated) await appendEnvironmentAuditInTx(client, environmentId, a);
          },
        );
        return row && toObject(row);
      } catch (error) {
        throw conflict(error, 'an audit entry with that id');
      }
    },
    getObjectVersion: (objectId, version) => one('getVersion', [objectId, version], toObjectVersion),
    async listObjectVersions(objectId) {
      return (await run<ObjectVersionRow>(pool, 'listVersions', [objectId])).rows.map(toObjectVersion);
    },
    async deleteObject(environmentId, id, audit) {
      if (audit) checkAudit(audit);
      try {
        return await audited(
          audit,
          async (db) => ((await run(db, 'deleteObject', [environmentId, id])).rowCount ?? 0) > 0,
          async (client, a, deleted) => {
            if (deleted) await appendEnvironmentAuditInTx(client, environmentId, a);
          },
        );
      } catch (error) {
        throw conflict(error, 'an audit entry with that id');
      }
    },

    async createClient(client, firstToken, audit) {
      checkNewClient(client, firstToken);
      if (audit) checkAudit(audit, client.workspaceId);
      try {
        await transaction(async (db) => {
          await run(db, 'insertClient', values.client(client));
          await run(db, 'insertToken', values.token(firstToken));
          if (audit) await appendAuditInTx(db, audit);
        }, READ_COMMITTED);
      } catch (error) {
        throw conflict(error, `a client named "${client.name}" in this workspace`);
      }
    },
    getClient: (workspaceId, id) => one('getClient', [workspaceId, id], toClientWithUsage),
    async listClients(workspaceId, { limit, cursor }) {
      checkLimit(limit);
      const after = cursor === undefined ? undefined : decodeNameCursor(cursor);
      const result = after === undefined
        ? await run<ClientUsageRow>(pool, 'listClients', [workspaceId, limit + 1])
        : await run<ClientUsageRow>(pool, 'listClientsAfter', [workspaceId, after, limit + 1]);
      return toPage(result.rows.map(toClientWithUsage), limit, (c) => encodeNameCursor(c.name));
    },
    async updateClient(workspaceId, id, patch, updatedAt, audit) {
      checkClientPatch(patch, updatedAt);
      if (audit) checkAudit(audit, workspaceId);
      try {
        const row = await audited(
          audit,
          (db) => first<ClientRow>(db, 'updateClient', values.patch(workspaceId, id, patch, updatedAt)),
          async (db, a, updated) => {
            if (updated) await appendAuditInTx(db, a);
          },
        );
        return row && toClient(row);
      } catch (error) {
        throw conflict(error, `a client named "${patch.name ?? ''}" in this workspace`);
      }
    },
    async deleteClient(workspaceId, id, audit) {
      if (audit) checkAudit(audit, workspaceId);
      try {
        return await audited(
          audit,
          async (db) => ((await run(db, 'deleteClient', [workspaceId, id])).rowCount ?? 0) > 0,
          async (db, a, deleted) => {
            if (deleted) await appendAuditInTx(db, a);
          },
        );
      } catch (error) {
        throw conflict(error, 'an audit entry with that id');
      }
    },
    async addClientToken(workspaceId, clientId, token, othersExpireBy, now, audit) {
      checkClientToken(clientId, token);
      checkRotationTimes(othersExpireBy, now);
      if (audit) checkAudit(audit, workspaceId);
      const [id, , tokenHash, createdAt, expiresAt] = values.token(token);
      try {
        return await audited(
          audit,
          async (db) => (await run(db, 'rotateToken', [workspaceId, clientId, now, othersExpireBy, id, tokenHash, createdAt, expiresAt])).rows.length === 1,
          async (db, a, added) => {
            if (added) await appendAuditInTx(db, a);
          },
        );
      } catch (error) {
        throw conflict(error, 'a token with that hash');
      }
    },
    async listClientTokens(clientId) {
      return (await run<ClientTokenRow>(pool, 'listTokens', [clientId])).rows.map(toClientToken);
    },
    findClientToken: (tokenHash) => one('findToken', [tokenHash], toClientTokenJoin),
    async recordClientUsage(deltas) {
      checkUsageDeltas(deltas);
      if (deltas.length === 0) return;
      const merged = mergeUsageDeltas(deltas);
      await transaction(async (client) => {
        await run(client, 'lockClients', [merged.map((d) => d.clientId)]);
        await run(client, 'recordUsage', values.usage(merged));
      }, READ_COMMITTED);
    },

    async appendAudit(append) {
      checkAudit(append);
      try {
        await transaction((client) => appendAuditInTx(client, append), READ_COMMITTED);
      } catch (error) {
        throw conflict(error, 'an audit entry with that id');
      }
    },
    async listAuditEntries(workspaceId, { afterSeq, limit }) {
      checkAuditPage(afterSeq, limit);
      return (await run<AuditEntryRow>(pool, 'listAudit', [workspaceId, afterSeq, limit])).rows.map(toAuditEntry);
    },
    getAuditHead: (workspaceId) => one('getAuditHead', [workspaceId], toAuditHead),

    async runExclusive(name, work) {
      // The lock key is per deployment (schema) and name; hashtextextended gives the 64-bit key
      // pg_try_advisory_lock takes. The lock belongs to this connection's session, held for the work.
      const key = `keystrata:${schema ?? ''}:${name}`;
      const client = await connect();
      let doubtful = false;
      try {
        const locked = (await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked', [key])).rows[0]?.locked === true;
        if (!locked) return undefined;
        try {
          return await work();
        } finally {
          await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]).catch(() => {
            // Unknown session state: destroy the connection (which releases the lock) rather than pool it.
            doubtful = true;
          });
        }
      } catch (error) {
        doubtful = true;
        throw asStoreError(error);
      } finally {
        client.release(doubtful ? true : undefined);
      }
    },

    async close() {
      if (closed) return;
      closed = true;
      await watcher.close();
      await pool.end();
    },
  };
  return store;
}
