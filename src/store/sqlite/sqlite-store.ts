/**
 * The embedded store: one better-sqlite3 connection per process.
 *
 * better-sqlite3 is synchronous, so inside one process every method already runs alone; the
 * transactions below are for atomicity and for other processes on the same file. Write
 * transactions are IMMEDIATE: a deferred one that reads first and then writes cannot wait for the
 * lock (SQLite fails it with SQLITE_BUSY at once), while an immediate one waits up to busy_timeout.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { decodeObjectCursor, decodeWorkspaceCursor, encodeObjectCursor, encodeWorkspaceCursor, toPage } from '../cursor.js';
import { checkKey, checkLimit, checkNewEnvironment, checkNewObject, checkNextVersion } from '../preconditions.js';
import { SCOPED_KINDS, kindCounts, toCmk, toEnvironment, toKey, toObject, toObjectVersion, toWorkspace, type KeyRow } from '../rows.js';
import { StoreConflictError, type KeyRecord, type NewEnvironment, type ObjectRecord, type ObjectVersionRecord, type Store, type WorkspaceRecord } from '../store.js';
import { migrateSqlite } from './migrations.js';
import { cmkParams, environmentParams, keyParams, objectParams, prepareStatements, versionParams, workspaceParams } from './statements.js';

export interface SqliteStoreOptions {
  /** Database file, created with its directory if missing; ":memory:" for a throwaway store. */
  readonly path: string;
}

/** Turns a uniqueness violation into the store's own error; anything else is rethrown as is. */
function conflict(error: unknown, what: string): unknown {
  if (!(error instanceof Database.SqliteError)) return error;
  if (error.code === 'SQLITE_CONSTRAINT_UNIQUE') return new StoreConflictError(`${what} already exists`);
  if (error.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return new StoreConflictError('a record with that id already exists');
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

  const insertEnvironmentRows = (env: NewEnvironment): void => {
    q.insertEnvironment.run(environmentParams(env));
    q.insertCmk.run(cmkParams(env));
    q.insertEk.run(keyParams(env.ek));
  };

  const identityWinner = (key: KeyRecord): KeyRow | undefined => {
    if (key.kind === 'hourly') return q.getHourly.get(key.environmentId, key.hourStart ?? Number.NaN);
    if (SCOPED_KINDS.includes(key.kind)) return q.getScoped.get(key.environmentId, key.kind, key.scopeId ?? '');
    if (key.state !== 'active') return undefined;
    return key.kind === 'log' ? q.getActiveLog.get(key.environmentId) : q.getActiveEk.get(key.environmentId);
  };

  const tx = {
    putSettingIfAbsent: db.transaction((name: string, value: string): string => {
      q.insertSetting.run(name, value);
      return q.getSetting.get(name)!.value;
    }),
    createWorkspace: db.transaction((workspace: WorkspaceRecord, first: NewEnvironment) => {
      q.insertWorkspace.run(workspaceParams(workspace));
      insertEnvironmentRows(first);
    }),
    createEnvironment: db.transaction(insertEnvironmentRows),
    insertKeyIfAbsent: db.transaction((key: KeyRecord): KeyRecord => {
      if (q.insertKey.run(keyParams(key)).changes === 1) return key;
      // The id itself may be what collided: a retry of the same insert is answered with the stored key.
      const winner = identityWinner(key) ?? q.getKeyById.get(key.id);
      if (!winner || winner.environment_id !== key.environmentId || winner.kind !== key.kind) {
        throw new StoreConflictError('a key with that id already exists');
      }
      return toKey(winner);
    }),
    keyStats: db.transaction((environmentId: string) => ({
      counts: kindCounts(q.countKinds.all(environmentId)),
      latestHourly: q.latestHourly.get(environmentId),
    })),
    createObject: db.transaction((object: ObjectRecord, first: ObjectVersionRecord) => {
      q.insertObject.run(objectParams(object));
      q.insertVersion.run(versionParams(first));
    }),
    addObjectVersion: db.transaction((environmentId: string, objectId: string, expected: number, version: ObjectVersionRecord, updatedAt: Date) => {
      const row = q.casObject.get(expected + 1, updatedAt.getTime(), environmentId, objectId, expected);
      if (!row) return undefined;
      q.insertVersion.run(versionParams(version));
      return row;
    }),
  };

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

    async createWorkspace(workspace, first) {
      checkNewEnvironment(first, workspace);
      try {
        tx.createWorkspace.immediate(workspace, first);
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
    async createEnvironment(env) {
      checkNewEnvironment(env);
      try {
        tx.createEnvironment.immediate(env);
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

    async createObject(object, firstVersion) {
      checkNewObject(object, firstVersion);
      try {
        tx.createObject.immediate(object, firstVersion);
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
      const after = cursor === undefined ? undefined : decodeObjectCursor(cursor);
      const rows = after === undefined ? q.listObjects.all(environmentId, limit + 1) : q.listObjectsAfter.all(environmentId, after, limit + 1);
      return toPage(rows.map(toObject), limit, (o) => encodeObjectCursor(o.name));
    },
    async addObjectVersion(environmentId, objectId, expectedVersion, version, updatedAt) {
      checkNextVersion(objectId, expectedVersion, version);
      const row = tx.addObjectVersion.immediate(environmentId, objectId, expectedVersion, version, updatedAt);
      return row && toObject(row);
    },
    async getObjectVersion(objectId, version) {
      const row = q.getVersion.get(objectId, version);
      return row && toObjectVersion(row);
    },
    async listObjectVersions(objectId) {
      return q.listVersions.all(objectId).map(toObjectVersion);
    },
    async deleteObject(environmentId, id) {
      return q.deleteObject.run(environmentId, id).changes > 0;
    },

    async close() {
      if (db.open) db.close();
    },
  };
  return store;
}
