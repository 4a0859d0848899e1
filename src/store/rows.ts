/**
 * Row shapes shared by the SQLite and PostgreSQL stores, and their mapping to records.
 *
 * Both schemas use the same snake_case column names so one set of mappers serves both; the only
 * driver differences are how a timestamp (integer ms in SQLite, timestamptz → Date in pg) and a
 * JSON column (text in SQLite, jsonb → parsed value in pg) come back.
 */
import type {
  AuditEntryRecord,
  AuditHead,
  AuditSealing,
  ClientRecord,
  ClientRole,
  ClientTokenRecord,
  ClientWithUsage,
  CmkHealthRecord,
  CmkRecord,
  EnvironmentRecord,
  KeyKind,
  KeyRecord,
  KeyState,
  ObjectRecord,
  ObjectVersionRecord,
  RepackRecord,
  RepackState,
  WorkspaceRecord,
} from './store.js';

/** A timestamp as a driver returns it. */
export type DbTime = number | Date;
/** A JSON object column as a driver returns it. */
export type DbJson = string | object;

export interface SettingRow {
  readonly value: string;
}

export interface WorkspaceRow {
  readonly id: string;
  readonly name: string;
  readonly created_at: DbTime;
}

export interface EnvironmentRow {
  readonly id: string;
  readonly workspace_id: string;
  readonly name: string;
  readonly created_at: DbTime;
}

export interface CmkRow {
  readonly id: string;
  readonly environment_id: string;
  readonly provider: string;
  readonly config: DbJson;
  readonly state: string;
  readonly created_at: DbTime;
}

export interface CmkHealthRow {
  readonly cmk_id: string;
  readonly state: string;
  readonly since: DbTime;
  readonly checked_at: DbTime;
  readonly current_version: string | null;
  readonly expires_at: DbTime | null;
  readonly deletion_at: DbTime | null;
  readonly detail: string | null;
}

export interface KeyRow {
  readonly id: string;
  readonly environment_id: string;
  readonly kind: string;
  readonly scope_id: string | null;
  readonly hour_start: number | null;
  readonly parent_id: string;
  readonly wrapped: Buffer;
  readonly wrapping_key_version: string | null;
  readonly state: string;
  readonly created_at: DbTime;
  /** Set only while the key is in 'scheduled-destruction' (migration 4). */
  readonly destroy_at: DbTime | null;
}

export interface ObjectRow {
  readonly id: string;
  readonly environment_id: string;
  readonly name: string;
  readonly context: string;
  readonly context_key_id: string;
  readonly metadata: DbJson;
  readonly version: number;
  readonly created_at: DbTime;
  readonly updated_at: DbTime;
}

export interface ObjectVersionRow {
  readonly object_id: string;
  readonly version: number;
  readonly data_key_id: string;
  readonly wrapped_data_key: Buffer;
  readonly ciphertext: Buffer;
  readonly created_at: DbTime;
}

export interface ClientRow {
  readonly id: string;
  readonly workspace_id: string;
  readonly name: string;
  readonly role: string;
  readonly environments: DbJson;
  readonly allowed_cidrs: DbJson;
  readonly token_ttl_seconds: number;
  readonly rate_limit_per_second: number | null;
  /** INTEGER 0/1 in SQLite (it has no boolean type), boolean in pg. */
  readonly disabled: number | boolean;
  readonly created_at: DbTime;
  readonly updated_at: DbTime;
}

export interface ClientUsageRow extends ClientRow {
  readonly requests: number;
  readonly failures: number;
  readonly last_used_at: DbTime | null;
  readonly last_used_ip: string | null;
}

export interface ClientTokenRow {
  readonly id: string;
  readonly client_id: string;
  readonly token_hash: string;
  readonly created_at: DbTime;
  readonly expires_at: DbTime;
}

/** A token and its client from one join: the token's columns are renamed where they would clash. */
export interface ClientTokenJoinRow extends ClientRow {
  readonly token_id: string;
  readonly token_hash: string;
  readonly token_created_at: DbTime;
  readonly token_expires_at: DbTime;
}

