/**
 * The SQLite store's SQL and the mapping of records to bound parameters. Statements name their
 * columns (rather than SELECT *) like the PostgreSQL ones, so both read the same row shapes.
 */
import type Database from 'better-sqlite3';
import {
  COLUMNS, cols,
  type CmkRow, type EnvironmentRow, type KeyRow, type KindCountRow, type ObjectRow, type ObjectVersionRow, type SettingRow, type Table, type WorkspaceRow,
} from '../rows.js';
import type { KeyRecord, NewEnvironment, ObjectRecord, ObjectVersionRecord, WorkspaceRecord } from '../store.js';

// What SQLite is handed for a column: Dates as integer milliseconds, JSON as text.
type Bound<T> = T extends Date ? never : T extends Buffer ? T : T extends object ? never : T;
export type Params<R> = { readonly [K in keyof R]: Bound<R[K]> };

export function workspaceParams(w: WorkspaceRecord): Params<WorkspaceRow> {
  return { id: w.id, name: w.name, created_at: w.createdAt.getTime() };
}

export function environmentParams(n: NewEnvironment): Params<EnvironmentRow> {
  const e = n.environment;
  return { id: e.id, workspace_id: e.workspaceId, name: e.name, created_at: e.createdAt.getTime() };
}

export function cmkParams(n: NewEnvironment): Params<CmkRow> {
  const c = n.cmk;
  return { id: c.id, environment_id: c.environmentId, provider: c.provider, config: JSON.stringify(c.config), state: c.state, created_at: c.createdAt.getTime() };
}

export function keyParams(k: KeyRecord): Params<KeyRow> {
  return {
    id: k.id, environment_id: k.environmentId, kind: k.kind, scope_id: k.scopeId, hour_start: k.hourStart, parent_id: k.parentId,
    wrapped: k.wrapped, wrapping_key_version: k.wrappingKeyVersion, state: k.state, created_at: k.createdAt.getTime(),
  };
}

export function objectParams(o: ObjectRecord): Params<ObjectRow> {
  return {
    id: o.id, environment_id: o.environmentId, name: o.name, context: o.context, context_key_id: o.contextKeyId,
    metadata: JSON.stringify(o.metadata), version: o.version, created_at: o.createdAt.getTime(), updated_at: o.updatedAt.getTime(),
  };
}

export function versionParams(v: ObjectVersionRecord): Params<ObjectVersionRow> {
  return { object_id: v.objectId, version: v.version, data_key_id: v.dataKeyId, wrapped_data_key: v.wrappedDataKey, ciphertext: v.ciphertext, created_at: v.createdAt.getTime() };
}

function insert(table: Table, suffix = ''): string {
  const names = COLUMNS[table];
  return `INSERT INTO ${table} (${names.join(', ')}) VALUES (${names.map((c) => `@${c}`).join(', ')})${suffix}`;
}

