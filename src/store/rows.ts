/**
 * Row shapes shared by the SQLite and PostgreSQL stores, and their mapping to records.
 *
 * Both schemas use the same snake_case column names so one set of mappers serves both; the only
 * driver differences are how a timestamp (integer ms in SQLite, timestamptz → Date in pg) and a
 * JSON column (text in SQLite, jsonb → parsed value in pg) come back.
 */
import type {
  CmkRecord,
  EnvironmentRecord,
  KeyKind,
  KeyRecord,
  KeyState,
  ObjectRecord,
  ObjectVersionRecord,
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
  keys: ['id', 'environment_id', 'kind', 'scope_id', 'hour_start', 'parent_id', 'wrapped', 'wrapping_key_version', 'state', 'created_at'],
  objects: ['id', 'environment_id', 'name', 'context', 'context_key_id', 'metadata', 'version', 'created_at', 'updated_at'],
  object_versions: ['object_id', 'version', 'data_key_id', 'wrapped_data_key', 'ciphertext', 'created_at'],
} as const;

export type Table = keyof typeof COLUMNS;

/** "a.id, a.name, …" for a SELECT list. */
export function cols(table: Table, alias?: string): string {
  return COLUMNS[table].map((c) => (alias ? `${alias}.${c}` : c)).join(', ');
}

export const KEY_KINDS: readonly KeyKind[] = ['ek', 'hourly', 'job', 'connection', 'log', 'context'];
export const KEY_STATES: readonly KeyState[] = ['active', 'decrypt-only', 'disabled', 'scheduled-destruction', 'destroyed'];
/** Kinds whose identity is (environment, kind, scope id). */
export const SCOPED_KINDS: readonly KeyKind[] = ['job', 'connection', 'context'];

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

function keyState(value: string): KeyState {
  if (!(KEY_STATES as readonly string[]).includes(value)) throw new Error(`store: unknown key state "${value}"`);
  return value as KeyState;
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

export function emptyKindCounts(): Record<KeyKind, number> {
  return { ek: 0, hourly: 0, job: 0, connection: 0, log: 0, context: 0 };
}

export function kindCounts(rows: readonly KindCountRow[]): Record<KeyKind, number> {
  const counts = emptyKindCounts();
  for (const row of rows) counts[keyKind(row.kind)] = Number(row.n);
  return counts;
}
