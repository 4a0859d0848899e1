/**
 * Request and response shapes of the keystrata HTTP API (docs/api.md; the server's schemas are
 * src/http/schemas.ts, also served as `GET /openapi.json`).
 *
 * These are declared here rather than imported from the server so that the SDK can be published on
 * its own with no runtime dependencies. Timestamps are ISO-8601 strings, exactly as sent on the wire.
 */

/** What a ciphertext produced by `encrypt` is bound to; decrypting under another scope fails. */
export type ScopeType = 'job' | 'event' | 'connection' | 'log';

/** The unit of data a ciphertext belongs to, e.g. `{ type: 'job', id: 'job_42' }`. */
export interface Scope {
  readonly type: ScopeType;
  readonly id: string;
}

/** An environment of a workspace (development, production …). Nothing crosses environments. */
export interface Environment {
  readonly id: string;
  readonly name: string;
  readonly createdAt: string;
}

/** A workspace as listed: without its environments. */
export interface WorkspaceSummary {
  readonly id: string;
  readonly name: string;
  readonly createdAt: string;
}

/** A workspace (one tenant) with its environments. */
export interface Workspace extends WorkspaceSummary {
  readonly environments: readonly Environment[];
}

/** One page of a paginated listing; pass `nextCursor` back as `cursor` to get the next page. */
export interface Page<T> {
  readonly items: readonly T[];
  readonly nextCursor: string | null;
}

/** Pagination options of listing calls. */
export interface PageOptions {
  /** Largest number of items to return, 1–1000 (the server's default is 100). */
  readonly limit?: number;
  /** The `nextCursor` of the previous page. */
  readonly cursor?: string;
}

/**
 * Lifecycle state of a key. Today the server stores only `active`; `decrypt-only` is reported for
 * hourly keys whose period is over.
 */
export type KeyState = 'active' | 'decrypt-only' | 'disabled' | 'scheduled-destruction' | 'destroyed';

/** The customer main key of an environment, as the key status shows it. */
export interface CmkSummary {
  readonly id: string;
  /** `platform`, `uploaded`, `pkcs11`, `kmip`, `aws-kms`, `gcp-kms`, `azure-keyvault` or `vault-transit`. */
  readonly provider: string;
  readonly state: KeyState;
  readonly createdAt: string;
}

/** Health of a customer-managed CMK, as the periodic probe last saw it (docs/byok.md). */
export type CmkHealthState =
  | 'healthy'
  | 'credentials_expired'
  | 'key_expiring'
  | 'key_expired'
  | 'key_disabled'
  | 'key_pending_deletion'
  | 'key_deleted'
  | 'permission_denied'
  | 'unreachable';

/** The customer main key of an environment: its config (never secret fields) and health. */
export interface CmkInfo extends CmkSummary {
  /** The provider config without its secret fields (empty for platform). */
  readonly config: Readonly<Record<string, unknown>>;
  /** Names of secret fields that are set (their values are never shown). */
  readonly secretFields: readonly string[];
  /** The CMK version that wraps the environment key now. */
  readonly keyVersion: string | null;
  readonly health: {
    readonly state: CmkHealthState;
    readonly since: string;
    readonly checkedAt: string;
    readonly currentVersion: string | null;
    readonly expiresAt: string | null;
    readonly deletionAt: string | null;
    readonly detail: string | null;
  } | null;
  /**
   * The environment's unfinished environment key rotation, else its last one; null if its
   * environment key has never been rotated (`rotateEnvironmentKey` of {@link PutCmkRequest}).
   */
  readonly repack: RepackInfo | null;
}

/**
 * State of an environment key rotation's repack. `running`: keys are being moved; `paused`: a key
 * store it needs cannot be used (see `pausedReason`), it resumes by itself; `done`: every key is
 * under the new environment key and the old one has been destroyed.
 */
export type RepackState = 'running' | 'paused' | 'done';

