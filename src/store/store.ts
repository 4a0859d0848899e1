/**
 * The storage interface. Two implementations (sqlite/, postgres/) pass one contract suite
 * (test/store/store-contract.test.ts).
 *
 * The store only ever sees wrapped keys and ciphertext: no plaintext key or secret value crosses
 * this interface. Every method is atomic on its own; uniqueness rules that the key hierarchy
 * depends on (one hourly key per environment per hour, one job key per job, …) are enforced by
 * the database, not by the caller, so they hold across nodes.
 */

export type KeyKind = 'ek' | 'hourly' | 'job' | 'connection' | 'log' | 'context';
export type KeyState = 'active' | 'decrypt-only' | 'disabled' | 'scheduled-destruction' | 'destroyed';

export interface WorkspaceRecord {
  readonly id: string;
  readonly name: string;
  readonly createdAt: Date;
}

export interface EnvironmentRecord {
  readonly id: string;
  readonly workspaceId: string;
  readonly name: string;
  readonly createdAt: Date;
}

/** An environment's CMK: which provider holds it and that provider's (non-secret-echoing) config. */
export interface CmkRecord {
  readonly id: string;
  readonly environmentId: string;
  /** Registry name of the provider: "platform", later "aws-kms", "pkcs11", … */
  readonly provider: string;
  /** Provider-specific configuration as JSON. For "platform": the CMK material wrapped by the root key. */
  readonly config: Readonly<Record<string, unknown>>;
  readonly state: KeyState;
  readonly createdAt: Date;
}

/**
 * A key of the hierarchy below the CMK, stored wrapped by its parent.
 * - ek:         parentId = the CMK id; scopeId null; wrapped by the CMK provider.
 * - hourly:     parentId = EK id; hourStart = UTC hour start (epoch seconds); unique per (env, hourStart).
 * - job:        parentId = the hourly key id; scopeId = job id; unique per (env, kind, scopeId).
 * - connection: parentId = EK id; scopeId = connection id; unique per (env, kind, scopeId).
 * - log:        parentId = EK id; scopeId = null; one active per environment (rotation: issue 5).
 * - context:    parentId = EK id; scopeId = hex SHA-256 of the canonical key context; unique per (env, kind, scopeId).
 */
export interface KeyRecord {
  readonly id: string;
  readonly environmentId: string;
  readonly kind: KeyKind;
  readonly scopeId: string | null;
  readonly hourStart: number | null;
  readonly parentId: string;
  /** The key wrapped by its parent (src/core/wrapped-key.ts), or by the CMK provider for an EK. */
  readonly wrapped: Buffer;
  /** For an EK: the CMK key version that wrapped it (provider-defined), else null. */
  readonly wrappingKeyVersion: string | null;
  readonly state: KeyState;
  readonly createdAt: Date;
  /** For state 'scheduled-destruction': when the key will be destroyed. Stores always return it (null otherwise). */
  readonly destroyAt?: Date | null;
}

/** A compare-and-set change of a key's lifecycle state (src/service/key-lifecycle.ts). */
export interface KeyStateChange {
  readonly environmentId: string;
  readonly keyId: string;
  /** The change applies only if the key's current state is one of these. */
  readonly from: readonly KeyState[];
  readonly to: KeyState;
  /** Required with to = 'scheduled-destruction'; cleared otherwise. */
  readonly destroyAt?: Date | null;
}

/**
 * environmentId of a KeyStateEvent that means "changes may have been missed" (sent after a node's
 * listening connection was re-established): treat every environment as changed.
 */
export const EVERY_ENVIRONMENT = '*';

/** Told about every key state change, on every node (this one included). */
export interface KeyStateEvent {
  readonly environmentId: string;
  readonly keyId: string;
  readonly state: KeyState;
}

