import { resolve } from 'node:path';
import { KeystrataError } from './errors.js';
import { TOKEN_TTL_MAX_SECONDS, TOKEN_TTL_MIN_SECONDS } from './service/access/token-limits.js';
import { tryParseCidr } from './service/access/ip-allowlist.js';

/**
 * Configuration is read from the environment once, at start-up, into this frozen object; nothing
 * below the composition root reads process.env. Secrets (root key, admin token) have no defaults.
 */
export interface Config {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /** postgres://… to use PostgreSQL; undefined → embedded SQLite at `${dataDir}/keystrata.db`. */
  readonly databaseUrl: string | undefined;
  /** PostgreSQL schema of this deployment (several deployments can share one database); default: search_path. */
  readonly databaseSchema: string | undefined;
  /** Base64 of the 32-byte root key, when given by environment instead of the key file. */
  readonly rootKeyBase64: string | undefined;
  readonly rootKeyFile: string;
  /** Fixed break-glass admin token for scripted set-ups; otherwise one is generated and printed once. */
  readonly adminToken: string | undefined;
  readonly keyCacheTtlSeconds: number;
  readonly keyCacheMaxEntries: number;
  /** Length of an "hourly" key period; 3600 unless changed. */
  readonly hourlyKeyPeriodSeconds: number;
  readonly bodyLimitBytes: number;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Canonical CIDRs of reverse proxies whose X-Forwarded-For is believed; empty = none. */
  readonly trustedProxies: readonly string[];
  /** Bearer token that may read /metrics (besides the admin token); unset = admin token only. */
  readonly metricsToken: string | undefined;
  /** Default lifetime of a client's API tokens. */
  readonly tokenTtlSeconds: number;
  /** Default overlap when a token is rotated: how long the previous tokens keep working. */
  readonly tokenRotationGraceSeconds: number;
  readonly jwtTtlSeconds: number;
  readonly jwtMaxLifetimeSeconds: number;
  readonly jwtClockSkewSeconds: number;
  /** Default per-client rate (requests/s; bursts of twice that). */
  readonly clientRateLimitPerSecond: number;
  /** Failed authentications allowed per source address per minute before it gets 429s. */
  readonly authFailuresPerMinute: number;
  /** Deadline of each CMK provider call. */
  readonly cmkCallTimeoutMs: number;
  /** How often each customer-managed CMK is probed for its health. */
  readonly cmkProbeIntervalSeconds: number;
  /** Absolute paths of the PKCS#11 libraries customers' `pkcs11` CMKs may name (none by default). */
  readonly pkcs11Modules: readonly string[];
  /** Default waiting period before a scheduled key destruction happens. */
  readonly destructionWaitingDays: number;
  /** A customer-managed CMK can be replaced once per this many hours per environment (0 = no limit). */
  readonly cmkReplaceIntervalHours: number;
  /** Keys re-wrapped per repack transaction (environment key rotation). */
  readonly repackBatchSize: number;
  /** How often every node looks for unfinished repacks to take over (one node works at a time). */
  readonly repackIntervalSeconds: number;
  /** Pause between repack batches, to bound the database load of a large repack (0 = none). */
  readonly repackBatchPauseMs: number;
  /** Platform-managed CMKs older than this are rotated automatically. */
  readonly platformCmkRotationDays: number;
  /** An environment's log key is retired (decrypt-only) and replaced once older than this. */
  readonly logKeyRotationDays: number;
}

type Env = Readonly<Record<string, string | undefined>>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new KeystrataError('configuration_invalid', `${name} must be an integer from ${min} to ${max} (got "${raw}").`);
  }
  return value;
}

function optional(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw === '' ? undefined : raw;
}

/** A comma-separated list of absolute paths. */
function pathList(env: Env, name: string): string[] {
  const paths = (optional(env, name) ?? '').split(',').map((part) => part.trim()).filter((part) => part !== '');
  for (const path of paths) {
    if (!path.startsWith('/')) throw new KeystrataError('configuration_invalid', `${name}: "${path}" is not an absolute path.`);
  }
  return paths;
}

