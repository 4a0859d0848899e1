/**
 * The PostgreSQL store's SQL, one named statement each: pg prepares a named statement once per
 * pooled connection and reuses the plan afterwards.
 */
import { COLUMNS, clientUsageCols, cols, type Table } from '../rows.js';
import type {
  AuditEntryRecord, AuditHead, ClientPatch, ClientRecord, ClientTokenRecord, ClientUsageDelta, CmkHealthRecord, CmkRecord, EkRotation, KeyRecord,
  KeyStateChange, NewEnvironment, ObjectRecord, ObjectVersionRecord, RepackBatch, WorkspaceRecord,
} from '../store.js';

function insert(table: Table, suffix = ''): string {
  const names = COLUMNS[table];
  return `INSERT INTO ${table} (${names.join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')})${suffix}`;
}

const W = cols('workspaces');
const E = cols('environments');
const K = cols('keys');
const CM = cols('cmks');
const H = cols('cmk_health');
const O = cols('objects');
const V = cols('object_versions');
const C = cols('clients');
const CU = clientUsageCols();
const T = cols('client_tokens');
const A = cols('audit_entries');
const R = cols('repacks');

/** `column = CASE WHEN <flag> THEN <value> ELSE column END`, the flag and value at $n and $n+1. */
function patched(column: string, n: number, type: string): string {
  return `${column} = CASE WHEN $${n}::boolean THEN $${n + 1}::${type} ELSE ${column} END`;
}

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
  getCmk: `SELECT ${CM} FROM cmks WHERE id = $1`,
  getActiveCmk: `SELECT ${cols('cmks', 'c')} FROM keys k JOIN cmks c ON c.id = k.parent_id AND c.environment_id = k.environment_id
    WHERE k.environment_id = $1 AND k.kind = 'ek' AND k.state = 'active'`,
  // A CMK replacement locks the environment's active EK first: a concurrent replacement (or re-wrap)
  // waits for it, and at READ COMMITTED then reads the EK as the winner left it, so its
  // compare-and-set on the parent fails instead of both succeeding.
  lockActiveEk: `SELECT id, parent_id FROM keys WHERE environment_id = $1 AND kind = 'ek' AND state = 'active' FOR UPDATE`,
  retireCmk: `UPDATE cmks SET state = 'decrypt-only' WHERE id = $1 AND environment_id = $2`,
  moveEk: `UPDATE keys SET parent_id = $3, wrapped = $4, wrapping_key_version = $5 WHERE environment_id = $1 AND id = $2 AND kind = 'ek'`,
  // The compare-and-set of a re-wrap in one statement: a concurrent one waits for the row lock, then
  // re-checks the bytes against the row the first left, and so matches nothing.
  casEkWrapping: `UPDATE keys SET wrapped = $1, wrapping_key_version = $2
    WHERE environment_id = $3 AND id = $4 AND kind = 'ek' AND parent_id = $5 AND wrapped = $6`,
  // <> ALL of an empty array is true: nothing excluded.
  listActiveCmks: `SELECT ${CM} FROM cmks WHERE state = 'active' AND provider <> ALL ($1::text[]) ORDER BY id COLLATE "C" LIMIT $2`,
  listActiveCmksAfter: `SELECT ${CM} FROM cmks WHERE state = 'active' AND provider <> ALL ($1::text[]) AND id COLLATE "C" > $2
    ORDER BY id COLLATE "C" LIMIT $3`,

  getCmkHealth: `SELECT ${H} FROM cmk_health WHERE cmk_id = $1`,
  lockCmkHealth: 'SELECT state FROM cmk_health WHERE cmk_id = $1 FOR UPDATE',
  insertCmkHealth: insert('cmk_health', ` ON CONFLICT (cmk_id) DO NOTHING RETURNING ${H}`),
  // An unchanged state keeps the stored since. ON CONFLICT DO UPDATE locks the row and evaluates
  // the CASE against its newest version, so this holds across nodes without a transaction.
  putCmkHealth: `${insert('cmk_health')} ON CONFLICT (cmk_id) DO UPDATE SET state = excluded.state,
    since = CASE WHEN cmk_health.state = excluded.state THEN cmk_health.since ELSE excluded.since END,
    checked_at = excluded.checked_at, current_version = excluded.current_version, expires_at = excluded.expires_at,
    deletion_at = excluded.deletion_at, detail = excluded.detail
    RETURNING ${H}`,

  // No conflict target: DO NOTHING then covers every unique index, the partial ones included.
  // The parent, if it is an EK, is share-locked in the same statement and the insert skipped when it
  // is not active: a rotation (or a repack's finish) locks that EK FOR UPDATE before retiring it, so
  // either this insert commits first and the rotation's later count sees the key, or it waits and
  // the lock returns the EK as the rotation left it. One round trip, like a plain insert.
  insertKey: `WITH p AS MATERIALIZED (SELECT state FROM keys WHERE id = $6 AND kind = 'ek' FOR SHARE),
    i AS (INSERT INTO keys (${K}) SELECT ${COLUMNS.keys.map((_, n) => `$${n + 1}`).join(', ')}
      WHERE NOT EXISTS (SELECT 1 FROM p WHERE state <> 'active') ON CONFLICT DO NOTHING RETURNING id)
    SELECT (SELECT count(*) FROM i) AS inserted, (SELECT state FROM p) AS parent_state`,
  insertEk: insert('keys'),
  getKey: `SELECT ${K} FROM keys WHERE environment_id = $1 AND id = $2`,
  getKeyById: `SELECT ${K} FROM keys WHERE id = $1`,
  getActiveEk: `SELECT ${K} FROM keys WHERE environment_id = $1 AND kind = 'ek' AND state = 'active'`,
  // The compare-and-set of a lifecycle change in one statement: a concurrent change of the same key
  // waits for the row lock, then re-checks the state against the row the first left. Destroying
  // erases the wrapped key (zero bytes) in the same write.
  setKeyState: `UPDATE keys SET state = $4::text, destroy_at = $5,
    wrapped = CASE WHEN $4::text = 'destroyed' THEN ''::bytea ELSE wrapped END
    WHERE environment_id = $1 AND id = $2 AND state = ANY ($3::text[]) RETURNING ${K}`,
  // Delivered to every LISTENing session when the transaction commits; nothing if it rolls back.
  notifyKeyState: 'SELECT pg_notify($1, $2)',
  listDueDestructions: `SELECT ${K} FROM keys WHERE state = 'scheduled-destruction' AND destroy_at <= $1
    ORDER BY destroy_at, id COLLATE "C" LIMIT $2`,
  getActiveLog: `SELECT ${K} FROM keys WHERE environment_id = $1 AND kind = 'log' AND state = 'active'`,
  getHourly: `SELECT ${K} FROM keys WHERE environment_id = $1 AND kind = 'hourly' AND hour_start = $2`,
  getScoped: `SELECT ${K} FROM keys WHERE environment_id = $1 AND kind = $2 AND scope_id = $3`,
  countKinds: 'SELECT kind, count(*) AS n FROM keys WHERE environment_id = $1 GROUP BY kind',
  latestHourly: `SELECT ${K} FROM keys WHERE environment_id = $1 AND kind = 'hourly' ORDER BY hour_start DESC LIMIT 1`,
  // Index keys_parent; code point order, as SQLite sorts.
  listKeysUnder: `SELECT ${K} FROM keys WHERE environment_id = $1 AND parent_id = $2 AND kind <> 'ek' ORDER BY id COLLATE "C" LIMIT $3`,
  // No kind filter: an EK's parent is a CMK, never an EK, and without it the keys_parent index alone answers.
  countKeysUnder: `SELECT count(*) AS n FROM keys WHERE environment_id = $1 AND parent_id = $2`,
  anyKeyUnder: `SELECT id FROM keys WHERE environment_id = $1 AND parent_id = $2 LIMIT 1`,
  // finishRepack locks the old EK before it looks for keys under it, so an insert that share-locked
  // it (insertKey) has committed, and is counted, by then.
  lockKey: 'SELECT id FROM keys WHERE environment_id = $1 AND id = $2 FOR UPDATE',

  insertRepack: insert('repacks', ` RETURNING ${R}`),
  // Taken first by every change of a repack, so batches from several nodes queue on it.
  lockRepack: `SELECT ${R} FROM repacks WHERE id = $1 FOR UPDATE`,
  unfinishedRepack: `SELECT id FROM repacks WHERE environment_id = $1 AND state <> 'done'`,
  // The unfinished one (at most one) first, then the finished ones newest first.
  getRepack: `SELECT ${R} FROM repacks WHERE environment_id = $1
    ORDER BY state = 'done', finished_at DESC, started_at DESC, id COLLATE "C" DESC LIMIT 1`,
  listUnfinishedRepacks: `SELECT ${R} FROM repacks WHERE state <> 'done' ORDER BY state = 'paused', started_at, id COLLATE "C" LIMIT $1`,
  // One statement per batch (values.repackBatch: one array element per key): each key moves only if
  // it is still under the old EK with the bytes the caller re-wrapped; done grows by those moved.
  // The compare-and-set is wrapped in "IS TRUE" so that only k.id = u.id can drive an index: without
  // statistics (or with correlated environment/parent estimates) the planner otherwise hash-joins a
  // scan of every key still under the old EK, once per batch (bench/README.md, "Repack at scale").
  applyRepackBatch: `WITH moved AS (UPDATE keys k SET parent_id = $4, wrapped = u.wrapped
      FROM unnest($5::text[], $6::bytea[], $7::bytea[]) AS u (id, expected, wrapped)
      WHERE k.id = u.id AND (k.environment_id = $2 AND k.parent_id = $3 AND k.kind <> 'ek' AND k.wrapped = u.expected) IS TRUE
      RETURNING k.id)
    UPDATE repacks SET done = done + (SELECT count(*) FROM moved), state = 'running', paused_reason = NULL, runner = $8, updated_at = $9
    WHERE id = $1 AND state <> 'done' RETURNING ${R}`,
  setRepackPaused: `UPDATE repacks SET state = CASE WHEN $2::text IS NULL THEN 'running' ELSE 'paused' END, paused_reason = $2::text,
    runner = $3, updated_at = $4 WHERE id = $1 AND state <> 'done' RETURNING ${R}`,
  finishRepack: `UPDATE repacks SET state = 'done', finished_at = $2, updated_at = $2, paused_reason = NULL WHERE id = $1 RETURNING ${R}`,

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

  insertClient: insert('clients'),
  insertToken: insert('client_tokens'),
  getClient: `SELECT ${CU} FROM clients WHERE workspace_id = $1 AND id = $2`,
  listClients: `SELECT ${CU} FROM clients WHERE workspace_id = $1 ORDER BY name LIMIT $2`,
  listClientsAfter: `SELECT ${CU} FROM clients WHERE workspace_id = $1 AND name > $2 ORDER BY name LIMIT $3`,
  // One statement for every patch: each field has a flag ("set it") and a value (see values.patch).
  updateClient: `UPDATE clients SET ${patched('name', 3, 'text')}, ${patched('role', 5, 'text')}, ${patched('environments', 7, 'jsonb')},
    ${patched('allowed_cidrs', 9, 'jsonb')}, ${patched('token_ttl_seconds', 11, 'integer')}, ${patched('rate_limit_per_second', 13, 'integer')},
    ${patched('disabled', 15, 'boolean')}, updated_at = $17
    WHERE workspace_id = $1 AND id = $2 RETURNING ${C}`,
  // The tokens go with it (ON DELETE CASCADE).
  deleteClient: 'DELETE FROM clients WHERE workspace_id = $1 AND id = $2',
  // Rotation in one statement: the client row is locked (so a concurrent delete or rotation waits),
  // expired tokens are deleted, the others capped at the overlap, the new one inserted; nothing
  // happens without the client. The DELETE and UPDATE touch disjoint rows, as they must in one
  // statement, and neither sees the row the INSERT adds.
  rotateToken: `WITH c AS (SELECT id FROM clients WHERE workspace_id = $1 AND id = $2 FOR NO KEY UPDATE),
    d AS (DELETE FROM client_tokens t USING c WHERE t.client_id = c.id AND t.expires_at <= $3),
    u AS (UPDATE client_tokens t SET expires_at = LEAST(t.expires_at, $4) FROM c WHERE t.client_id = c.id AND t.expires_at > $3),
    i AS (INSERT INTO client_tokens (${T}) SELECT $5, c.id, $6, $7, $8 FROM c RETURNING id)
    SELECT id FROM i`,
  listTokens: `SELECT ${T} FROM client_tokens WHERE client_id = $1 ORDER BY created_at, id COLLATE "C"`,
  findToken: `SELECT t.id AS token_id, t.token_hash, t.created_at AS token_created_at, t.expires_at AS token_expires_at, ${cols('clients', 'c')}
    FROM client_tokens t JOIN clients c ON c.id = t.client_id WHERE t.token_hash = $1`,
  // Taken before recordUsage, in one order on every node, so two flushes over the same clients
  // queue instead of deadlocking (UPDATE … FROM would lock in whatever order its join produces).
  lockClients: 'SELECT id FROM clients WHERE id = ANY($1::text[]) ORDER BY id COLLATE "C" FOR NO KEY UPDATE',
  // One statement per batch (values.usage: one row per client). Every SET expression reads the
  // row as it was, so both CASEs compare against the old last_used_at.
  recordUsage: `UPDATE clients c SET requests = c.requests + d.requests, failures = c.failures + d.failures,
    last_used_ip = CASE WHEN c.last_used_at IS NULL OR d.at > c.last_used_at THEN d.ip ELSE c.last_used_ip END,
    last_used_at = CASE WHEN c.last_used_at IS NULL OR d.at > c.last_used_at THEN d.at ELSE c.last_used_at END
    FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::text[]) AS d (id, requests, failures, at, ip)
    WHERE c.id = d.id`,

  // A chain's head row is created empty (seq 0, the genesis link) if missing, then locked: two
  // statements, because a SELECT in the INSERT's own statement would not see a row that a
  // concurrent append committed while the INSERT waited for it.
  ensureAuditHead: `INSERT INTO audit_heads (${cols('audit_heads')}) VALUES ($1, 0, $2) ON CONFLICT (workspace_id) DO NOTHING`,
  lockAuditHead: `SELECT ${cols('audit_heads')} FROM audit_heads WHERE workspace_id = $1 FOR UPDATE`,
  // Every entry of an append and every head it moves, in one statement.
  writeAudit: `WITH e AS (INSERT INTO audit_entries (${A})
      SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::bytea[], $8::bytea[]))
    UPDATE audit_heads h SET seq = n.seq, link = n.link
    FROM unnest($9::text[], $10::bigint[], $11::bytea[]) AS n (workspace_id, seq, link) WHERE h.workspace_id = n.workspace_id`,
  getAuditHead: `SELECT ${cols('audit_heads')} FROM audit_heads WHERE workspace_id = $1 AND seq > 0`,
  listAudit: `SELECT ${A} FROM audit_entries WHERE workspace_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
} as const;

export type StatementName = keyof typeof SQL;

// Values in COLUMNS order. JSON is sent as text: pg would turn a JS array into a PostgreSQL array.
export const values = {
  workspace: (w: WorkspaceRecord): unknown[] => [w.id, w.name, w.createdAt],
  environment: ({ environment: e }: NewEnvironment): unknown[] => [e.id, e.workspaceId, e.name, e.createdAt],
  cmk: (c: CmkRecord): unknown[] => [c.id, c.environmentId, c.provider, JSON.stringify(c.config), c.state, c.createdAt],
  cmkHealth: (h: CmkHealthRecord): unknown[] => [h.cmkId, h.state, h.since, h.checkedAt, h.currentVersion, h.expiresAt, h.deletionAt, h.detail],
  key: (k: KeyRecord): unknown[] => [
    k.id, k.environmentId, k.kind, k.scopeId, k.hourStart, k.parentId, k.wrapped, k.wrappingKeyVersion, k.state, k.createdAt, k.destroyAt ?? null,
  ],
  /** A rotation's repack row: running, nothing done yet, `total` keys to move. */
  repack: (c: EkRotation, total: number): unknown[] => [
    c.repackId, c.environmentId, c.fromEkId, c.ek.id, c.fromCmkId, c.cmk.id, 'running', total, 0, c.startedAt, c.startedAt, null, null, null,
  ],
  /** applyRepackBatch's parameters: the repack and its EKs, the keys column by column, then runner and time. */
  repackBatch: (b: RepackBatch): unknown[] => [
    b.repackId, b.environmentId, b.fromEkId, b.toEkId,
    b.keys.map((k) => k.id), b.keys.map((k) => k.expectedWrapped), b.keys.map((k) => k.wrapped),
    b.runner, b.at,
  ],
  /** setKeyState's parameters; destroy_at only for a scheduled destruction. */
  keyState: (c: KeyStateChange): unknown[] => [
    c.environmentId, c.keyId, [...c.from], c.to, c.to === 'scheduled-destruction' ? c.destroyAt ?? null : null,
  ],
  object: (o: ObjectRecord): unknown[] => [
    o.id, o.environmentId, o.name, o.context, o.contextKeyId, JSON.stringify(o.metadata), o.version, o.createdAt, o.updatedAt,
  ],
  version: (v: ObjectVersionRecord): unknown[] => [v.objectId, v.version, v.dataKeyId, v.wrappedDataKey, v.ciphertext, v.createdAt],
  client: (c: ClientRecord): unknown[] => [
    c.id, c.workspaceId, c.name, c.role, JSON.stringify(c.environments), JSON.stringify(c.allowedCidrs), c.tokenTtlSeconds, c.rateLimitPerSecond,
    c.disabled, c.createdAt, c.updatedAt,
  ],
  token: (t: ClientTokenRecord): unknown[] => [t.id, t.clientId, t.tokenHash, t.createdAt, t.expiresAt],
  /** updateClient's parameters: $1 workspace, $2 id, then a (flag, value) pair per field, then updated_at. */
  patch: (workspaceId: string, id: string, p: ClientPatch, updatedAt: Date): unknown[] => {
    const set = (v: unknown): unknown[] => (v === undefined ? [false, null] : [true, v]);
    const setJson = (v: readonly string[] | undefined): unknown[] => (v === undefined ? [false, null] : [true, JSON.stringify(v)]);
    return [
      workspaceId, id,
      ...set(p.name), ...set(p.role), ...setJson(p.environments), ...setJson(p.allowedCidrs),
      ...set(p.tokenTtlSeconds), ...set(p.rateLimitPerSecond), ...set(p.disabled),
      updatedAt,
    ];
  },
  /** recordUsage's parameters: one array per column, one element per client. */
  usage: (deltas: readonly ClientUsageDelta[]): unknown[] => [
    deltas.map((d) => d.clientId), deltas.map((d) => d.requests), deltas.map((d) => d.failures),
    deltas.map((d) => d.lastUsedAt), deltas.map((d) => d.lastUsedIp),
  ],
  /** writeAudit's parameters: the entries column by column, then the new heads likewise. */
  audit: (records: readonly AuditEntryRecord[], heads: readonly (AuditHead & { workspaceId: string })[]): unknown[] => [
    records.map((r) => r.workspaceId), records.map((r) => r.seq), records.map((r) => r.id), records.map((r) => r.environmentId),
    records.map((r) => r.at), records.map((r) => r.sealing), records.map((r) => r.body), records.map((r) => r.link),
    heads.map((h) => h.workspaceId), heads.map((h) => h.seq), heads.map((h) => h.link),
  ],
};