/**
 * Progress of an environment key rotation: every key under the old environment key is re-wrapped
 * under the new one in the background. Both CMKs (`fromCmkId`, `toCmkId`) must stay usable until
 * `state` is `done`; until then the CMK cannot be changed again (`repack_in_progress`, 409).
 */
export interface RepackInfo {
  readonly id: string;
  readonly state: RepackState;
  /** Keys moved under the new environment key so far. */
  readonly done: number;
  /** Keys under the old environment key when the repack began (never less than `done`). */
  readonly total: number;
  /** Keys per second since it started; null before the first batch. */
  readonly ratePerSecond: number | null;
  /** Seconds left at that rate: 0 when done, null when paused or not yet known. */
  readonly etaSeconds: number | null;
  readonly startedAt: string;
  /** Last progress or change of state. */
  readonly updatedAt: string;
  readonly finishedAt: string | null;
  /** Why a paused repack waits (operator-facing text, never a secret). */
  readonly pausedReason: string | null;
  readonly fromCmkId: string;
  readonly toCmkId: string;
  /** The environment key being retired (destroyed when the repack is done). */
  readonly fromEkId: string;
  readonly toEkId: string;
}

/** Body of {@link KeystrataClient.putCmk}. */
export interface PutCmkRequest {
  readonly provider: string;
  /** The provider's config (docs/byok.md); omit for `platform`. */
  readonly config?: Readonly<Record<string, unknown>>;
  /**
   * Also replace the environment key: a new one under the new CMK, and every key under the old one
   * re-wrapped in the background (progress in {@link CmkInfo.repack}). Default false: only the
   * environment key is re-wrapped under the new CMK.
   */
  readonly rotateEnvironmentKey?: boolean;
}

/** An hourly key of an environment, as shown by {@link KeystrataClient.keyStatus}. */
export interface HourlyKeyInfo {
  readonly id: string;
  /** Start of the key's period. */
  readonly hourStart: string;
  readonly state: KeyState;
}

/** Status of an environment's key hierarchy. */
export interface KeyStatus {
  readonly environment: { readonly id: string; readonly name: string };
  readonly cmk: CmkSummary;
  /** The active environment key. */
  readonly ek: {
    readonly id: string;
    readonly state: KeyState;
    readonly createdAt: string;
    /** The CMK version that wrapped it, e.g. `"1"`. */
    readonly wrappingKeyVersion: string | null;
  };
  readonly hourly: {
    /** Length of an hourly key period, in seconds. */
    readonly periodSeconds: number;
    /** The key of the current period, or null if nothing has needed one yet in this period. */
    readonly current: HourlyKeyInfo | null;
    /** The newest hourly key of the environment, or null; `decrypt-only` once its period is over. */
    readonly latest: HourlyKeyInfo | null;
  };
  /** Keys stored for this environment, by kind (object data keys are not counted). */
  readonly counts: {
    readonly ek: number;
    readonly hourly: number;
    readonly job: number;
    readonly connection: number;
    readonly log: number;
    readonly context: number;
  };
}

/** Input of {@link KeystrataClient.encrypt}. A string plaintext is encoded as UTF-8. */
export interface EncryptRequest {
  readonly scope: Scope;
  readonly plaintext: Uint8Array | string;
  /** Optional key context bound into the ciphertext; decryption must present the same one. */
  readonly context?: KeyContext;
}

/** Output of {@link KeystrataClient.encrypt}. */
export interface EncryptResult {
  /** The self-describing `ks1:` envelope; store it as is. */
  readonly ciphertext: string;
  /** Id of the key that encrypted it (informational). */
  readonly keyId: string;
}

/** Input of {@link KeystrataClient.decrypt}. */
export interface DecryptRequest {
  readonly ciphertext: string;
  /** When given, the server also checks that the ciphertext belongs to this scope. */
  readonly scope?: Scope;
  /** The key context given at encryption, if any (a different or missing one fails to decrypt). */
  readonly context?: KeyContext;
}

/** Output of {@link KeystrataClient.decrypt}. */
export interface DecryptResult {
  readonly plaintext: Uint8Array;
  readonly scope: Scope;
}

