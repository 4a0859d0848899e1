/**
 * The embedded store: one better-sqlite3 connection per process.
 *
 * better-sqlite3 is synchronous, so inside one process every method already runs alone; the
 * transactions below are for atomicity and for other processes on the same file. Write
 * transactions are IMMEDIATE: a deferred one that reads first and then writes cannot wait for the
 * lock (SQLite fails it with SQLITE_BUSY at once), while an immediate one waits up to busy_timeout.
 *
 * Key state changes are announced to the watchKeyStates listeners of this store object only, right
 * after the change commits. SQLite is the single-node store: another process (or another store
 * object) on the same file is not told; deployments with several nodes use PostgreSQL.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { chainEntries, groupByWorkspace } from '../audit-chain.js';
import { mergeUsageDeltas } from '../client-usage.js';
import { decodeNameCursor, decodeWorkspaceCursor, encodeNameCursor, encodeWorkspaceCursor, toPage } from '../cursor.js';
import {
  checkAudit, checkAuditPage, checkAuditWorkspace, checkBatchOfRepack, checkClientPatch, checkClientToken, checkCmkHealth, checkCmkListing,
  checkCmkReplacement, checkDueListing, checkEkRewrap, checkEkRotation, checkKey, checkKeyStateChange, checkKeysUnderListing, checkLimit, checkNewClient,
  checkNewEnvironment, checkNewObject, checkNextVersion, checkRepackBatch, checkRepackFinish, checkRepackListing, checkRepackPause, checkRotationTimes,
  checkUsageDeltas,
} from '../preconditions.js';
import { KeyStateListeners } from '../key-state-listeners.js';
import {
  KEY_STATES, SCOPED_KINDS, kindCounts, toAuditEntry, toAuditHead, toClient, toClientToken, toClientTokenJoin, toClientWithUsage, toCmk, toCmkHealth,
  toEnvironment, toKey, toObject, toObjectVersion, toRepack, toWorkspace, type CmkHealthRow, type KeyRow, type RepackRow,
} from '../rows.js';
import {
  StaleParentError, StoreConflictError,
  type AuditAppend, type ClientPatch, type ClientRecord, type ClientTokenRecord, type CmkHealthRecord, type CmkReplacement, type EkRewrap, type EkRotation,
  type KeyRecord, type KeyStateChange, type NewEnvironment, type ObjectRecord, type ObjectVersionRecord, type RepackBatch, type Store, type WorkspaceRecord,
} from '../store.js';
import { migrateSqlite } from './migrations.js';
import {
  auditHeadParams, auditParams, clientParams, cmkHealthParams, cmkParams, environmentParams, keyParams, keyStateParams, objectParams, patchParams,
  prepareStatements, repackKeyParams, repackParams, tokenParams, usageParams, versionParams, workspaceParams,
} from './statements.js';

export interface SqliteStoreOptions {
  /** Database file, created with its directory if missing; ":memory:" for a throwaway store. */
  readonly path: string;
}

/**
 * Turns a uniqueness violation into the store's own error; anything else is rethrown as is. A name
 * rule is told apart from an id rule by the columns SQLite names ("UNIQUE constraint failed:
 * clients.workspace_id, clients.name"): a transaction may also insert tokens and audit entries.
 */
function conflict(error: unknown, what: string): unknown {
  if (!(error instanceof Database.SqliteError)) return error;
  if (error.code === 'SQLITE_CONSTRAINT_UNIQUE' && /\.name$/.test(error.message)) return new StoreConflictError(`${what} already exists`);
  if (error.code === 'SQLITE_CONSTRAINT_UNIQUE' || error.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return new StoreConflictError('a record with that id already exists');
  }
  return error;
}

