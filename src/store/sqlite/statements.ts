/**
 * The SQLite store's SQL and the mapping of records to bound parameters. Statements name their
 * columns (rather than SELECT *) like the PostgreSQL ones, so both read the same row shapes.
 */
import type Database from 'better-sqlite3';
import {
  COLUMNS, clientUsageCols, cols,
  type AuditEntryRow, type AuditHeadRow, type ClientRow, type ClientTokenJoinRow, type ClientTokenRow, type ClientUsageRow, type CmkHealthRow,
  type CmkRow, type EnvironmentRow, type KeyRow, type KindCountRow, type ObjectRow, type ObjectVersionRow, type RepackRow, type SettingRow, type Table,
  type WorkspaceRow,
} from '../rows.js';
import type {
  AuditEntryRecord, AuditHead, ClientPatch, ClientRecord, ClientTokenRecord, ClientUsageDelta, CmkHealthRecord, CmkRecord, EkRotation, KeyRecord,
  KeyStateChange, NewEnvironment, ObjectRecord, ObjectVersionRecord, RepackBatch, RepackedKey, WorkspaceRecord,
} from '../store.js';

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

export function cmkParams(c: CmkRecord): Params<CmkRow> {
  return { id: c.id, environment_id: c.environmentId, provider: c.provider, config: JSON.stringify(c.config), state: c.state, created_at: c.createdAt.getTime() };
}

export function cmkHealthParams(h: CmkHealthRecord): Params<CmkHealthRow> {
  return {
    cmk_id: h.cmkId, state: h.state, since: h.since.getTime(), checked_at: h.checkedAt.getTime(), current_version: h.currentVersion,
    expires_at: h.expiresAt === null ? null : h.expiresAt.getTime(), deletion_at: h.deletionAt === null ? null : h.deletionAt.getTime(), detail: h.detail,
  };
}

/** A CMK replacement's move of the EK: its new parent and wrapping. */
export interface MoveEkParams {
  readonly environment_id: string;
  readonly id: string;
  readonly parent_id: string;
  readonly wrapped: Buffer;
  readonly wrapping_key_version: string;
}

export function keyParams(k: KeyRecord): Params<KeyRow> {
  return {
    id: k.id, environment_id: k.environmentId, kind: k.kind, scope_id: k.scopeId, hour_start: k.hourStart, parent_id: k.parentId,
    wrapped: k.wrapped, wrapping_key_version: k.wrappingKeyVersion, state: k.state, created_at: k.createdAt.getTime(),
    destroy_at: k.destroyAt ? k.destroyAt.getTime() : null,
  };
}

/** setKeyState's parameters: the allowed current states as one JSON array, destroy_at only for a scheduled destruction. */
export interface KeyStateParams {
  readonly environment_id: string;
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly destroy_at: number | null;
}

export function keyStateParams(c: KeyStateChange): KeyStateParams {
  return {
    environment_id: c.environmentId, id: c.keyId, from: JSON.stringify(c.from), to: c.to,
    destroy_at: c.to === 'scheduled-destruction' && c.destroyAt ? c.destroyAt.getTime() : null,
  };
}

/** A rotation's repack row: running, nothing done yet, `total` keys to move. */
export function repackParams(c: EkRotation, total: number): Params<RepackRow> {
  const at = c.startedAt.getTime();
  return {
    id: c.repackId, environment_id: c.environmentId, from_ek_id: c.fromEkId, to_ek_id: c.ek.id, from_cmk_id: c.fromCmkId, to_cmk_id: c.cmk.id,
    state: 'running', total, done: 0, started_at: at, updated_at: at, finished_at: null, paused_reason: null, runner: null,
  };
}

/** One key of a repack batch: moved only if still under the old EK with the bytes the caller re-wrapped. */
export interface RepackKeyParams {
  readonly id: string;
  readonly environment_id: string;
  readonly from_ek_id: string;
  readonly to_ek_id: string;
  readonly expected: Buffer;
  readonly wrapped: Buffer;
}