export interface AuditEntryRow {
  readonly workspace_id: string;
  readonly seq: number;
  readonly id: string;
  readonly environment_id: string | null;
  readonly at: DbTime;
  readonly sealing: string;
  readonly body: Buffer;
  readonly link: Buffer;
}

export interface AuditHeadRow {
  readonly workspace_id: string;
  readonly seq: number;
  readonly link: Buffer;
}

export interface RepackRow {
  readonly id: string;
  readonly environment_id: string;
  readonly from_ek_id: string;
  readonly to_ek_id: string;
  readonly from_cmk_id: string;
  readonly to_cmk_id: string;
  readonly state: string;
  readonly total: number;
  readonly done: number;
  readonly started_at: DbTime;
  readonly updated_at: DbTime;
  readonly finished_at: DbTime | null;
  readonly paused_reason: string | null;
  readonly runner: string | null;
}

export interface KindCountRow {
  readonly kind: string;
  readonly n: number;
}

/**
 * Column lists, in the order the insert statements bind them. Queries name their columns instead
 * of SELECT *: a prepared statement must not change shape when a later migration adds a column
 * (PostgreSQL fails such a statement with "cached plan must not change result type").
 */
export const COLUMNS = {
  workspaces: ['id', 'name', 'created_at'],
  environments: ['id', 'workspace_id', 'name', 'created_at'],
  cmks: ['id', 'environment_id', 'provider', 'config', 'state', 'created_at'],
  cmk_health: ['cmk_id', 'state', 'since', 'checked_at', 'current_version', 'expires_at', 'deletion_at', 'detail'],
  keys: ['id', 'environment_id', 'kind', 'scope_id', 'hour_start', 'parent_id', 'wrapped', 'wrapping_key_version', 'state', 'created_at', 'destroy_at'],
  objects: ['id', 'environment_id', 'name', 'context', 'context_key_id', 'metadata', 'version', 'created_at', 'updated_at'],
  object_versions: ['object_id', 'version', 'data_key_id', 'wrapped_data_key', 'ciphertext', 'created_at'],
  // The usage counters are not listed: a new client starts from the schema defaults (see CLIENT_USAGE_COLUMNS).
  clients: [
    'id', 'workspace_id', 'name', 'role', 'environments', 'allowed_cidrs', 'token_ttl_seconds', 'rate_limit_per_second', 'disabled',
    'created_at', 'updated_at',
  ],
  client_tokens: ['id', 'client_id', 'token_hash', 'created_at', 'expires_at'],
  audit_entries: ['workspace_id', 'seq', 'id', 'environment_id', 'at', 'sealing', 'body', 'link'],
  audit_heads: ['workspace_id', 'seq', 'link'],
  repacks: [
    'id', 'environment_id', 'from_ek_id', 'to_ek_id', 'from_cmk_id', 'to_cmk_id', 'state', 'total', 'done', 'started_at', 'updated_at',
    'finished_at', 'paused_reason', 'runner',
  ],
} as const;

/** The clients columns written by recordClientUsage only, selected after cols('clients') for a ClientWithUsage. */
export const CLIENT_USAGE_COLUMNS = ['requests', 'failures', 'last_used_at', 'last_used_ip'] as const;

export type Table = keyof typeof COLUMNS;

/** "a.id, a.name, …" for a SELECT list. */
export function cols(table: Table, alias?: string): string {
  return COLUMNS[table].map((c) => (alias ? `${alias}.${c}` : c)).join(', ');
}

/** The columns of a ClientWithUsage: the record's, then the usage counters. */
export function clientUsageCols(alias?: string): string {
  return [cols('clients', alias), ...CLIENT_USAGE_COLUMNS.map((c) => (alias ? `${alias}.${c}` : c))].join(', ');
}