/** Prepared once per connection; better-sqlite3 statements are reusable and cheap to run. */
export function prepareStatements(db: Database.Database) {
  const W = cols('workspaces');
  const E = cols('environments');
  const K = cols('keys');
  const O = cols('objects');
  const V = cols('object_versions');
  return {
    getSetting: db.prepare<[string], SettingRow>('SELECT value FROM settings WHERE name = ?'),
    insertSetting: db.prepare<[string, string]>('INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING'),
    putSetting: db.prepare<[string, string]>('INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value'),

    insertWorkspace: db.prepare<Params<WorkspaceRow>>(insert('workspaces')),
    getWorkspace: db.prepare<[string], WorkspaceRow>(`SELECT ${W} FROM workspaces WHERE id = ?`),
    listWorkspaces: db.prepare<[number], WorkspaceRow>(`SELECT ${W} FROM workspaces ORDER BY created_at, id LIMIT ?`),
    listWorkspacesAfter: db.prepare<[number, string, number], WorkspaceRow>(
      `SELECT ${W} FROM workspaces WHERE (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?`,
    ),

    insertEnvironment: db.prepare<Params<EnvironmentRow>>(insert('environments')),
    listEnvironments: db.prepare<[string], EnvironmentRow>(`SELECT ${E} FROM environments WHERE workspace_id = ? ORDER BY created_at, id`),
    getEnvironmentByName: db.prepare<[string, string], EnvironmentRow>(`SELECT ${E} FROM environments WHERE workspace_id = ? AND name = ?`),
    getEnvironment: db.prepare<[string], EnvironmentRow>(`SELECT ${E} FROM environments WHERE id = ?`),

    insertCmk: db.prepare<Params<CmkRow>>(insert('cmks')),
    getCmk: db.prepare<[string], CmkRow>(`SELECT ${cols('cmks')} FROM cmks WHERE id = ?`),
    getActiveCmk: db.prepare<[string], CmkRow>(
      `SELECT ${cols('cmks', 'c')} FROM keys k JOIN cmks c ON c.id = k.parent_id AND c.environment_id = k.environment_id
       WHERE k.environment_id = ? AND k.kind = 'ek' AND k.state = 'active'`,
    ),

    // Any uniqueness conflict (partial indexes included) is left for the caller to resolve.
    insertKey: db.prepare<Params<KeyRow>>(insert('keys', ' ON CONFLICT DO NOTHING')),
    // The EK of a new environment: a conflict here must fail the whole transaction.
    insertEk: db.prepare<Params<KeyRow>>(insert('keys')),
    getKey: db.prepare<[string, string], KeyRow>(`SELECT ${K} FROM keys WHERE environment_id = ? AND id = ?`),
    getKeyById: db.prepare<[string], KeyRow>(`SELECT ${K} FROM keys WHERE id = ?`),
    getActiveEk: db.prepare<[string], KeyRow>(`SELECT ${K} FROM keys WHERE environment_id = ? AND kind = 'ek' AND state = 'active'`),
    getActiveLog: db.prepare<[string], KeyRow>(`SELECT ${K} FROM keys WHERE environment_id = ? AND kind = 'log' AND state = 'active'`),
    getHourly: db.prepare<[string, number], KeyRow>(`SELECT ${K} FROM keys WHERE environment_id = ? AND kind = 'hourly' AND hour_start = ?`),
    getScoped: db.prepare<[string, string, string], KeyRow>(`SELECT ${K} FROM keys WHERE environment_id = ? AND kind = ? AND scope_id = ?`),
    countKinds: db.prepare<[string], KindCountRow>('SELECT kind, count(*) AS n FROM keys WHERE environment_id = ? GROUP BY kind'),
    latestHourly: db.prepare<[string], KeyRow>(
      `SELECT ${K} FROM keys WHERE environment_id = ? AND kind = 'hourly' ORDER BY hour_start DESC LIMIT 1`,
    ),

    insertObject: db.prepare<Params<ObjectRow>>(insert('objects')),
    getObject: db.prepare<[string, string], ObjectRow>(`SELECT ${O} FROM objects WHERE environment_id = ? AND id = ?`),
    getObjectByName: db.prepare<[string, string], ObjectRow>(`SELECT ${O} FROM objects WHERE environment_id = ? AND name = ?`),
    listObjects: db.prepare<[string, number], ObjectRow>(`SELECT ${O} FROM objects WHERE environment_id = ? ORDER BY name LIMIT ?`),
    listObjectsAfter: db.prepare<[string, string, number], ObjectRow>(
      `SELECT ${O} FROM objects WHERE environment_id = ? AND name > ? ORDER BY name LIMIT ?`,
    ),
    // The compare-and-set: only the caller that saw the current version moves it forward.
    casObject: db.prepare<[number, number, string, string, number], ObjectRow>(
      `UPDATE objects SET version = ?, updated_at = ? WHERE environment_id = ? AND id = ? AND version = ? RETURNING ${O}`,
    ),
    insertVersion: db.prepare<Params<ObjectVersionRow>>(insert('object_versions')),
    getVersion: db.prepare<[string, number], ObjectVersionRow>(`SELECT ${V} FROM object_versions WHERE object_id = ? AND version = ?`),
    listVersions: db.prepare<[string], ObjectVersionRow>(`SELECT ${V} FROM object_versions WHERE object_id = ? ORDER BY version DESC`),
    deleteObject: db.prepare<[string, string]>('DELETE FROM objects WHERE environment_id = ? AND id = ?'),
  };
}