export function repackKeyParams(b: RepackBatch, k: RepackedKey): RepackKeyParams {
  return { id: k.id, environment_id: b.environmentId, from_ek_id: b.fromEkId, to_ek_id: b.toEkId, expected: k.expectedWrapped, wrapped: k.wrapped };
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

export function clientParams(c: ClientRecord): Params<ClientRow> {
  return {
    id: c.id, workspace_id: c.workspaceId, name: c.name, role: c.role, environments: JSON.stringify(c.environments),
    allowed_cidrs: JSON.stringify(c.allowedCidrs), token_ttl_seconds: c.tokenTtlSeconds, rate_limit_per_second: c.rateLimitPerSecond,
    disabled: c.disabled ? 1 : 0, created_at: c.createdAt.getTime(), updated_at: c.updatedAt.getTime(),
  };
}

export function tokenParams(t: ClientTokenRecord): Params<ClientTokenRow> {
  return { id: t.id, client_id: t.clientId, token_hash: t.tokenHash, created_at: t.createdAt.getTime(), expires_at: t.expiresAt.getTime() };
}

export function auditParams(e: AuditEntryRecord): Params<AuditEntryRow> {
  return {
    workspace_id: e.workspaceId, seq: e.seq, id: e.id, environment_id: e.environmentId, at: e.at.getTime(), sealing: e.sealing, body: e.body, link: e.link,
  };
}

export function auditHeadParams(workspaceId: string, head: AuditHead): Params<AuditHeadRow> {
  return { workspace_id: workspaceId, seq: head.seq, link: head.link };
}

/** A patch as one flag (1: set the column) and one value per field, so that one statement serves every patch. */
export interface PatchParams {
  readonly workspace_id: string;
  readonly id: string;
  readonly updated_at: number;
  readonly set_name: number; readonly name: string | null;
  readonly set_role: number; readonly role: string | null;
  readonly set_environments: number; readonly environments: string | null;
  readonly set_allowed_cidrs: number; readonly allowed_cidrs: string | null;
  readonly set_token_ttl_seconds: number; readonly token_ttl_seconds: number | null;
  readonly set_rate_limit_per_second: number; readonly rate_limit_per_second: number | null;
  readonly set_disabled: number; readonly disabled: number | null;
}

export function patchParams(workspaceId: string, id: string, p: ClientPatch, updatedAt: Date): PatchParams {
  const flag = (v: unknown): number => (v === undefined ? 0 : 1);
  return {
    workspace_id: workspaceId, id, updated_at: updatedAt.getTime(),
    set_name: flag(p.name), name: p.name ?? null,
    set_role: flag(p.role), role: p.role ?? null,
    set_environments: flag(p.environments), environments: p.environments === undefined ? null : JSON.stringify(p.environments),
    set_allowed_cidrs: flag(p.allowedCidrs), allowed_cidrs: p.allowedCidrs === undefined ? null : JSON.stringify(p.allowedCidrs),
    set_token_ttl_seconds: flag(p.tokenTtlSeconds), token_ttl_seconds: p.tokenTtlSeconds ?? null,
    set_rate_limit_per_second: flag(p.rateLimitPerSecond), rate_limit_per_second: p.rateLimitPerSecond ?? null,
    set_disabled: flag(p.disabled), disabled: p.disabled === undefined ? null : p.disabled ? 1 : 0,
  };
}

export interface UsageParams {
  readonly id: string;
  readonly requests: number;
  readonly failures: number;
  readonly at: number;
  readonly ip: string;
}

export function usageParams(d: ClientUsageDelta): UsageParams {
  return { id: d.clientId, requests: d.requests, failures: d.failures, at: d.lastUsedAt.getTime(), ip: d.lastUsedIp };
}

function patched(column: string): string {
  return `${column} = CASE WHEN @set_${column} THEN @${column} ELSE ${column} END`;
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
  const H = cols('cmk_health');
  const O = cols('objects');
  const V = cols('object_versions');
  const C = cols('clients');
  const CU = clientUsageCols();
  const T = cols('client_tokens');
  const A = cols('audit_entries');
  const R = cols('repacks');
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
    retireCmk: db.prepare<[string, string]>(`UPDATE cmks SET state = 'decrypt-only' WHERE id = ? AND environment_id = ?`),
    // Providers to skip arrive as one JSON array, so one prepared statement serves every list.
    listActiveCmks: db.prepare<[string, number], CmkRow>(
      `SELECT ${cols('cmks')} FROM cmks WHERE state = 'active' AND provider NOT IN (SELECT value FROM json_each(?)) ORDER BY id LIMIT ?`,
    ),
    listActiveCmksAfter: db.prepare<[string, string, number], CmkRow>(
      `SELECT ${cols('cmks')} FROM cmks WHERE state = 'active' AND provider NOT IN (SELECT value FROM json_each(?)) AND id > ? ORDER BY id LIMIT ?`,
    ),
    getCmkHealth: db.prepare<[string], CmkHealthRow>(`SELECT ${H} FROM cmk_health WHERE cmk_id = ?`),
    // An unchanged state keeps the stored since: CASE reads the row as it was before this update.
    putCmkHealth: db.prepare<Params<CmkHealthRow>, CmkHealthRow>(
      `${insert('cmk_health')} ON CONFLICT (cmk_id) DO UPDATE SET state = excluded.state,
       since = CASE WHEN cmk_health.state = excluded.state THEN cmk_health.since ELSE excluded.since END,
       checked_at = excluded.checked_at, current_version = excluded.current_version, expires_at = excluded.expires_at,
       deletion_at = excluded.deletion_at, detail = excluded.detail
       RETURNING ${H}`,
    ),

    // Any uniqueness conflict (partial indexes included) is left for the caller to resolve.
    insertKey: db.prepare<Params<KeyRow>>(insert('keys', ' ON CONFLICT DO NOTHING')),
    // The EK of a new environment: a conflict here must fail the whole transaction.
    insertEk: db.prepare<Params<KeyRow>>(insert('keys')),
    getKey: db.prepare<[string, string], KeyRow>(`SELECT ${K} FROM keys WHERE environment_id = ? AND id = ?`),
    getKeyById: db.prepare<[string], KeyRow>(`SELECT ${K} FROM keys WHERE id = ?`),
    getActiveEk: db.prepare<[string], KeyRow>(`SELECT ${K} FROM keys WHERE environment_id = ? AND kind = 'ek' AND state = 'active'`),
    moveEk: db.prepare<MoveEkParams>(
      `UPDATE keys SET parent_id = @parent_id, wrapped = @wrapped, wrapping_key_version = @wrapping_key_version
       WHERE environment_id = @environment_id AND id = @id AND kind = 'ek'`,
    ),
    // The compare-and-set of a re-wrap: only the caller that saw the current bytes replaces them.
    casEkWrapping: db.prepare<[Buffer, string, string, string, string, Buffer]>(
      `UPDATE keys SET wrapped = ?, wrapping_key_version = ?
       WHERE environment_id = ? AND id = ? AND kind = 'ek' AND parent_id = ? AND wrapped = ?`,
    ),
    // The compare-and-set of a lifecycle change in one statement; destroying erases the wrapped key
    // (a zero-length blob) in the same write, so no committed state has a destroyed key with material.
    setKeyState: db.prepare<KeyStateParams, KeyRow>(
      `UPDATE keys SET state = @to, destroy_at = @destroy_at, wrapped = CASE WHEN @to = 'destroyed' THEN X'' ELSE wrapped END
       WHERE environment_id = @environment_id AND id = @id AND state IN (SELECT value FROM json_each(@from)) RETURNING ${K}`,
    ),
    // The literal state lets SQLite use the partial index keys_due_destruction.
    listDueDestructions: db.prepare<[number, number], KeyRow>(
      `SELECT ${K} FROM keys WHERE state = 'scheduled-destruction' AND destroy_at <= ? ORDER BY destroy_at, id LIMIT ?`,
    ),
    getActiveLog: db.prepare<[string], KeyRow>(`SELECT ${K} FROM keys WHERE environment_id = ? AND kind = 'log' AND state = 'active'`),
    getHourly: db.prepare<[string, number], KeyRow>(`SELECT ${K} FROM keys WHERE environment_id = ? AND kind = 'hourly' AND hour_start = ?`),
    getScoped: db.prepare<[string, string, string], KeyRow>(`SELECT ${K} FROM keys WHERE environment_id = ? AND kind = ? AND scope_id = ?`),
    countKinds: db.prepare<[string], KindCountRow>('SELECT kind, count(*) AS n FROM keys WHERE environment_id = ? GROUP BY kind'),
    latestHourly: db.prepare<[string], KeyRow>(
      `SELECT ${K} FROM keys WHERE environment_id = ? AND kind = 'hourly' ORDER BY hour_start DESC LIMIT 1`,
    ),
    // insertKeyIfAbsent's check of the parent: a key may be created under an EK only while it is active.
    getParentEk: db.prepare<[string], Pick<KeyRow, 'state'>>(`SELECT state FROM keys WHERE id = ? AND kind = 'ek'`),
    // Index keys_parent.
    listKeysUnder: db.prepare<[string, string, number], KeyRow>(
      `SELECT ${K} FROM keys WHERE environment_id = ? AND parent_id = ? AND kind <> 'ek' ORDER BY id LIMIT ?`,
    ),
    countKeysUnder: db.prepare<[string, string], Pick<KindCountRow, 'n'>>(
      // No kind filter: an EK's parent is a CMK, never an EK, and without it the keys_parent index alone answers.
      `SELECT count(*) AS n FROM keys WHERE environment_id = ? AND parent_id = ?`,
    ),
    anyKeyUnder: db.prepare<[string, string], Pick<KeyRow, 'id'>>(`SELECT id FROM keys WHERE environment_id = ? AND parent_id = ? LIMIT 1`),
    // The compare-and-set of one key of a repack batch.
    repackKey: db.prepare<RepackKeyParams>(
      `UPDATE keys SET parent_id = @to_ek_id, wrapped = @wrapped
       WHERE id = @id AND environment_id = @environment_id AND parent_id = @from_ek_id AND kind <> 'ek' AND wrapped = @expected`,
    ),

    insertRepack: db.prepare<Params<RepackRow>, RepackRow>(insert('repacks', ` RETURNING ${R}`)),
    getRepackById: db.prepare<[string], RepackRow>(`SELECT ${R} FROM repacks WHERE id = ?`),
    unfinishedRepack: db.prepare<[string], Pick<RepackRow, 'id'>>(`SELECT id FROM repacks WHERE environment_id = ? AND state <> 'done'`),
    // The unfinished one (at most one) first, then the finished ones newest first.
    getRepack: db.prepare<[string], RepackRow>(
      `SELECT ${R} FROM repacks WHERE environment_id = ? ORDER BY state = 'done', finished_at DESC, started_at DESC, id DESC LIMIT 1`,
    ),
    listUnfinishedRepacks: db.prepare<[number], RepackRow>(`SELECT ${R} FROM repacks WHERE state <> 'done' ORDER BY state = 'paused', started_at, id LIMIT ?`),
    addRepackProgress: db.prepare<[number, string, number, string], RepackRow>(
      `UPDATE repacks SET done = done + ?, state = 'running', paused_reason = NULL, runner = ?, updated_at = ? WHERE id = ? AND state <> 'done'
       RETURNING ${R}`,
    ),
    setRepackPaused: db.prepare<[string | null, string | null, string, number, string], RepackRow>(
      `UPDATE repacks SET state = CASE WHEN ? IS NULL THEN 'running' ELSE 'paused' END, paused_reason = ?, runner = ?, updated_at = ?
       WHERE id = ? AND state <> 'done' RETURNING ${R}`,
    ),
    finishRepack: db.prepare<[number, number, string], RepackRow>(
      `UPDATE repacks SET state = 'done', finished_at = ?, updated_at = ?, paused_reason = NULL WHERE id = ? RETURNING ${R}`,
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

    insertClient: db.prepare<Params<ClientRow>>(insert('clients')),
    getClient: db.prepare<[string, string], ClientUsageRow>(`SELECT ${CU} FROM clients WHERE workspace_id = ? AND id = ?`),
    listClients: db.prepare<[string, number], ClientUsageRow>(`SELECT ${CU} FROM clients WHERE workspace_id = ? ORDER BY name LIMIT ?`),
    listClientsAfter: db.prepare<[string, string, number], ClientUsageRow>(
      `SELECT ${CU} FROM clients WHERE workspace_id = ? AND name > ? ORDER BY name LIMIT ?`,
    ),
    updateClient: db.prepare<PatchParams, ClientRow>(
      `UPDATE clients SET ${['name', 'role', 'environments', 'allowed_cidrs', 'token_ttl_seconds', 'rate_limit_per_second', 'disabled'].map(patched).join(', ')},
       updated_at = @updated_at WHERE workspace_id = @workspace_id AND id = @id RETURNING ${C}`,
    ),
    // The tokens go with it (ON DELETE CASCADE).
    deleteClient: db.prepare<[string, string]>('DELETE FROM clients WHERE workspace_id = ? AND id = ?'),
    // Every SET expression reads the row as it was, so both CASEs compare against the old last_used_at.
    recordUsage: db.prepare<UsageParams>(
      `UPDATE clients SET requests = requests + @requests, failures = failures + @failures,
       last_used_ip = CASE WHEN last_used_at IS NULL OR @at > last_used_at THEN @ip ELSE last_used_ip END,
       last_used_at = CASE WHEN last_used_at IS NULL OR @at > last_used_at THEN @at ELSE last_used_at END
       WHERE id = @id`,
    ),

    insertToken: db.prepare<Params<ClientTokenRow>>(insert('client_tokens')),
    pruneTokens: db.prepare<[string, number]>('DELETE FROM client_tokens WHERE client_id = ? AND expires_at <= ?'),
    // SQLite's two-argument min() is the scalar one.
    capTokens: db.prepare<[number, string]>('UPDATE client_tokens SET expires_at = min(expires_at, ?) WHERE client_id = ?'),
    listTokens: db.prepare<[string], ClientTokenRow>(`SELECT ${T} FROM client_tokens WHERE client_id = ? ORDER BY created_at, id`),
    findToken: db.prepare<[string], ClientTokenJoinRow>(
      `SELECT t.id AS token_id, t.token_hash, t.created_at AS token_created_at, t.expires_at AS token_expires_at, ${cols('clients', 'c')}
       FROM client_tokens t JOIN clients c ON c.id = t.client_id WHERE t.token_hash = ?`,
    ),

    insertAudit: db.prepare<Params<AuditEntryRow>>(insert('audit_entries')),
    getAuditHead: db.prepare<[string], AuditHeadRow>(`SELECT ${cols('audit_heads')} FROM audit_heads WHERE workspace_id = ? AND seq > 0`),
    putAuditHead: db.prepare<Params<AuditHeadRow>>(
      `${insert('audit_heads')} ON CONFLICT (workspace_id) DO UPDATE SET seq = excluded.seq, link = excluded.link`,
    ),
    listAudit: db.prepare<[string, number, number], AuditEntryRow>(
      `SELECT ${A} FROM audit_entries WHERE workspace_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
    ),
  };
}

