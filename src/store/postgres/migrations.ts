/**
 * PostgreSQL schema. Timestamps are timestamptz (microsecond precision, so a JS Date round-trips
 * exactly); JSON columns are jsonb; objects.name uses the "C" collation so names sort by code
 * point, exactly as SQLite's BINARY collation does, whatever the database's locale.
 */
import type { PoolClient } from 'pg';
import { pendingMigrations, type Migration } from '../migration.js';
import { AUDIT_SEALINGS, CLIENT_ROLES, KEY_KINDS, KEY_STATES, REPACK_STATES, sqlList } from '../rows.js';

const KINDS = sqlList(KEY_KINDS);
const STATES = sqlList(KEY_STATES);
const ROLES = sqlList(CLIENT_ROLES);
const SEALINGS = sqlList(AUDIT_SEALINGS);
const REPACKS = sqlList(REPACK_STATES);

export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'settings, workspaces, environments, cmks, keys, objects, object_versions',
    sql: `
CREATE TABLE settings (
  name  text PRIMARY KEY,
  value text NOT NULL
);

CREATE TABLE workspaces (
  id         text PRIMARY KEY,
  name       text NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE INDEX workspaces_created ON workspaces (created_at, id COLLATE "C");

CREATE TABLE environments (
  id           text PRIMARY KEY,
  workspace_id text NOT NULL REFERENCES workspaces (id),
  name         text NOT NULL,
  created_at   timestamptz NOT NULL,
  CONSTRAINT environments_workspace_id_name_key UNIQUE (workspace_id, name)
);

CREATE TABLE cmks (
  id             text PRIMARY KEY,
  environment_id text NOT NULL REFERENCES environments (id),
  provider       text NOT NULL,
  config         jsonb NOT NULL,
  state          text NOT NULL CHECK (state IN (${STATES})),
  created_at     timestamptz NOT NULL
);
CREATE INDEX cmks_environment ON cmks (environment_id);

CREATE TABLE keys (
  id                   text PRIMARY KEY,
  environment_id       text NOT NULL REFERENCES environments (id),
  kind                 text NOT NULL CHECK (kind IN (${KINDS})),
  scope_id             text,
  hour_start           bigint,
  parent_id            text NOT NULL,
  wrapped              bytea NOT NULL,
  wrapping_key_version text,
  state                text NOT NULL CHECK (state IN (${STATES})),
  created_at           timestamptz NOT NULL,
  -- A NULL would never collide in the unique indexes below, so the identity columns are required.
  CHECK (kind <> 'hourly' OR hour_start IS NOT NULL),
  CHECK (kind NOT IN ('job', 'connection', 'context') OR scope_id IS NOT NULL)
);
CREATE INDEX keys_environment_kind ON keys (environment_id, kind);
CREATE UNIQUE INDEX keys_one_hourly ON keys (environment_id, hour_start) WHERE kind = 'hourly';
CREATE UNIQUE INDEX keys_one_scoped ON keys (environment_id, kind, scope_id) WHERE kind IN ('job', 'connection', 'context');
CREATE UNIQUE INDEX keys_one_active_log ON keys (environment_id) WHERE kind = 'log' AND state = 'active';
CREATE UNIQUE INDEX keys_one_active_ek ON keys (environment_id) WHERE kind = 'ek' AND state = 'active';

CREATE TABLE objects (
  id             text PRIMARY KEY,
  environment_id text NOT NULL REFERENCES environments (id),
  name           text COLLATE "C" NOT NULL,
  context        text NOT NULL,
  context_key_id text NOT NULL,
  metadata       jsonb NOT NULL,
  version        integer NOT NULL CHECK (version >= 1),
  created_at     timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL,
  CONSTRAINT objects_environment_id_name_key UNIQUE (environment_id, name)
);

CREATE TABLE object_versions (
  object_id        text NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
  version          integer NOT NULL,
  data_key_id      text NOT NULL,
  wrapped_data_key bytea NOT NULL,
  ciphertext       bytea NOT NULL,
  created_at       timestamptz NOT NULL,
  PRIMARY KEY (object_id, version)
);
`,
  },
  {
    version: 2,
    description: 'clients, client_tokens, audit_entries, audit_heads',
    sql: `
CREATE TABLE clients (
  id                    text PRIMARY KEY,
  workspace_id          text NOT NULL REFERENCES workspaces (id),
  name                  text COLLATE "C" NOT NULL,
  role                  text NOT NULL CHECK (role IN (${ROLES})),
  environments          jsonb NOT NULL,
  allowed_cidrs         jsonb NOT NULL,
  token_ttl_seconds     integer NOT NULL CHECK (token_ttl_seconds > 0),
  rate_limit_per_second integer CHECK (rate_limit_per_second > 0),
  disabled              boolean NOT NULL,
  created_at            timestamptz NOT NULL,
  updated_at            timestamptz NOT NULL,
  requests              bigint NOT NULL DEFAULT 0,
  failures              bigint NOT NULL DEFAULT 0,
  last_used_at          timestamptz,
  last_used_ip          text,
  CONSTRAINT clients_workspace_id_name_key UNIQUE (workspace_id, name)
);

CREATE TABLE client_tokens (
  id         text PRIMARY KEY,
  client_id  text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
  token_hash text NOT NULL CONSTRAINT client_tokens_token_hash_key UNIQUE,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX client_tokens_client ON client_tokens (client_id, created_at);

-- No foreign keys: the audit log must outlive the workspaces, environments and clients it is about.
CREATE TABLE audit_entries (
  workspace_id   text NOT NULL,
  seq            bigint NOT NULL CHECK (seq >= 1),
  id             text NOT NULL CONSTRAINT audit_entries_id_key UNIQUE,
  environment_id text,
  at             timestamptz NOT NULL,
  sealing        text NOT NULL CHECK (sealing IN (${SEALINGS})),
  body           bytea NOT NULL,
  link           bytea NOT NULL,
  PRIMARY KEY (workspace_id, seq)
);

-- The newest seq and link of each workspace's chain, so that deleting its last entries shows.
-- Appends lock the row (SELECT … FOR UPDATE): that is what serialises them across nodes.
CREATE TABLE audit_heads (
  workspace_id text PRIMARY KEY,
  seq          bigint NOT NULL CHECK (seq >= 0),
  link         bytea NOT NULL
);
`,
  },
  {
    version: 3,
    description: 'cmk_health; index of active cmks',
    sql: `
-- The last probe result of each CMK. state is a provider health state (src/providers/provider.ts),
-- not checked here: a new state must not need a migration.
CREATE TABLE cmk_health (
  cmk_id          text PRIMARY KEY REFERENCES cmks (id),
  state           text NOT NULL CHECK (state <> ''),
  since           timestamptz NOT NULL,
  checked_at      timestamptz NOT NULL,
  current_version text,
  expires_at      timestamptz,
  deletion_at     timestamptz,
  detail          text
);

-- The health probe pages through the active CMKs in id order (COLLATE "C", as SQLite compares).
CREATE INDEX cmks_active ON cmks (id COLLATE "C") WHERE state = 'active';
`,
  },
  {
    version: 4,
    description: 'keys.destroy_at; index of keys due for destruction',
    sql: `
-- When a key in 'scheduled-destruction' is destroyed; NULL in any other state.
ALTER TABLE keys ADD COLUMN destroy_at timestamptz;

-- listDueDestructions: the scheduled keys, soonest first (id in code point order breaks ties, as in SQLite).
CREATE INDEX keys_due_destruction ON keys (destroy_at, id COLLATE "C") WHERE state = 'scheduled-destruction';
`,
  },
  {
    version: 5,
    description: 'repacks; index of keys by parent',
    sql: `
-- An environment's move from an old EK to a new one (rotateEnvironmentKey). Batches lock its row
-- (SELECT … FOR UPDATE): that is what serialises batch applications from several nodes.
CREATE TABLE repacks (
  id             text PRIMARY KEY,
  environment_id text NOT NULL REFERENCES environments (id),
  from_ek_id     text NOT NULL REFERENCES keys (id),
  to_ek_id       text NOT NULL REFERENCES keys (id),
  from_cmk_id    text NOT NULL REFERENCES cmks (id),
  to_cmk_id      text NOT NULL REFERENCES cmks (id),
  state          text NOT NULL CHECK (state IN (${REPACKS})),
  total          bigint NOT NULL CHECK (total >= 0),
  done           bigint NOT NULL CHECK (done >= 0),
  started_at     timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL,
  finished_at    timestamptz,
  paused_reason  text,
  runner         text,
  CHECK ((state = 'done') = (finished_at IS NOT NULL))
);
-- At most one unfinished repack per environment, whichever node starts it.
CREATE UNIQUE INDEX repacks_one_unfinished ON repacks (environment_id) WHERE state <> 'done';
CREATE INDEX repacks_environment ON repacks (environment_id, started_at);

-- listKeysUnder: the keys under one parent in id order (code point order, as in SQLite), and the
-- count of those left under an old EK.
CREATE INDEX keys_parent ON keys (environment_id, parent_id, id COLLATE "C");
`,
  },
];

/** Schema names are interpolated into SQL and connection options, so only plain identifiers pass. */
export function checkSchemaName(schema: string): void {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new TypeError(`PostgreSQL schema name "${schema}" must match [a-z_][a-z0-9_]* (at most 63 characters)`);
  }
}

/**
 * Applies pending migrations in one transaction under an advisory lock, so that several nodes
 * starting at once over one database migrate it exactly once: the others wait on the lock, then
 * find nothing left to do. The lock is per schema, so test files in their own schemas do not wait
 * for each other. The client's search_path must already name `schema`.
 */
export async function migratePostgres(client: PoolClient, schema: string | undefined): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`keystrata:migrate:${schema ?? ''}`]);
    // Inside the lock: concurrent CREATE SCHEMA IF NOT EXISTS can still fail with a duplicate key.
    if (schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)');
    const applied = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
    for (const migration of pendingMigrations(POSTGRES_MIGRATIONS, applied.rows.map((r) => r.version))) {
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())', [migration.version]);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