export interface ObjectRecord {
  readonly id: string;
  readonly environmentId: string;
  readonly name: string;
  /** Canonical key-context JSON (src/core/key-context.ts). */
  readonly context: string;
  readonly contextKeyId: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly version: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface ObjectVersionRecord {
  readonly objectId: string;
  readonly version: number;
  /** Id of this version's data key (named in the ks1 header of `ciphertext`). */
  readonly dataKeyId: string;
  /** The data key wrapped by the object's context key. */
  readonly wrappedDataKey: Buffer;
  /** The value as a binary ks1 envelope. */
  readonly ciphertext: Buffer;
  readonly createdAt: Date;
}

export interface Page<T> {
  readonly items: readonly T[];
  /** Opaque cursor for the next page, or null when this is the last page. */
  readonly nextCursor: string | null;
}

/** A new environment is stored together with its CMK and EK, so one never exists without the others. */
export interface NewEnvironment {
  readonly environment: EnvironmentRecord;
  readonly cmk: CmkRecord;
  readonly ek: KeyRecord;
}

// ---- Access: API clients and their tokens -------------------------------------------------------

export type ClientRole = 'admin' | 'operator' | 'app' | 'auditor';

/** An API client ("access profile") of one workspace. */
export interface ClientRecord {
  readonly id: string;
  readonly workspaceId: string;
  /** Unique within the workspace. */
  readonly name: string;
  readonly role: ClientRole;
  /** Environment names the client may use; ["*"] means every environment, present and future. */
  readonly environments: readonly string[];
  /** CIDRs (IPv4 and IPv6, canonical text) every request must come from. */
  readonly allowedCidrs: readonly string[];
  /** Lifetime of each token issued to this client. */
  readonly tokenTtlSeconds: number;
  /** Requests per second this client may make; null = the server default. */
  readonly rateLimitPerSecond: number | null;
  readonly disabled: boolean;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** Per-client monitoring, flushed from memory in batches (see recordClientUsage). */
export interface ClientUsage {
  readonly requests: number;
  /** Requests that ended in a 4xx/5xx after the client was identified. */
  readonly failures: number;
  readonly lastUsedAt: Date | null;
  readonly lastUsedIp: string | null;
}

export interface ClientWithUsage extends ClientRecord {
  readonly usage: ClientUsage;
}

export type ClientPatch = Partial<
  Pick<ClientRecord, 'name' | 'role' | 'environments' | 'allowedCidrs' | 'tokenTtlSeconds' | 'rateLimitPerSecond' | 'disabled'>
>;

/** An API token of a client. Only its SHA-256 is stored; the token is shown once, at issue. */
export interface ClientTokenRecord {
  readonly id: string;
  readonly clientId: string;
  /** Hex SHA-256 of the token; unique across all clients. */
  readonly tokenHash: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
}

/** Usage accumulated in memory since the last flush, added to the stored counters. */
export interface ClientUsageDelta {
  readonly clientId: string;
  readonly requests: number;
  readonly failures: number;
  readonly lastUsedAt: Date;
  readonly lastUsedIp: string;
}

// ---- Audit log ---------------------------------------------------------------------------------

/** How an audit entry's body is sealed: under its environment's log key, or the workspace audit key. */
export type AuditSealing = 'log-key' | 'workspace-key';

/** An audit entry as the service hands it to the store: everything but its place in the chain. */
export interface AuditEntryDraft {
  readonly id: string;
  readonly workspaceId: string;
  /** The environment the entry is about, or null for workspace-level actions. */
  readonly environmentId: string | null;
  readonly at: Date;
  readonly sealing: AuditSealing;
  /** The encrypted entry body (who, what, outcome …); the store never sees it in clear. */
  readonly body: Buffer;
}

/** A stored audit entry: seq is 1, 2, 3 … per workspace, with no gaps. */
export interface AuditEntryRecord extends AuditEntryDraft {
  readonly seq: number;
  /** Chain link: a MAC over the previous entry's link and every field of this entry. */
  readonly link: Buffer;
}

/** The newest entry of a workspace's chain, kept in its own row so that truncation is visible. */
export interface AuditHead {
  readonly seq: number;
  readonly link: Buffer;
}

/** The link before the first entry of every chain. */
export const AUDIT_GENESIS_LINK: Buffer = Buffer.alloc(32);

/**
 * Computes an entry's link from the previous link. Keyed by a secret the store never holds, so a
 * database writer cannot recompute the chain after editing it. Called inside the store's
 * transaction, after the entry's seq is fixed; must be synchronous and must not throw.
 */
export type AuditLinker = (entry: Omit<AuditEntryRecord, 'link'>, previousLink: Buffer) => Buffer;

/**
 * Audit entries to append, in order. Passed alongside a change, they are written in the same
 * transaction as that change (and not at all if it fails or does not apply).
 */
export interface AuditAppend {
  readonly entries: readonly AuditEntryDraft[];
  readonly link: AuditLinker;
}

// ---- Customer-managed CMKs -------------------------------------------------------------------

/** The last health-probe result of a CMK (src/service/cmk-health.ts). */
export interface CmkHealthRecord {
  readonly cmkId: string;
  /** A CmkHealthState (src/providers/provider.ts). */
  readonly state: string;
  /** When the CMK entered this state (kept while probes keep seeing the same state). */
  readonly since: Date;
  readonly checkedAt: Date;
  readonly currentVersion: string | null;
  readonly expiresAt: Date | null;
  readonly deletionAt: Date | null;
  /** Operator-facing detail (no secrets). */
  readonly detail: string | null;
}

/** Moving an environment to another CMK: the EK re-wrapped under it. */
export interface CmkReplacement {
  readonly environmentId: string;
  /** The CMK the environment must still be on (compare-and-set against concurrent replacements). */
  readonly fromCmkId: string;
  /** The new CMK (state active). */
  readonly cmk: CmkRecord;
  readonly ekId: string;
  /** The EK wrapped by the new CMK. */
  readonly wrapped: Buffer;
  readonly wrappingKeyVersion: string;
}

/** The EK re-wrapped by a newer version of the same CMK (KMS-side rotation). */
export interface EkRewrap {
  readonly environmentId: string;
  readonly ekId: string;
  readonly cmkId: string;
  /** Compare-and-set: the wrapped bytes the EK must still have. */
  readonly expectedWrapped: Buffer;
  readonly wrapped: Buffer;
  readonly wrappingKeyVersion: string;
}

// ---- Repack: moving an environment's keys under a new environment key ---------------------------

/**
 * running: keys are being moved (or will be, on the next tick of whichever node holds the lease);
 * paused: a key store the repack needs failed, see pausedReason (retried on every tick);
 * done: every key is under the new EK and the old EK has been destroyed.
 */
export type RepackState = 'running' | 'paused' | 'done';

/** One environment's move from an old EK to a new one (PUT …/cmk with rotateEnvironmentKey). */
export interface RepackRecord {
  readonly id: string;
  readonly environmentId: string;
  /** The EK being retired: decrypt-only while keys remain under it, destroyed when the repack is done. */
  readonly fromEkId: string;
  /** The environment's new active EK. */
  readonly toEkId: string;
  /** The CMK that wraps fromEk (decrypt-only; still needed until done). */
  readonly fromCmkId: string;
  /** The CMK that wraps toEk. */
  readonly toCmkId: string;
  readonly state: RepackState;
  /** Keys directly under fromEk when the repack began (hourly, connection, log, context). */
  readonly total: number;
  /** Keys moved so far. */
  readonly done: number;
  readonly startedAt: Date;
  /** Last progress or state change. */
  readonly updatedAt: Date;
  readonly finishedAt: Date | null;
  /** Why a paused repack is paused (operator-facing text, never a secret). */
  readonly pausedReason: string | null;
  /** The node that last worked on it (host:pid), for operators. */
  readonly runner: string | null;
}

/**
 * A CMK replacement that also rotates the environment key: the new CMK and a new EK wrapped by it
 * become active, the old ones decrypt-only, and a repack is started, all in one transaction.
 */
export interface EkRotation {
  readonly environmentId: string;
  /** Compare-and-set: the environment's active CMK must still be this one … */
  readonly fromCmkId: string;
  /** … and its active EK this one (wrapped by fromCmkId). */
  readonly fromEkId: string;
  /** The new CMK (state active). */
  readonly cmk: CmkRecord;
  /** The new EK (kind ek, state active, parentId = cmk.id). */
  readonly ek: KeyRecord;
  readonly repackId: string;
  readonly startedAt: Date;
}

/** One key re-wrapped from the old EK to the new one. */
export interface RepackedKey {
  readonly id: string;
  /** Compare-and-set: the wrapped bytes the key must still have (a key destroyed meanwhile is left alone). */
  readonly expectedWrapped: Buffer;
  /** The key wrapped by the new EK (zero bytes for a key already destroyed: nothing to re-wrap). */
  readonly wrapped: Buffer;
}

export interface RepackBatch {
  readonly repackId: string;
  readonly environmentId: string;
  readonly fromEkId: string;
  readonly toEkId: string;
  readonly keys: readonly RepackedKey[];
  /** host:pid of the node applying it. */
  readonly runner: string;
  readonly at: Date;
}

/**
 * Thrown by insertKeyIfAbsent when the new key's parent is an environment key that is no longer
 * active (rotated away): the caller re-reads the environment's active EK and creates the key under
 * it. This is what guarantees that no key is created under an EK after its repack has counted it.
 */
export class StaleParentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StaleParentError';
  }
}