export async function openSqliteStore(options: SqliteStoreOptions): Promise<Store> {
  const path = options.path;
  if (path !== ':memory:' && path !== '') {
    mkdirSync(dirname(resolve(path)), { recursive: true, mode: 0o700 });
    // The file holds wrapped keys and ciphertext: readable by the owner only. Created here (SQLite
    // would use the umask, typically 0644); SQLite gives its -wal and -shm files the same mode.
    closeSync(openSync(path, 'a', 0o600));
  }
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    // NORMAL is durable across application crashes in WAL mode; only an OS crash can lose the last commits.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrateSqlite(db);
  } catch (error) {
    db.close();
    throw error;
  }
  const q = prepareStatements(db);
  const keyStateListeners = new KeyStateListeners();

  const insertEnvironmentRows = (env: NewEnvironment): void => {
    q.insertEnvironment.run(environmentParams(env));
    q.insertCmk.run(cmkParams(env.cmk));
    q.insertEk.run(keyParams(env.ek));
  };

  /**
   * Appends to each workspace's chain; called inside the caller's IMMEDIATE transaction, which holds
   * SQLite's one write lock, so no other process can move a head between its read and its write.
   */
  const appendAuditInTx = (append: AuditAppend): void => {
    for (const [workspaceId, entries] of groupByWorkspace(append.entries)) {
      const stored = q.getAuditHead.get(workspaceId);
      const { records, head } = chainEntries(stored && toAuditHead(stored), entries, append.link);
      for (const record of records) q.insertAudit.run(auditParams(record));
      q.putAuditHead.run(auditHeadParams(workspaceId, head));
    }
  };

  /** For a change inside an environment: its audit must be about that environment's workspace. */
  const appendEnvironmentAuditInTx = (environmentId: string, audit: AuditAppend): void => {
    const env = q.getEnvironment.get(environmentId);
    if (!env) throw new Error(`store: environment ${environmentId} vanished inside a transaction`);
    checkAuditWorkspace(audit, env.workspace_id);
    appendAuditInTx(audit);
  };

  /** For a change to a CMK: its audit must be about the workspace of the CMK's environment. */
  const appendCmkAuditInTx = (cmkId: string, audit: AuditAppend): void => {
    const cmk = q.getCmk.get(cmkId);
    if (!cmk) throw new Error(`store: CMK ${cmkId} vanished inside a transaction`);
    appendEnvironmentAuditInTx(cmk.environment_id, audit);
  };

  const identityWinner = (key: KeyRecord): KeyRow | undefined => {
    if (key.kind === 'hourly') return q.getHourly.get(key.environmentId, key.hourStart ?? Number.NaN);
    if (SCOPED_KINDS.includes(key.kind)) return q.getScoped.get(key.environmentId, key.kind, key.scopeId ?? '');
    if (key.state !== 'active') return undefined;
    return key.kind === 'log' ? q.getActiveLog.get(key.environmentId) : q.getActiveEk.get(key.environmentId);
  };

  /** Tells this store's watchers about a committed key state change. */
  const announce = (row: KeyRow | undefined): void => {
    if (!row) return;
    const stored = toKey(row);
    keyStateListeners.emit({ environmentId: stored.environmentId, keyId: stored.id, state: stored.state });
  };

  /** The repack if it is unfinished, else undefined (done or missing). */
  const unfinishedRepack = (repackId: string): RepackRow | undefined => {
    const row = q.getRepackById.get(repackId);
    return row && row.state !== 'done' ? row : undefined;
  };

  const casEkWrapping = (c: EkRewrap): number =>
    q.casEkWrapping.run(c.wrapped, c.wrappingKeyVersion, c.environmentId, c.ekId, c.cmkId, c.expectedWrapped).changes;

  const tx = {
    putSettingIfAbsent: db.transaction((name: string, value: string): string => {
      q.insertSetting.run(name, value);
      return q.getSetting.get(name)!.value;
    }),
    createWorkspace: db.transaction((workspace: WorkspaceRecord, first: NewEnvironment, audit: AuditAppend | undefined) => {
      q.insertWorkspace.run(workspaceParams(workspace));
      insertEnvironmentRows(first);
      if (audit) appendAuditInTx(audit);
    }),
    createEnvironment: db.transaction((env: NewEnvironment, audit: AuditAppend | undefined) => {
      insertEnvironmentRows(env);
      if (audit) appendAuditInTx(audit);
    }),
    replaceCmk: db.transaction((change: CmkReplacement, audit: AuditAppend | undefined): boolean => {
      // The compare-and-set: the environment is still on fromCmkId, through the EK the caller re-wrapped.
      const ek = q.getActiveEk.get(change.environmentId);
      if (!ek || ek.id !== change.ekId || ek.parent_id !== change.fromCmkId) return false;
      // No row: the EK names a CMK that is not this environment's, so it has no active CMK to move from.
      if (q.retireCmk.run(change.fromCmkId, change.environmentId).changes === 0) return false;
      q.insertCmk.run(cmkParams(change.cmk));
      q.moveEk.run({
        environment_id: change.environmentId, id: change.ekId, parent_id: change.cmk.id, wrapped: change.wrapped,
        wrapping_key_version: change.wrappingKeyVersion,
      });
      if (audit) appendEnvironmentAuditInTx(change.environmentId, audit);
      return true;
    }),
    rewrapEk: db.transaction((change: EkRewrap, audit: AuditAppend | undefined): boolean => {
      if (casEkWrapping(change) === 0) return false;
      if (audit) appendEnvironmentAuditInTx(change.environmentId, audit);
      return true;
    }),
    setKeyState: db.transaction((change: KeyStateChange, audit: AuditAppend): KeyRow | undefined => {
      const row = q.setKeyState.get(keyStateParams(change));
      if (row) appendEnvironmentAuditInTx(change.environmentId, audit);
      return row;
    }),
    putCmkHealth: db.transaction((record: CmkHealthRecord, audit: AuditAppend): CmkHealthRow => {
      // Inside the IMMEDIATE transaction no other process can write between this read and the upsert.
      const before = q.getCmkHealth.get(record.cmkId);
      const row = q.putCmkHealth.get(cmkHealthParams(record))!;
      if (!before || before.state !== record.state) appendCmkAuditInTx(record.cmkId, audit);
      return row;
    }),
    insertKeyIfAbsent: db.transaction((key: KeyRecord): KeyRecord => {
      // Inside the IMMEDIATE transaction, so a rotation cannot retire the parent EK between this check and the insert.
      const parent = q.getParentEk.get(key.parentId);
      const stale = parent !== undefined && parent.state !== 'active';
      if (!stale && q.insertKey.run(keyParams(key)).changes === 1) return { ...key, destroyAt: key.destroyAt ?? null };
      // The id itself may be what collided: a retry of the same insert is answered with the stored key.
      const winner = identityWinner(key) ?? q.getKeyById.get(key.id);
      const same = winner !== undefined && winner.environment_id === key.environmentId && winner.kind === key.kind;
      // Under a retired EK only a key that is already stored answers the call.
      if (stale && !same) throw new StaleParentError(`key ${key.id}: its parent environment key ${key.parentId} is ${parent.state}, no longer active`);
      if (!same) throw new StoreConflictError('a key with that id already exists');
      return toKey(winner);
    }),
    rotateEnvironmentKey: db.transaction((change: EkRotation, audit: AuditAppend | undefined) => {
      const { environmentId, fromEkId, fromCmkId } = change;
      // The compare-and-set of replaceCmk; the IMMEDIATE transaction keeps inserts under the old EK
      // out until it commits, after which they find it decrypt-only.
      const ek = q.getActiveEk.get(environmentId);
      if (!ek || ek.id !== fromEkId || ek.parent_id !== fromCmkId) return undefined;
      if (q.unfinishedRepack.get(environmentId)) throw new StoreConflictError('an unfinished repack of this environment already exists');
      if (q.retireCmk.run(fromCmkId, environmentId).changes === 0) return undefined;
      q.insertCmk.run(cmkParams(change.cmk));
      const retired = q.setKeyState.get(keyStateParams({ environmentId, keyId: fromEkId, from: ['active'], to: 'decrypt-only' }));
      if (!retired) throw new Error(`store: the active EK ${fromEkId} vanished inside a transaction`);
      q.insertEk.run(keyParams(change.ek));
      const total = q.countKeysUnder.get(environmentId, fromEkId)?.n ?? 0;
      const repack = q.insertRepack.get(repackParams(change, total))!;
      if (audit) appendEnvironmentAuditInTx(environmentId, audit);
      return { repack, retired };
    }),
    applyRepackBatch: db.transaction((batch: RepackBatch): RepackRow | undefined => {
      const stored = unfinishedRepack(batch.repackId);
      if (!stored) return undefined;
      checkBatchOfRepack(batch, toRepack(stored));
      let moved = 0;
      for (const k of batch.keys) moved += q.repackKey.run(repackKeyParams(batch, k)).changes;
      return q.addRepackProgress.get(moved, batch.runner, batch.at.getTime(), batch.repackId);
    }),
    finishRepack: db.transaction((repackId: string, at: Date, audit: AuditAppend | undefined) => {
      const stored = unfinishedRepack(repackId);
      if (!stored || q.anyKeyUnder.get(stored.environment_id, stored.from_ek_id)) return undefined;
      const finished = q.finishRepack.get(at.getTime(), at.getTime(), repackId)!;
      // Crypto-shredding as setKeyState does it (wrapped erased in the same write); not announced again if already destroyed.
      const destroyed = q.setKeyState.get(keyStateParams({
        environmentId: stored.environment_id, keyId: stored.from_ek_id, from: KEY_STATES.filter((state) => state !== 'destroyed'), to: 'destroyed',
      }));
      if (audit) appendEnvironmentAuditInTx(stored.environment_id, audit);
      return { finished, destroyed };
    }),
    keyStats: db.transaction((environmentId: string) => ({
      counts: kindCounts(q.countKinds.all(environmentId)),
      latestHourly: q.latestHourly.get(environmentId),
    })),
    createObject: db.transaction((object: ObjectRecord, first: ObjectVersionRecord, audit: AuditAppend | undefined) => {
      q.insertObject.run(objectParams(object));
      q.insertVersion.run(versionParams(first));
      if (audit) appendEnvironmentAuditInTx(object.environmentId, audit);
    }),
    addObjectVersion: db.transaction(
      (environmentId: string, objectId: string, expected: number, version: ObjectVersionRecord, updatedAt: Date, audit: AuditAppend | undefined) => {
        const row = q.casObject.get(expected + 1, updatedAt.getTime(), environmentId, objectId, expected);
        if (!row) return undefined;
        q.insertVersion.run(versionParams(version));
        if (audit) appendEnvironmentAuditInTx(environmentId, audit);
        return row;
      },
    ),
    deleteObject: db.transaction((environmentId: string, id: string, audit: AuditAppend | undefined): boolean => {
      if (q.deleteObject.run(environmentId, id).changes === 0) return false;
      if (audit) appendEnvironmentAuditInTx(environmentId, audit);
      return true;
    }),
    createClient: db.transaction((client: ClientRecord, firstToken: ClientTokenRecord, audit: AuditAppend | undefined) => {
      q.insertClient.run(clientParams(client));
      q.insertToken.run(tokenParams(firstToken));
      if (audit) appendAuditInTx(audit);
    }),
    updateClient: db.transaction((workspaceId: string, id: string, patch: ClientPatch, updatedAt: Date, audit: AuditAppend | undefined) => {
      const row = q.updateClient.get(patchParams(workspaceId, id, patch, updatedAt));
      if (row && audit) appendAuditInTx(audit);
      return row;
    }),
    deleteClient: db.transaction((workspaceId: string, id: string, audit: AuditAppend | undefined): boolean => {
      if (q.deleteClient.run(workspaceId, id).changes === 0) return false;
      if (audit) appendAuditInTx(audit);
      return true;
    }),
    addClientToken: db.transaction(
      (workspaceId: string, clientId: string, token: ClientTokenRecord, othersExpireBy: Date, now: Date, audit: AuditAppend | undefined): boolean => {
        if (!q.getClient.get(workspaceId, clientId)) return false;
        q.pruneTokens.run(clientId, now.getTime());
        q.capTokens.run(othersExpireBy.getTime(), clientId);
        q.insertToken.run(tokenParams(token));
        if (audit) appendAuditInTx(audit);
        return true;
      },
    ),
    recordClientUsage: db.transaction((params: ReturnType<typeof usageParams>[]) => {
      for (const p of params) q.recordUsage.run(p);
    }),
    appendAudit: db.transaction(appendAuditInTx),
  };

  /** Names of scheduled work running in this process (runExclusive). */
  const running = new Set<string>();

  const store: Store = {
    kind: 'sqlite',

    async getSetting(name) {
      return q.getSetting.get(name)?.value;
    },
    async putSettingIfAbsent(name, value) {
      return tx.putSettingIfAbsent.immediate(name, value);
    },
    async putSetting(name, value) {
      q.putSetting.run(name, value);
    },

    async createWorkspace(workspace, first, audit) {
      checkNewEnvironment(first, workspace);
      if (audit) checkAudit(audit, workspace.id);
      try {
        tx.createWorkspace.immediate(workspace, first, audit);
      } catch (error) {
        throw conflict(error, 'a workspace with that id');
      }
    },
    async getWorkspace(id) {
      const row = q.getWorkspace.get(id);
      return row && toWorkspace(row);
    },
    async listWorkspaces({ limit, cursor }) {
      checkLimit(limit);
      const after = cursor === undefined ? undefined : decodeWorkspaceCursor(cursor);
      const rows = after ? q.listWorkspacesAfter.all(after.createdAtMs, after.id, limit + 1) : q.listWorkspaces.all(limit + 1);
      return toPage(rows.map(toWorkspace), limit, (w) => encodeWorkspaceCursor(w.createdAt, w.id));
    },
    async createEnvironment(env, audit) {
      checkNewEnvironment(env);
      if (audit) checkAudit(audit, env.environment.workspaceId);
      try {
        tx.createEnvironment.immediate(env, audit);
      } catch (error) {
        throw conflict(error, `an environment named "${env.environment.name}" in this workspace`);
      }
    },
    async listEnvironments(workspaceId) {
      return q.listEnvironments.all(workspaceId).map(toEnvironment);
    },
    async getEnvironmentByName(workspaceId, name) {
      const row = q.getEnvironmentByName.get(workspaceId, name);
      return row && toEnvironment(row);
    },
    async getEnvironment(id) {
      const row = q.getEnvironment.get(id);
      return row && toEnvironment(row);
    },

    async getCmk(id) {
      const row = q.getCmk.get(id);
      return row && toCmk(row);
    },
    async getActiveCmk(environmentId) {
      const row = q.getActiveCmk.get(environmentId);
      return row && toCmk(row);
    },
    async replaceCmk(change, audit) {
      checkCmkReplacement(change);
      if (audit) checkAudit(audit);
      try {
        return tx.replaceCmk.immediate(change, audit);
      } catch (error) {
        throw conflict(error, 'a CMK with that id');
      }
    },
    async rewrapEk(change, audit) {
      checkEkRewrap(change);
      if (!audit) return casEkWrapping(change) > 0;
      checkAudit(audit);
      try {
        return tx.rewrapEk.immediate(change, audit);
      } catch (error) {
        throw conflict(error, 'an audit entry with that id');
      }
    },
    async listActiveCmks({ excludeProviders, limit, afterId }) {
      checkCmkListing(excludeProviders, limit, afterId);
      const excluded = JSON.stringify(excludeProviders);
      const rows = afterId === undefined ? q.listActiveCmks.all(excluded, limit) : q.listActiveCmksAfter.all(excluded, afterId, limit);
      return rows.map(toCmk);
    },
    async getCmkHealth(cmkId) {
      const row = q.getCmkHealth.get(cmkId);
      return row && toCmkHealth(row);
    },
    async putCmkHealth(record, auditIfChanged) {
      checkCmkHealth(record);
      // Without an audit the upsert alone decides since (its CASE), atomically.
      if (!auditIfChanged) return toCmkHealth(q.putCmkHealth.get(cmkHealthParams(record))!);
      checkAudit(auditIfChanged);
      try {
        return toCmkHealth(tx.putCmkHealth.immediate(record, auditIfChanged));
      } catch (error) {
        throw conflict(error, 'an audit entry with that id');
      }
    },

    async setKeyState(change, audit) {
      checkKeyStateChange(change);
      if (audit) checkAudit(audit);
      let row: KeyRow | undefined;
      try {
        // Without audit the one statement is the whole change; with it, both go in one transaction.
        row = audit ? tx.setKeyState.immediate(change, audit) : q.setKeyState.get(keyStateParams(change));
      } catch (error) {
        throw conflict(error, 'an audit entry with that id');
      }
      announce(row);
      return row && toKey(row);
    },
    async listDueDestructions(now, limit) {
      checkDueListing(now, limit);
      return q.listDueDestructions.all(now.getTime(), limit).map(toKey);
    },
    watchKeyStates(listener) {
      return keyStateListeners.add(listener);
    },

    async rotateEnvironmentKey(change, audit) {
      checkEkRotation(change);
      if (audit) checkAudit(audit);
      let result: { repack: RepackRow; retired: KeyRow } | undefined;
      try {
        result = tx.rotateEnvironmentKey.immediate(change, audit);
      } catch (error) {
        throw conflict(error, 'an unfinished repack of this environment');
      }
      if (!result) return undefined;
      announce(result.retired);
      return toRepack(result.repack);
    },
    async getRepack(environmentId) {
      const row = q.getRepack.get(environmentId);
      return row && toRepack(row);
    },
    async listUnfinishedRepacks(limit) {
      checkRepackListing(limit);
      return q.listUnfinishedRepacks.all(limit).map(toRepack);
    },
    async listKeysUnder(environmentId, parentId, limit) {
      checkKeysUnderListing(environmentId, parentId, limit);
      return q.listKeysUnder.all(environmentId, parentId, limit).map(toKey);
    },
    async applyRepackBatch(batch) {
      checkRepackBatch(batch);
      const row = tx.applyRepackBatch.immediate(batch);
      return row && toRepack(row);
    },
    async setRepackPaused(repackId, reason, runner, at) {
      checkRepackPause(repackId, reason, runner, at);
      const row = q.setRepackPaused.get(reason, reason, runner, at.getTime(), repackId);
      return row && toRepack(row);
    },
    async finishRepack(repackId, at, audit) {
      checkRepackFinish(repackId, at);
      if (audit) checkAudit(audit);
      let result: { finished: RepackRow; destroyed: KeyRow | undefined } | undefined;
      try {
        result = tx.finishRepack.immediate(repackId, at, audit);
      } catch (error) {
        throw conflict(error, 'an audit entry with that id');
      }
      if (!result) return undefined;
      announce(result.destroyed);
      return toRepack(result.finished);
    },

    async getKey(environmentId, keyId) {
      const row = q.getKey.get(environmentId, keyId);
      return row && toKey(row);
    },
    async getActiveEk(environmentId) {
      const row = q.getActiveEk.get(environmentId);
      return row && toKey(row);
    },
    async getHourlyKey(environmentId, hourStart) {
      const row = q.getHourly.get(environmentId, hourStart);
      return row && toKey(row);
    },
    async latestHourlyKey(environmentId) {
      const row = q.latestHourly.get(environmentId);
      return row && toKey(row);
    },
    async findScopedKey(environmentId, kind, scopeId) {
      if (kind === 'hourly') throw new TypeError('store: hourly keys are found by getHourlyKey');
      let row: KeyRow | undefined;
      if (kind === 'log') row = q.getActiveLog.get(environmentId);
      else if (kind === 'ek') row = q.getActiveEk.get(environmentId);
      else if (scopeId !== null) row = q.getScoped.get(environmentId, kind, scopeId);
      return row && toKey(row);
    },
    async insertKeyIfAbsent(key) {
      checkKey(key);
      return tx.insertKeyIfAbsent.immediate(key);
    },
    async keyStats(environmentId) {
      const { counts, latestHourly } = tx.keyStats.deferred(environmentId);
      return { counts, latestHourly: latestHourly && toKey(latestHourly) };
    },

    async createObject(object, firstVersion, audit) {
      checkNewObject(object, firstVersion);
      if (audit) checkAudit(audit);
      try {
        tx.createObject.immediate(object, firstVersion, audit);
      } catch (error) {
        throw conflict(error, `an object named "${object.name}" in this environment`);
      }
    },
    async getObject(environmentId, id) {
      const row = q.getObject.get(environmentId, id);
      return row && toObject(row);
    },
    async getObjectByName(environmentId, name) {
      const row = q.getObjectByName.get(environmentId, name);
      return row && toObject(row);
    },
    async listObjects(environmentId, { limit, cursor }) {
      checkLimit(limit);
      const after = cursor === undefined ? undefined : decodeNameCursor(cursor);
      const rows = after === undefined ? q.listObjects.all(environmentId, limit + 1) : q.listObjectsAfter.all(environmentId, after, limit + 1);
      return toPage(rows.map(toObject), limit, (o) => encodeNameCursor(o.name));
    },
    async addObjectVersion(environmentId, objectId, expectedVersion, version, updatedAt, audit) {
      checkNextVersion(objectId, expectedVersion, version);
      if (audit) checkAudit(audit);
      try {
        const row = tx.addObjectVersion.immediate(environmentId, objectId, expectedVersion, version, updatedAt, audit);
        return row && toObject(row);
      } catch (error) {
        throw conflict(error, 'an audit entry with that id');
      }
    },
    async getObjectVersion(objectId, version) {
      const row = q.getVersion.get(objectId, version);
      return row && toObjectVersion(row);
    },
    async listObjectVersions(objectId) {
      return q.listVersions.all(objectId).map(toObjectVersion);
    },
    async deleteObject(environmentId, id, audit) {
      if (!audit) return q.deleteObject.run(environmentId, id).changes > 0;
      checkAudit(audit);
      try {
        return tx.deleteObject.immediate(environmentId, id, audit);
      } catch (error) {
        throw conflict(error, 'an audit entry with that id');
      }
    },

    async createClient(client, firstToken, audit) {
      checkNewClient(client, firstToken);
      if (audit) checkAudit(audit, client.workspaceId);
      try {
        tx.createClient.immediate(client, firstToken, audit);
      } catch (error) {
        throw conflict(error, `a client named "${client.name}" in this workspace`);
      }
    },
    async getClient(workspaceId, id) {
      const row = q.getClient.get(workspaceId, id);
      return row && toClientWithUsage(row);
    },
    async listClients(workspaceId, { limit, cursor }) {
      checkLimit(limit);
      const after = cursor === undefined ? undefined : decodeNameCursor(cursor);
      const rows = after === undefined ? q.listClients.all(workspaceId, limit + 1) : q.listClientsAfter.all(workspaceId, after, limit + 1);
      return toPage(rows.map(toClientWithUsage), limit, (c) => encodeNameCursor(c.name));
    },
    async updateClient(workspaceId, id, patch, updatedAt, audit) {
      checkClientPatch(patch, updatedAt);
      if (audit) checkAudit(audit, workspaceId);
      try {
        const row = tx.updateClient.immediate(workspaceId, id, patch, updatedAt, audit);
        return row && toClient(row);
      } catch (error) {
        throw conflict(error, `a client named "${patch.name ?? ''}" in this workspace`);
      }
    },
    async deleteClient(workspaceId, id, audit) {
      if (audit) checkAudit(audit, workspaceId);
      try {
        return tx.deleteClient.immediate(workspaceId, id, audit);
      } catch (error) {
        throw conflict(error, 'an audit entry with that id');
      }
    },
    async addClientToken(workspaceId, clientId, token, othersExpireBy, now, audit) {
      checkClientToken(clientId, token);
      checkRotationTimes(othersExpireBy, now);
      if (audit) checkAudit(audit, workspaceId);
      try {
        return tx.addClientToken.immediate(workspaceId, clientId, token, othersExpireBy, now, audit);
      } catch (error) {
        throw conflict(error, 'a token with that hash');
      }
    },
    async listClientTokens(clientId) {
      return q.listTokens.all(clientId).map(toClientToken);
    },
    async findClientToken(tokenHash) {
      const row = q.findToken.get(tokenHash);
      return row && toClientTokenJoin(row);
    },
    async recordClientUsage(deltas) {
      checkUsageDeltas(deltas);
      if (deltas.length === 0) return;
      tx.recordClientUsage.immediate(mergeUsageDeltas(deltas).map(usageParams));
    },

    async appendAudit(append) {
      checkAudit(append);
      try {
        tx.appendAudit.immediate(append);
      } catch (error) {
        throw conflict(error, 'an audit entry with that id');
      }
    },
    async listAuditEntries(workspaceId, { afterSeq, limit }) {
      checkAuditPage(afterSeq, limit);
      return q.listAudit.all(workspaceId, afterSeq, limit).map(toAuditEntry);
    },
    async getAuditHead(workspaceId) {
      const row = q.getAuditHead.get(workspaceId);
      return row && toAuditHead(row);
    },

    async runExclusive(name, work) {
      if (running.has(name)) return undefined;
      running.add(name);
      try {
        return await work();
      } finally {
        running.delete(name);
      }
    },

    async close() {
      if (db.open) db.close();
    },
  };
  return store;
}