/** A key context: a flat object of strings, e.g. `{ organization_id: 'org_1' }`. */
export type KeyContext = Readonly<Record<string, string>>;

/** Free-form, non-secret metadata of a vault object. */
export type ObjectMetadata = Readonly<Record<string, unknown>>;

/** A vault object as listed, created or updated: without its value. */
export interface VaultObject {
  readonly id: string;
  readonly name: string;
  readonly version: number;
  readonly context: KeyContext;
  readonly metadata: ObjectMetadata;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A vault object as read: with its (decrypted) value. */
export interface VaultObjectWithValue extends VaultObject {
  readonly value: string;
}

/** Input of {@link KeystrataClient.createObject}. */
export interface CreateObjectRequest {
  readonly name: string;
  readonly value: string;
  readonly context: KeyContext;
  readonly metadata?: ObjectMetadata;
}

/**
 * Input of {@link KeystrataClient.updateObject}. An update writes a new value only: the name, key
 * context and metadata of an object are set when it is created and cannot be changed.
 */
export interface UpdateObjectRequest {
  readonly value: string;
  /** The version you read; the update fails with `version_conflict` (409) if it moved on. */
  readonly expectedVersion: number;
}

/** One version of a vault object. */
export interface ObjectVersion {
  readonly version: number;
  readonly createdAt: string;
}

/** Output of {@link KeystrataClient.listObjectVersions}, newest first. */
export interface ObjectVersionList {
  readonly items: readonly ObjectVersion[];
}

/** Output of {@link KeystrataClient.health}. */
export interface Health {
  readonly status: 'ok';
  /** `sqlite` or `postgres`. */
  readonly store: string;
}

/** The error body every failed API call answers with. */
export interface ApiErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly requestId: string;
    readonly field?: string;
    readonly details?: Readonly<Record<string, unknown>>;
  };
}

// ---- Access control: API clients, their tokens, JWTs and the audit log (src/http/access-schemas.ts)

/** What an API client may do (docs/access.md). */
export type ClientRole = 'admin' | 'operator' | 'app' | 'auditor';

/** Monitoring of an API client, kept by the server. */
export interface ClientUsage {
  /** Requests made with the client's tokens (and JWTs). */
  readonly requests: number;
  /** Requests that failed (4xx/5xx) after the client was identified. */
  readonly failures: number;
  readonly lastUsedAt: string | null;
  /** Address of the last request, or null if the client was never used. */
  readonly lastUsedIp: string | null;
}

/** A token of an API client that still works: its id and expiry only (the value is shown once). */
export interface ClientTokenInfo {
  readonly id: string;
  readonly createdAt: string;
  readonly expiresAt: string;
}

/** An API client (an access profile) of a workspace. */
export interface ApiClient {
  readonly id: string;
  readonly workspaceId: string;
  readonly name: string;
  readonly role: ClientRole;
  /** Environment names the client may use; `["*"]` means every environment, present and future. */
  readonly environments: readonly string[];
  /** CIDRs every request of the client must come from. */
  readonly allowedCidrs: readonly string[];
  /** Lifetime of each API token issued to the client, in seconds. */
  readonly tokenTtlSeconds: number;
  /** Requests per second (bursts of twice that); null means the server's default. */
  readonly rateLimitPerSecond: number | null;
  readonly disabled: boolean;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly usage: ClientUsage;
  readonly tokens: readonly ClientTokenInfo[];
}

/** Input of {@link KeystrataClient.createClient}. */
export interface CreateClientRequest {
  readonly name: string;
  readonly role: ClientRole;
  /** Environment names, or `["*"]` (the default) for every environment. */
  readonly environments?: readonly string[];
  /** IPv4/IPv6 CIDRs the client's requests must come from (default: any address). */
  readonly allowedCidrs?: readonly string[];
  /** Lifetime of each API token, 300 s to 400 days (default: the server's setting). */
  readonly tokenTtlSeconds?: number;
  /** Requests per second, 1–1,000,000; null or absent for the server's default. */
  readonly rateLimitPerSecond?: number | null;
}