export interface Store {
  /** "sqlite" or "postgres", for status output and logs. */
  readonly kind: 'sqlite' | 'postgres';

  // Settings: small named values (e.g. the admin token hash, the root key check value).
  getSetting(name: string): Promise<string | undefined>;
  /** Stores `value` unless `name` already has one; returns the value that is stored afterwards. */
  putSettingIfAbsent(name: string, value: string): Promise<string>;
  /** Overwrites. */
  putSetting(name: string, value: string): Promise<void>;

  // Workspaces and environments.
  /** Creates the workspace and its first environment (with CMK and EK) in one transaction. */
  createWorkspace(workspace: WorkspaceRecord, first: NewEnvironment, audit?: AuditAppend): Promise<void>;
  getWorkspace(id: string): Promise<WorkspaceRecord | undefined>;
  /** Paginated by creation order. */
  listWorkspaces(options: { limit: number; cursor?: string | undefined }): Promise<Page<WorkspaceRecord>>;
  /** Throws StoreConflictError when the workspace already has an environment of that name. */
  createEnvironment(env: NewEnvironment, audit?: AuditAppend): Promise<void>;
  listEnvironments(workspaceId: string): Promise<readonly EnvironmentRecord[]>;
  getEnvironmentByName(workspaceId: string, name: string): Promise<EnvironmentRecord | undefined>;
  getEnvironment(id: string): Promise<EnvironmentRecord | undefined>;

