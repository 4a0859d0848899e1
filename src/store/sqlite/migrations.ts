/**
 * SQLite schema. Tables are STRICT so a Buffer can never be silently stored as text (or a
 * timestamp as a string); timestamps are integer milliseconds since the epoch, which round-trip a
 * JS Date exactly.
 */
import type Database from 'better-sqlite3';
import { pendingMigrations, type Migration } from '../migration.js';
import { AUDIT_SEALINGS, CLIENT_ROLES, KEY_KINDS, KEY_STATES, REPACK_STATES, sqlList } from '../rows.js';

const KINDS = sqlList(KEY_KINDS);
const STATES = sqlList(KEY_STATES);
const ROLES = sqlList(CLIENT_ROLES);
const SEALINGS = sqlList(AUDIT_SEALINGS);
const REPACKS = sqlList(REPACK_STATES);

export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'settings, workspaces, environments, cmks, keys, objects, object_versions',
    sql: `
CREATE TABLE settings (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

CREATE TABLE workspaces (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX workspaces_created ON workspaces (created_at, id);

CREATE TABLE environments (
  id           TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  name         TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  UNIQUE (workspace_id, name)
) STRICT;

CREATE TABLE cmks (
  id             TEXT PRIMARY KEY,
  environment_id TEXT NOT NULL REFERENCES environments (id),
  provider       TEXT NOT NULL,
  config         TEXT NOT NULL,
  state          TEXT NOT NULL CHECK (state IN (${STATES})),
  created_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX cmks_environment ON cmks (environment_id);

CREATE TABLE keys (
  id                   TEXT PRIMARY KEY,
  environment_id       TEXT NOT NULL REFERENCES environments (id),
  kind                 TEXT NOT NULL CHECK (kind IN (${KINDS})),
  scope_id             TEXT,
  hour_start           INTEGER,
  parent_id            TEXT NOT NULL,
  wrapped              BLOB NOT NULL,
  wrapping_key_version TEXT,
  state                TEXT NOT NULL CHECK (state IN (${STATES})),
  created_at           INTEGER NOT NULL,
  -- A NULL would never collide in the unique indexes below, so the identity columns are required.
  CHECK (kind <> 'hourly' OR hour_start IS NOT NULL),
  CHECK (kind NOT IN ('job', 'connection', 'context') OR scope_id IS NOT NULL)
) STRICT;
CREATE INDEX keys_environment_kind ON keys (environment_id, kind);
CREATE UNIQUE INDEX keys_one_hourly ON keys (environment_id, hour_start) WHERE kind = 'hourly';
CREATE UNIQUE INDEX keys_one_scoped ON keys (environment_id, kind, scope_id) WHERE kind IN ('job', 'connection', 'context');
CREATE UNIQUE INDEX keys_one_active_log ON keys (environment_id) WHERE kind = 'log' AND state = 'active';
CREATE UNIQUE INDEX keys_one_active_ek ON keys (environment_id) WHERE kind = 'ek' AND state = 'active';

CREATE TABLE objects (
  id             TEXT PRIMARY KEY,
  environment_id TEXT NOT NULL REFERENCES environments (id),
  name           TEXT NOT NULL,
  context        TEXT NOT NULL,
  context_key_id TEXT NOT NULL,
  metadata       TEXT NOT NULL,
  version        INTEGER NOT NULL CHECK (version >= 1),
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  UNIQUE (environment_id, name)
) STRICT;

CREATE TABLE object_versions (
  object_id        TEXT NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
  version          INTEGER NOT NULL,
  data_key_id      TEXT NOT NULL,
  wrapped_data_key BLOB NOT NULL,
  ciphertext       BLOB NOT NULL,
  created_at       INTEGER NOT NULL,
  PRIMARY KEY (object_id, version)
) STRICT;
`,
  },
  {
    version: 2,
    description: 'clients, client_tokens, audit_entries, audit_heads',
    sql: `
CREATE TABLE clients (
  id                    TEXT PRIMARY KEY,
  workspace_id          TEXT NOT NULL REFERENCES workspaces (id),
  name                  TEXT NOT NULL,
  role                  TEXT NOT NULL CHECK (role IN (${ROLES})),
  environments          TEXT NOT NULL,
  allowed_cidrs         TEXT NOT NULL,
  token_ttl_seconds     INTEGER NOT NULL CHECK (token_ttl_seconds > 0),
  rate_limit_per_second INTEGER CHECK (rate_limit_per_second > 0),
  disabled              INTEGER NOT NULL CHECK (disabled IN (0, 1)),
  created_at            INTEGER NOT NULL,
  updated_at            INTEGER NOT NULL,
  requests              INTEGER NOT NULL DEFAULT 0,
  failures              INTEGER NOT NULL DEFAULT 0,
  last_used_at          INTEGER,
  last_used_ip          TEXT,
  UNIQUE (workspace_id, name)
) STRICT;

CREATE TABLE client_tokens (
  id         TEXT PRIMARY KEY,
  client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
  token_hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX client_tokens_client ON client_tokens (client_id, created_at);

-- No foreign keys: the audit log must outlive the workspaces, environments and clients it is about.
CREATE TABLE audit_entries (
  workspace_id   TEXT NOT NULL,
  seq            INTEGER NOT NULL CHECK (seq >= 1),
  id             TEXT NOT NULL UNIQUE,
  environment_id TEXT,
  at             INTEGER NOT NULL,
  sealing        TEXT NOT NULL CHECK (sealing IN (${SEALINGS})),
  body           BLOB NOT NULL,
  link           BLOB NOT NULL,
  PRIMARY KEY (workspace_id, seq)
) STRICT;

-- The newest seq and link of each workspace's chain, so that deleting its last entries shows.
CREATE TABLE audit_heads (
  workspace_id TEXT PRIMARY KEY,
  seq          INTEGER NOT NULL CHECK (seq >= 0),
  link         BLOB NOT NULL
) STRICT;
`,
  },
  {
    version: 3,
    description: 'cmk_health; index of active cmks',
    sql: `
-- The last probe result of each CMK. state is a provider health state (src/providers/provider.ts),
-- not checked here: a new state must not need a migration.
CREATE TABLE cmk_health (
  cmk_id          TEXT PRIMARY KEY REFERENCES cmks (id),
  state           TEXT NOT NULL CHECK (state <> ''),
  since           INTEGER NOT NULL,
  checked_at      INTEGER NOT NULL,
  current_version TEXT,
  expires_at      INTEGER,
  deletion_at     INTEGER,
  detail          TEXT
) STRICT;

-- The health probe pages through the active CMKs in id order.
CREATE INDEX cmks_active ON cmks (id) WHERE state = 'active';
`,
  },
  {
    version: 4,
    description: 'keys.destroy_at; index of keys due for destruction',
    sql: `
-- When a key in 'scheduled-destruction' is destroyed (integer ms, like every timestamp); NULL in any other state.
ALTER TABLE keys ADD COLUMN destroy_at INTEGER;

-- listDueDestructions: the scheduled keys, soonest first (id breaks ties).
CREATE INDEX keys_due_destruction ON keys (destroy_at, id) WHERE state = 'scheduled-destruction';
`,
  },
  {
    version: 5,
    description: 'repacks; index of keys by parent',
    sql: `
-- An environment's move from an old EK to a new one (rotateEnvironmentKey); timestamps in integer ms.
CREATE TABLE repacks (
  id             TEXT PRIMARY KEY,
  environment_id TEXT NOT NULL REFERENCES environments (id),
  from_ek_id     TEXT NOT NULL REFERENCES keys (id),
  to_ek_id       TEXT NOT NULL REFERENCES keys (id),
  from_cmk_id    TEXT NOT NULL REFERENCES cmks (id),
  to_cmk_id      TEXT NOT NULL REFERENCES cmks (id),
  state          TEXT NOT NULL CHECK (state IN (${REPACKS})),
  total          INTEGER NOT NULL CHECK (total >= 0),
  done           INTEGER NOT NULL CHECK (done >= 0),
  started_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  finished_at    INTEGER,
  paused_reason  TEXT,
  runner         TEXT,
  CHECK ((state = 'done') = (finished_at IS NOT NULL))
) STRICT;
-- At most one unfinished repack per environment, whichever node starts it.
CREATE UNIQUE INDEX repacks_one_unfinished ON repacks (environment_id) WHERE state <> 'done';
CREATE INDEX repacks_environment ON repacks (environment_id, started_at);

-- listKeysUnder: the keys under one parent, in id order (and the count of those left under an old EK).
CREATE INDEX keys_parent ON keys (environment_id, parent_id, id);
`,
  },
];

/**
 * Applies pending migrations in one IMMEDIATE transaction: the write lock is taken before the
 * version table is read, so two processes opening the same file cannot both apply a migration.
 */
export function migrateSqlite(db: Database.Database): void {
  db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT');
    const applied = db.prepare<[], { version: number }>('SELECT version FROM schema_migrations').all().map((r) => r.version);
    const record = db.prepare<[number, number]>('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)');
    for (const migration of pendingMigrations(SQLITE_MIGRATIONS, applied)) {
      db.exec(migration.sql);
      record.run(migration.version, Date.now());
    }
  }).immediate();
}
