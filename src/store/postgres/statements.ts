/**
 * The PostgreSQL store's SQL, one named statement each: pg prepares a named statement once per
 * pooled connection and reuses the plan afterwards.
 */
import { COLUMNS, cols, type Table } from '../rows.js';
import type { KeyRecord, NewEnvironment, ObjectRecord, ObjectVersionRecord, WorkspaceRecord } from '../store.js';

function insert(table: Table, suffix = ''): string {
  const names = COLUMNS[table];
  return `INSERT INTO ${table} (${names.join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')})${suffix}`;
}

const W = cols('workspaces');
const E = cols('environments');
const K = cols('keys');
const O = cols('objects');
const V = cols('object_versions');

export const SQL = {
  getSetting: 'SELECT value FROM settings WHERE name = $1',
  insertSetting: 'INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING value',
  putSetting: 'INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value',

  insertWorkspace: insert('workspaces'),
  getWorkspace: `SELECT ${W} FROM workspaces WHERE id = $1`,
  // COLLATE "C" on the tie-breaker so the order (and the cursor comparison) do not depend on the locale.
  listWorkspaces: `SELECT ${W} FROM workspaces ORDER BY created_at, id COLLATE "C" LIMIT $1`,
  listWorkspacesAfter: `SELECT ${W} FROM workspaces WHERE (created_at, id COLLATE "C") > ($1, $2)
    ORDER BY created_at, id COLLATE "C" LIMIT $3`,

  insertEnvironment: insert('environments'),
  listEnvironments: `SELECT ${E} FROM environments WHERE workspace_id = $1 ORDER BY created_at, id COLLATE "C"`,
  getEnvironmentByName: `SELECT ${E} FROM environments WHERE workspace_id = $1 AND name = $2`,
  getEnvironment: `SELECT ${E} FROM environments WHERE id = $1`,

  insertCmk: insert('cmks'),
  getCmk: `SELECT ${cols('cmks')} FROM cmks WHERE id = $1`,
  getActiveCmk: `SELECT ${cols('cmks', 'c')} FROM keys k JOIN cmks c ON c.id = k.parent_id AND c.environment_id = k.environment_id
    WHERE k.environment_id = $1 AND k.kind = 'ek' AND k.state = 'active'`,

  // No conflict target: DO NOTHING then covers every unique index, the partial ones included.
  insertKey: insert('keys', ' ON CONFLICT DO NOTHING'),
  insertEk: insert('keys'),
  getKey: `SELECT ${K} FROM keys WHERE environment_id = $1 AND id = $2`,
  getKeyById: `SELECT ${K} FROM keys WHERE id = $1`,
  getActiveEk: `SELECT ${K} FROM keys WHERE environment_id = $1 AND kind = 'ek' AND state = 'active'`,
  getActiveLog: `SELECT ${K} FROM keys WHERE environment_id = $1 AND kind = 'log' AND state = 'active'`,
  getHourly: `SELECT ${K} FROM keys WHERE environment_id = $1 AND kind = 'hourly' AND hour_start = $2`,
  getScoped: `SELECT ${K} FROM keys WHERE environment_id = $1 AND kind = $2 AND scope_id = $3`,
  countKinds: 'SELECT kind, count(*) AS n FROM keys WHERE environment_id = $1 GROUP BY kind',
  latestHourly: `SELECT ${K} FROM keys WHERE environment_id = $1 AND kind = 'hourly' ORDER BY hour_start DESC LIMIT 1`,

  getObject: `SELECT ${O} FROM objects WHERE environment_id = $1 AND id = $2`,
  getObjectByName: `SELECT ${O} FROM objects WHERE environment_id = $1 AND name = $2`,
  listObjects: `SELECT ${O} FROM objects WHERE environment_id = $1 ORDER BY name LIMIT $2`,
  listObjectsAfter: `SELECT ${O} FROM objects WHERE environment_id = $1 AND name > $2 ORDER BY name LIMIT $3`,
  // Object and first version in ONE statement (a data-modifying CTE): atomic without BEGIN/COMMIT,
  // so one round trip instead of four. The version row's foreign key is checked at the end of the
  // statement, when the object row is visible.
  createObject: `WITH o AS (${insert('objects', ' RETURNING id')})
    INSERT INTO object_versions (${cols('object_versions')}) SELECT o.id, $10, $11, $12, $13, $14 FROM o`,
  // The compare-and-set and the new version row in one statement, likewise. The row lock makes
  // concurrent callers with the same expected version queue; each re-checks the version after the
  // first commits, so only the first matches and only it inserts a version.
  casObjectAddVersion: `WITH u AS (UPDATE objects SET version = $1, updated_at = $2
      WHERE environment_id = $3 AND id = $4 AND version = $5 RETURNING ${O}),
    v AS (INSERT INTO object_versions (${cols('object_versions')}) SELECT u.id, $1, $6, $7, $8, $9 FROM u)
    SELECT ${O} FROM u`,
  getVersion: `SELECT ${V} FROM object_versions WHERE object_id = $1 AND version = $2`,
  listVersions: `SELECT ${V} FROM object_versions WHERE object_id = $1 ORDER BY version DESC`,
  deleteObject: 'DELETE FROM objects WHERE environment_id = $1 AND id = $2',
} as const;

export type StatementName = keyof typeof SQL;

// Values in COLUMNS order. JSON is sent as text: pg would turn a JS array into a PostgreSQL array.
export const values = {
  workspace: (w: WorkspaceRecord): unknown[] => [w.id, w.name, w.createdAt],
  environment: ({ environment: e }: NewEnvironment): unknown[] => [e.id, e.workspaceId, e.name, e.createdAt],
  cmk: ({ cmk: c }: NewEnvironment): unknown[] => [c.id, c.environmentId, c.provider, JSON.stringify(c.config), c.state, c.createdAt],
  key: (k: KeyRecord): unknown[] => [
    k.id, k.environmentId, k.kind, k.scopeId, k.hourStart, k.parentId, k.wrapped, k.wrappingKeyVersion, k.state, k.createdAt,
  ],
  object: (o: ObjectRecord): unknown[] => [
    o.id, o.environmentId, o.name, o.context, o.contextKeyId, JSON.stringify(o.metadata), o.version, o.createdAt, o.updatedAt,
  ],
  version: (v: ObjectVersionRecord): unknown[] => [v.objectId, v.version, v.dataKeyId, v.wrappedDataKey, v.ciphertext, v.createdAt],
};