  // CMKs.
  getCmk(id: string): Promise<CmkRecord | undefined>;
  /** The environment's current CMK (the one its active EK is wrapped by). */
  getActiveCmk(environmentId: string): Promise<CmkRecord | undefined>;

  /**
   * In one transaction: the new CMK is inserted as active, the environment's previous CMK becomes
   * 'decrypt-only' (it wraps nothing any more), and the EK's parent, wrapped bytes and wrapping
   * version are updated. Returns false and writes nothing (audit included) if the environment's
   * active CMK is no longer `fromCmkId`, or its active EK is no longer `ekId`.
   */
  replaceCmk(change: CmkReplacement, audit?: AuditAppend): Promise<boolean>;
  /** Updates the EK's wrapped bytes and wrapping version if they are still `expectedWrapped`; false otherwise. */
  rewrapEk(change: EkRewrap, audit?: AuditAppend): Promise<boolean>;
  /** Active CMKs whose provider is not in `excludeProviders`, in id order after `afterId` (health probe). */
  listActiveCmks(options: { excludeProviders: readonly string[]; limit: number; afterId?: string | undefined }): Promise<readonly CmkRecord[]>;
  getCmkHealth(cmkId: string): Promise<CmkHealthRecord | undefined>;
  /**
   * Stores a probe result. If the state is unchanged, `since` keeps its stored value whatever the
   * record says. `auditIfChanged` is written in the same transaction only when the state changed
   * (or there was no record). Returns the record as stored.
   */
  putCmkHealth(record: CmkHealthRecord, auditIfChanged?: AuditAppend): Promise<CmkHealthRecord>;