export const KEY_KINDS: readonly KeyKind[] = ['ek', 'hourly', 'job', 'connection', 'log', 'context'];
export const KEY_STATES: readonly KeyState[] = ['active', 'decrypt-only', 'disabled', 'scheduled-destruction', 'destroyed'];
/** Kinds whose identity is (environment, kind, scope id). */
export const SCOPED_KINDS: readonly KeyKind[] = ['job', 'connection', 'context'];
export const CLIENT_ROLES: readonly ClientRole[] = ['admin', 'operator', 'app', 'auditor'];
export const AUDIT_SEALINGS: readonly AuditSealing[] = ['log-key', 'workspace-key'];
export const REPACK_STATES: readonly RepackState[] = ['running', 'paused', 'done'];

/** SQL list literal of the allowed values, for CHECK constraints in both schemas. */
export function sqlList(values: readonly string[]): string {
  return values.map((v) => `'${v}'`).join(', ');
}

export function isKeyKind(value: string): value is KeyKind {
  return (KEY_KINDS as readonly string[]).includes(value);
}

// The schema has CHECK constraints on kind and state; these guards still refuse a hand-edited row
// rather than let an unknown state reach the code that decides whether a key may be used.
function keyKind(value: string): KeyKind {
  if (!isKeyKind(value)) throw new Error(`store: unknown key kind "${value}"`);
  return value;
}

export function isKeyState(value: unknown): value is KeyState {
  return typeof value === 'string' && (KEY_STATES as readonly string[]).includes(value);
}

function keyState(value: string): KeyState {
  if (!isKeyState(value)) throw new Error(`store: unknown key state "${value}"`);
  return value;
}

// Likewise for a client's role: an unknown role must not reach the authorisation code.
function clientRole(value: string): ClientRole {
  if (!(CLIENT_ROLES as readonly string[]).includes(value)) throw new Error(`store: unknown client role "${value}"`);
  return value as ClientRole;
}

function auditSealing(value: string): AuditSealing {
  if (!(AUDIT_SEALINGS as readonly string[]).includes(value)) throw new Error(`store: unknown audit sealing "${value}"`);
  return value as AuditSealing;
}

// Likewise for a repack's state: an unknown one must not be taken for "unfinished" or "done".
function repackState(value: string): RepackState {
  if (!(REPACK_STATES as readonly string[]).includes(value)) throw new Error(`store: unknown repack state "${value}"`);
  return value as RepackState;
}

function toDate(value: DbTime): Date {
  return value instanceof Date ? value : new Date(value);
}