export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): Config {
  const dataDir = resolve(cwd, optional(env, 'KEYSTRATA_DATA_DIR') ?? 'data');
  const databaseUrl = optional(env, 'KEYSTRATA_DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new KeystrataError('configuration_invalid', 'KEYSTRATA_DATABASE_URL must be a postgres:// URL (leave it unset for embedded SQLite).');
  }
  const databaseSchema = optional(env, 'KEYSTRATA_DATABASE_SCHEMA');
  if (databaseSchema !== undefined && (databaseUrl === undefined || !/^[a-z_][a-z0-9_]{0,62}$/.test(databaseSchema))) {
    throw new KeystrataError(
      'configuration_invalid',
      databaseUrl === undefined
        ? 'KEYSTRATA_DATABASE_SCHEMA needs KEYSTRATA_DATABASE_URL (it names a PostgreSQL schema).'
        : 'KEYSTRATA_DATABASE_SCHEMA must be a lower-case PostgreSQL identifier: [a-z_][a-z0-9_]*, at most 63 characters.',
    );
  }
  const logLevel = optional(env, 'KEYSTRATA_LOG_LEVEL') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new KeystrataError('configuration_invalid', `KEYSTRATA_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}.`);
  }
  const adminToken = optional(env, 'KEYSTRATA_ADMIN_TOKEN');
  if (adminToken !== undefined && adminToken.length < 32) {
    throw new KeystrataError('configuration_invalid', 'KEYSTRATA_ADMIN_TOKEN must be at least 32 characters: it is a break-glass credential.');
  }
  const metricsToken = optional(env, 'KEYSTRATA_METRICS_TOKEN');
  if (metricsToken !== undefined && metricsToken.length < 32) {
    throw new KeystrataError('configuration_invalid', 'KEYSTRATA_METRICS_TOKEN must be at least 32 characters.');
  }
  const trustedProxies = (optional(env, 'KEYSTRATA_TRUSTED_PROXIES') ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part) => {
      const cidr = tryParseCidr(part);
      if (!cidr) throw new KeystrataError('configuration_invalid', `KEYSTRATA_TRUSTED_PROXIES: "${part}" is not an IPv4 or IPv6 address or CIDR.`);
      return cidr.text;
    });
  const jwtMaxLifetimeSeconds = integer(env, 'KEYSTRATA_JWT_MAX_LIFETIME_SECONDS', 3600, 60, 86_400);
  return Object.freeze({
    host: optional(env, 'KEYSTRATA_HOST') ?? '127.0.0.1',
    port: integer(env, 'PORT', 8200, 0, 65535),
    dataDir,
    databaseUrl,
    databaseSchema,
    rootKeyBase64: optional(env, 'KEYSTRATA_ROOT_KEY'),
    rootKeyFile: resolve(cwd, optional(env, 'KEYSTRATA_ROOT_KEY_FILE') ?? resolve(dataDir, 'root.key')),
    adminToken,
    keyCacheTtlSeconds: integer(env, 'KEYSTRATA_KEY_CACHE_TTL_SECONDS', 300, 1, 86_400),
    keyCacheMaxEntries: integer(env, 'KEYSTRATA_KEY_CACHE_MAX_ENTRIES', 10_000, 16, 10_000_000),
    hourlyKeyPeriodSeconds: integer(env, 'KEYSTRATA_HOURLY_KEY_PERIOD_SECONDS', 3600, 60, 86_400),
    bodyLimitBytes: integer(env, 'KEYSTRATA_BODY_LIMIT_BYTES', 1_048_576, 1024, 64 * 1_048_576),
    logLevel: logLevel as Config['logLevel'],
    trustedProxies: Object.freeze(trustedProxies),
    metricsToken,
    tokenTtlSeconds: integer(env, 'KEYSTRATA_TOKEN_TTL_SECONDS', 90 * 86_400, TOKEN_TTL_MIN_SECONDS, TOKEN_TTL_MAX_SECONDS),
    tokenRotationGraceSeconds: integer(env, 'KEYSTRATA_TOKEN_ROTATION_GRACE_SECONDS', 3600, 0, 7 * 86_400),
    jwtTtlSeconds: integer(env, 'KEYSTRATA_JWT_TTL_SECONDS', 900, 60, jwtMaxLifetimeSeconds),
    jwtMaxLifetimeSeconds,
    jwtClockSkewSeconds: integer(env, 'KEYSTRATA_JWT_CLOCK_SKEW_SECONDS', 60, 0, 300),
    clientRateLimitPerSecond: integer(env, 'KEYSTRATA_CLIENT_RATE_LIMIT_PER_SECOND', 1000, 1, 1_000_000),
    authFailuresPerMinute: integer(env, 'KEYSTRATA_AUTH_FAILURES_PER_MINUTE', 20, 1, 100_000),
    cmkCallTimeoutMs: integer(env, 'KEYSTRATA_CMK_TIMEOUT_MS', 5000, 100, 120_000),
    cmkProbeIntervalSeconds: integer(env, 'KEYSTRATA_CMK_PROBE_INTERVAL_SECONDS', 60, 1, 86_400),
    pkcs11Modules: Object.freeze(pathList(env, 'KEYSTRATA_PKCS11_MODULES')),
    destructionWaitingDays: integer(env, 'KEYSTRATA_DESTRUCTION_WAITING_DAYS', 7, 1, 365),
    cmkReplaceIntervalHours: integer(env, 'KEYSTRATA_CMK_REPLACE_INTERVAL_HOURS', 24, 0, 8760),
    repackBatchSize: integer(env, 'KEYSTRATA_REPACK_BATCH_SIZE', 2000, 1, 10_000),
    repackIntervalSeconds: integer(env, 'KEYSTRATA_REPACK_INTERVAL_SECONDS', 5, 1, 3600),
    repackBatchPauseMs: integer(env, 'KEYSTRATA_REPACK_BATCH_PAUSE_MS', 0, 0, 60_000),
    platformCmkRotationDays: integer(env, 'KEYSTRATA_PLATFORM_CMK_ROTATION_DAYS', 365, 1, 3650),
    logKeyRotationDays: integer(env, 'KEYSTRATA_LOG_KEY_ROTATION_DAYS', 30, 1, 3650),
  });
}