  // Key lifecycle.
  /**
   * Compare-and-set of a key's state: applies only if the key exists in the environment and its
   * state is in `change.from`; returns the updated record, or undefined (nothing written, audit
   * included). With to = 'destroyed' the wrapped material is erased in the same statement (the
   * wrapped column set to zero bytes): nothing below that key can ever be unwrapped again. Every
   * applied change is announced to watchKeyStates listeners on all nodes (PostgreSQL: NOTIFY in the
   * same transaction, so it is delivered at commit).
   */
  setKeyState(change: KeyStateChange, audit?: AuditAppend): Promise<KeyRecord | undefined>;
  /** Keys in 'scheduled-destruction' with destroyAt <= now, in any environment, soonest first. limit 1..1000. */
  listDueDestructions(now: Date, limit: number): Promise<readonly KeyRecord[]>;
  /**
   * Subscribe to key state changes made by any node (SQLite: this process; PostgreSQL: LISTEN on a
   * dedicated connection that reconnects by itself). Returns an unsubscribe function.
   */
  watchKeyStates(listener: (event: KeyStateEvent) => void): () => void;

  // Scheduled work.
  /**
   * Run `work` unless another node is running work of the same name right now; undefined when it
   * is. PostgreSQL: a session advisory lock held on one connection for the duration (released by
   * the server if the node dies, so another node takes over on its next tick). SQLite: one node by
   * design, so `work` always runs (concurrent calls in this process are still serialised by name).
   */
  runExclusive<T>(name: string, work: () => Promise<T>): Promise<T | undefined>;