function jsonObject(value: DbJson, column: string): Readonly<Record<string, unknown>> {
  const parsed: unknown = typeof value === 'string' ? JSON.parse(value) : value;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`store: column ${column} does not hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

function jsonStrings(value: DbJson, column: string): readonly string[] {
  const parsed: unknown = typeof value === 'string' ? JSON.parse(value) : value;
  if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === 'string')) {
    throw new Error(`store: column ${column} does not hold a JSON array of strings`);
  }
  return parsed as string[];
}

export function toWorkspace(row: WorkspaceRow): WorkspaceRecord {
  return { id: row.id, name: row.name, createdAt: toDate(row.created_at) };
}

export function toEnvironment(row: EnvironmentRow): EnvironmentRecord {
  return { id: row.id, workspaceId: row.workspace_id, name: row.name, createdAt: toDate(row.created_at) };
}

export function toCmk(row: CmkRow): CmkRecord {
  return {
    id: row.id,
    environmentId: row.environment_id,
    provider: row.provider,
    config: jsonObject(row.config, 'cmks.config'),
    state: keyState(row.state),
    createdAt: toDate(row.created_at),
  };
}

export function toCmkHealth(row: CmkHealthRow): CmkHealthRecord {
  return {
    cmkId: row.cmk_id,
    state: row.state,
    since: toDate(row.since),
    checkedAt: toDate(row.checked_at),
    currentVersion: row.current_version,
    expiresAt: row.expires_at === null ? null : toDate(row.expires_at),
    deletionAt: row.deletion_at === null ? null : toDate(row.deletion_at),
    detail: row.detail,
  };
}

export function toKey(row: KeyRow): KeyRecord {
  return {
    id: row.id,
    environmentId: row.environment_id,
    kind: keyKind(row.kind),
    scopeId: row.scope_id,
    hourStart: row.hour_start,
    parentId: row.parent_id,
    wrapped: row.wrapped,
    wrappingKeyVersion: row.wrapping_key_version,
    state: keyState(row.state),
    createdAt: toDate(row.created_at),
    destroyAt: row.destroy_at === null ? null : toDate(row.destroy_at),
  };
}

export function toObject(row: ObjectRow): ObjectRecord {
  return {
    id: row.id,
    environmentId: row.environment_id,
    name: row.name,
    context: row.context,
    contextKeyId: row.context_key_id,
    metadata: jsonObject(row.metadata, 'objects.metadata'),
    version: row.version,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}

export function toObjectVersion(row: ObjectVersionRow): ObjectVersionRecord {
  return {
    objectId: row.object_id,
    version: row.version,
    dataKeyId: row.data_key_id,
    wrappedDataKey: row.wrapped_data_key,
    ciphertext: row.ciphertext,
    createdAt: toDate(row.created_at),
  };
}

export function toClient(row: ClientRow): ClientRecord {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    name: row.name,
    role: clientRole(row.role),
    environments: jsonStrings(row.environments, 'clients.environments'),
    allowedCidrs: jsonStrings(row.allowed_cidrs, 'clients.allowed_cidrs'),
    tokenTtlSeconds: row.token_ttl_seconds,
    rateLimitPerSecond: row.rate_limit_per_second,
    disabled: row.disabled === true || row.disabled === 1,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}

export function toClientWithUsage(row: ClientUsageRow): ClientWithUsage {
  return {
    ...toClient(row),
    usage: {
      requests: row.requests,
      failures: row.failures,
      lastUsedAt: row.last_used_at === null ? null : toDate(row.last_used_at),
      lastUsedIp: row.last_used_ip,
    },
  };
}

export function toClientToken(row: ClientTokenRow): ClientTokenRecord {
  return { id: row.id, clientId: row.client_id, tokenHash: row.token_hash, createdAt: toDate(row.created_at), expiresAt: toDate(row.expires_at) };
}

export function toClientTokenJoin(row: ClientTokenJoinRow): { readonly token: ClientTokenRecord; readonly client: ClientRecord } {
  return {
    token: { id: row.token_id, clientId: row.id, tokenHash: row.token_hash, createdAt: toDate(row.token_created_at), expiresAt: toDate(row.token_expires_at) },
    client: toClient(row),
  };
}

export function toAuditEntry(row: AuditEntryRow): AuditEntryRecord {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    environmentId: row.environment_id,
    at: toDate(row.at),
    sealing: auditSealing(row.sealing),
    body: row.body,
    seq: row.seq,
    link: row.link,
  };
}

export function toAuditHead(row: AuditHeadRow): AuditHead {
  return { seq: row.seq, link: row.link };
}

export function toRepack(row: RepackRow): RepackRecord {
  return {
    id: row.id,
    environmentId: row.environment_id,
    fromEkId: row.from_ek_id,
    toEkId: row.to_ek_id,
    fromCmkId: row.from_cmk_id,
    toCmkId: row.to_cmk_id,
    state: repackState(row.state),
    total: Number(row.total),
    done: Number(row.done),
    startedAt: toDate(row.started_at),
    updatedAt: toDate(row.updated_at),
    finishedAt: row.finished_at === null ? null : toDate(row.finished_at),
    pausedReason: row.paused_reason,
    runner: row.runner,
  };
}

export function emptyKindCounts(): Record<KeyKind, number> {
  return { ek: 0, hourly: 0, job: 0, connection: 0, log: 0, context: 0 };
}

export function kindCounts(rows: readonly KindCountRow[]): Record<KeyKind, number> {
  const counts = emptyKindCounts();
  for (const row of rows) counts[keyKind(row.kind)] = Number(row.n);
  return counts;
}