/** Input of {@link KeystrataClient.updateClient}: only the members given are changed (at least one). */
export interface UpdateClientRequest {
  readonly name?: string;
  readonly role?: ClientRole;
  /** Replaces the list of environments. */
  readonly environments?: readonly string[];
  /** Replaces the list of allowed CIDRs. */
  readonly allowedCidrs?: readonly string[];
  /** Applies to tokens issued from now on. */
  readonly tokenTtlSeconds?: number;
  /** null returns the client to the server's default. */
  readonly rateLimitPerSecond?: number | null;
  /** A disabled client's tokens and JWTs are refused until it is enabled again. */
  readonly disabled?: boolean;
}

/** Output of {@link KeystrataClient.createClient}: the client and its first API token. */
export interface CreateClientResponse {
  readonly client: ApiClient;
  /** The API token, shown this once (the server keeps only a hash). Store it like a password. */
  readonly token: string;
  readonly tokenId: string;
  readonly expiresAt: string;
}

/** Input of {@link KeystrataClient.rotateClientToken}. */
export interface RotateTokenRequest {
  /** How long the client's previous tokens keep working, 0 s to 7 days (default: the server's setting). */
  readonly graceSeconds?: number;
}

/** Output of {@link KeystrataClient.rotateClientToken}: the new API token, shown this once. */
export interface RotateTokenResponse {
  readonly token: string;
  readonly tokenId: string;
  readonly expiresAt: string;
  /** When the client's previous tokens stop working. */
  readonly previousTokensExpireBy: string;
}

/** Input of {@link KeystrataClient.issueJwt}. */
export interface JwtRequest {
  /** Lifetime of the JWT, 60 s to 1 day (default and maximum: the server's settings). */
  readonly ttlSeconds?: number;
}

/** Output of {@link KeystrataClient.issueJwt}. */
export interface JwtResponse {
  /** The JWT; send it as `Authorization: Bearer <jwt>` (e.g. as the `token` of a {@link KeystrataClient}). */
  readonly token: string;
  readonly tokenType: 'Bearer';
  readonly expiresAt: string;
}

/** Who made an audited request. */
export interface AuditActor {
  /** `admin`: the break-glass admin token; `client`: an API client (token or JWT); `system`: keystrata itself (CMK health probe, following a KMS key rotation). */
  readonly type: 'admin' | 'client' | 'system';
  readonly id: string | null;
  readonly name: string | null;
  readonly role: ClientRole | null;
}

/**
 * One entry of a workspace's audit log. Entries form a hash chain: `seq` is 1, 2, 3 … with no gaps
 * and `link` (hex) chains each entry to the one before, for offline checks of an export.
 */
export interface AuditEntry {
  readonly seq: number;
  readonly id: string;
  readonly at: string;
  readonly environmentId: string | null;
  readonly link: string;
  /** Present, with an error code, when the body could not be decrypted (its environment's CMK is unavailable); the members below are then absent. */
  readonly unreadable?: string;
  readonly actor?: AuditActor;
  /** What was done, e.g. `client.create`. */
  readonly action?: string;
  /** What it was done to, e.g. `{ clientId, clientName }`. */
  readonly target?: Readonly<Record<string, string>>;
  readonly sourceIp?: string;
  readonly requestId?: string;
  readonly outcome?: 'success' | 'failure';
  /** The HTTP status of the answer. */
  readonly status?: number;
  /** The error code, when the request failed. */
  readonly errorCode?: string;
}

/** Output of {@link KeystrataClient.verifyAudit}. */
export interface AuditVerifyResponse {
  /** True when every entry is present, unaltered and in order up to the head. */
  readonly ok: boolean;
  /** Entries checked. */
  readonly checked: number;
  /** seq of the first entry that fails (missing, edited, reordered or inserted), when not ok. */
  readonly firstBadEntry?: number;
  /** Why it fails, when not ok. */
  readonly reason?: string;
  /** The chain's head: its last seq and link. */
  readonly head: { readonly seq: number; readonly link: string };
}