  // Environment key rotation and repack.
  /**
   * In one transaction: the compare-and-set of replaceCmk (active CMK still fromCmkId, active EK
   * still fromEkId and wrapped by it); fromCmk becomes 'decrypt-only' and change.cmk is inserted
   * active; fromEk becomes 'decrypt-only' (announced to watchKeyStates like setKeyState) and
   * change.ek is inserted active; a repack row is inserted (state running, done 0, total = the
   * number of keys whose parent is fromEk — an EK's parent is always a CMK); the audit entries are appended.
   * Returns the repack, or undefined and writes nothing if the compare-and-set fails. Throws
   * StoreConflictError (nothing written) if the environment already has an unfinished repack
   * (checked after the compare-and-set, under the same EK lock), or if the new CMK's or EK's id is taken.
   */
  rotateEnvironmentKey(change: EkRotation, audit?: AuditAppend): Promise<RepackRecord | undefined>;
  /** The environment's unfinished repack if it has one, else its most recently finished one (greatest finishedAt), else undefined. */
  getRepack(environmentId: string): Promise<RepackRecord | undefined>;
  /**
   * Unfinished repacks of every environment: running ones first, then paused ones (so that repacks
   * stuck on a key store that is gone cannot starve newer ones), each oldest first (startedAt, then
   * id). limit 1..1000.
   */
  listUnfinishedRepacks(limit: number): Promise<readonly RepackRecord[]>;
  /** Keys whose parent is `parentId` (never EKs), in id order, at most `limit` (1..10000). */
  listKeysUnder(environmentId: string, parentId: string, limit: number): Promise<readonly KeyRecord[]>;
  /**
   * In one transaction: each key whose parent is still fromEkId and whose wrapped bytes are still
   * expectedWrapped gets parent toEkId and the new wrapped bytes (others are skipped: a later
   * listKeysUnder returns them again if they are still under fromEk); the repack's done grows by the
   * number moved, its state becomes running (pausedReason cleared), runner and updatedAt are set.
   * Returns the repack as stored, or undefined (nothing written) if it is done or does not exist.
   * Batches of one repack are serialised across nodes (PostgreSQL: its row is locked first). Throws
   * TypeError (nothing written) if a key appears twice, if wrapped is empty but expectedWrapped is not
   * (or the reverse), or if the batch's environmentId, fromEkId or toEkId are not the repack's.
   */
  applyRepackBatch(batch: RepackBatch): Promise<RepackRecord | undefined>;
  /**
   * Pause (reason given) or resume (reason null) an unfinished repack; sets runner and updatedAt.
   * Returns the repack as stored, or undefined if it is done or does not exist.
   */
  setRepackPaused(repackId: string, reason: string | null, runner: string, at: Date): Promise<RepackRecord | undefined>;
  /**
   * In one transaction, if no key is under fromEkId any more: the repack becomes
   * done (finishedAt = at, pausedReason cleared), fromEk becomes 'destroyed' with its wrapped bytes
   * erased (announced like setKeyState), and the audit entries are appended. Returns the finished
   * repack; undefined (nothing written) if keys remain under fromEk or the repack is not unfinished.
   */
  finishRepack(repackId: string, at: Date, audit?: AuditAppend): Promise<RepackRecord | undefined>;

  // Keys.
  getKey(environmentId: string, keyId: string): Promise<KeyRecord | undefined>;
  /** The environment's active EK. */
  getActiveEk(environmentId: string): Promise<KeyRecord | undefined>;
  getHourlyKey(environmentId: string, hourStart: number): Promise<KeyRecord | undefined>;
  /** The environment's hourly key with the greatest hourStart, or undefined. */
  latestHourlyKey(environmentId: string): Promise<KeyRecord | undefined>;
  /** A job/connection/context key by its scope id; for kind "log", the active log key (scopeId ignored). */
  findScopedKey(environmentId: string, kind: KeyKind, scopeId: string | null): Promise<KeyRecord | undefined>;
  /**
   * Inserts the key unless one with the same uniqueness identity exists (same env and hourStart for
   * hourly keys; same env, kind and scopeId for job/connection/context keys; an active log key for
   * log keys). Returns the key that is stored afterwards — the caller's or the one that won a race.
   * Throws StaleParentError (nothing written) when key.parentId is an EK whose state is not
   * 'active' — checked under a lock that orders it against rotateEnvironmentKey and finishRepack —
   * unless a key is already stored for it (the identity winner, or a retry of the same id): that
   * key is returned, whichever EK it is under.
   */
  insertKeyIfAbsent(key: KeyRecord): Promise<KeyRecord>;
  /** Counts of keys in an environment by kind, and the newest hourly key. */
  keyStats(environmentId: string): Promise<{ readonly counts: Readonly<Record<KeyKind, number>>; readonly latestHourly: KeyRecord | undefined }>;

  // Vault objects.
  /** Throws StoreConflictError when an object of that name exists in the environment. */
  createObject(object: ObjectRecord, firstVersion: ObjectVersionRecord, audit?: AuditAppend): Promise<void>;
  getObject(environmentId: string, id: string): Promise<ObjectRecord | undefined>;
  getObjectByName(environmentId: string, name: string): Promise<ObjectRecord | undefined>;
  /** Paginated in name order. */
  listObjects(environmentId: string, options: { limit: number; cursor?: string | undefined }): Promise<Page<ObjectRecord>>;
  /**
   * Adds a version if the object's current version is `expectedVersion` (compare-and-set in one
   * statement/transaction). Returns the updated object, or undefined on a version mismatch or if
   * the object does not exist.
   */
  addObjectVersion(
    environmentId: string,
    objectId: string,
    expectedVersion: number,
    version: ObjectVersionRecord,
    updatedAt: Date,
    audit?: AuditAppend,
  ): Promise<ObjectRecord | undefined>;
  getObjectVersion(objectId: string, version: number): Promise<ObjectVersionRecord | undefined>;
  /** Versions newest first, without ciphertext-heavy callers needing more: metadata only is fine. */
  listObjectVersions(objectId: string): Promise<readonly ObjectVersionRecord[]>;
  /** Deletes the object and all its versions. Returns false if it did not exist. */
  deleteObject(environmentId: string, id: string, audit?: AuditAppend): Promise<boolean>;

  // API clients and tokens. Methods taking `audit` write it only if the change applies.
  /** Creates the client with its first token. Throws StoreConflictError on a duplicate name. */
  createClient(client: ClientRecord, firstToken: ClientTokenRecord, audit?: AuditAppend): Promise<void>;
  getClient(workspaceId: string, id: string): Promise<ClientWithUsage | undefined>;
  /** Paginated in name order. */
  listClients(workspaceId: string, options: { limit: number; cursor?: string | undefined }): Promise<Page<ClientWithUsage>>;
  /** Applies the patch; undefined if no such client. Throws StoreConflictError on a duplicate name. */
  updateClient(workspaceId: string, id: string, patch: ClientPatch, updatedAt: Date, audit?: AuditAppend): Promise<ClientRecord | undefined>;
  /** Deletes the client and all its tokens. Returns false if it did not exist. */
  deleteClient(workspaceId: string, id: string, audit?: AuditAppend): Promise<boolean>;
  /**
   * Adds a token to the client (rotation). Every other token of the client then expires at
   * `othersExpireBy` at the latest (the overlap window), and tokens already expired at `now` are
   * deleted. Returns false (and writes nothing) if there is no such client in the workspace.
   */
  addClientToken(workspaceId: string, clientId: string, token: ClientTokenRecord, othersExpireBy: Date, now: Date, audit?: AuditAppend): Promise<boolean>;
  /** The client's tokens, oldest first (expired ones included until the next rotation prunes them). */
  listClientTokens(clientId: string): Promise<readonly ClientTokenRecord[]>;
  /** The token with this hash and its client, whatever their state (the caller checks expiry and disabled). */
  findClientToken(tokenHash: string): Promise<{ readonly token: ClientTokenRecord; readonly client: ClientRecord } | undefined>;
  /** Adds the deltas to the stored counters; last-used moves forward only. Unknown (deleted) clients are skipped. */
  recordClientUsage(deltas: readonly ClientUsageDelta[]): Promise<void>;

  // Audit log: one hash chain per workspace.
  /**
   * Appends the entries (possibly of several workspaces) in one transaction. Each entry gets the
   * next seq of its workspace's chain; appends to one workspace are serialised across nodes.
   */
  appendAudit(append: AuditAppend): Promise<void>;
  /** Entries with seq > afterSeq, in seq order, at most `limit` (1..1000). */
  listAuditEntries(workspaceId: string, options: { afterSeq: number; limit: number }): Promise<readonly AuditEntryRecord[]>;
  /** The workspace's chain head, or undefined if it has no entries yet. */
  getAuditHead(workspaceId: string): Promise<AuditHead | undefined>;

  close(): Promise<void>;
}

/** Thrown by the store when a uniqueness rule rejects a write (duplicate name). */
export class StoreConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreConflictError';
  }
}
