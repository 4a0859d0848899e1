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
  createWorkspace(workspace: WorkspaceRecord, first: NewEnvironment): Promise<void>;
  getWorkspace(id: string): Promise<WorkspaceRecord | undefined>;
  /** Paginated by creation order. */
  listWorkspaces(options: { limit: number; cursor?: string | undefined }): Promise<Page<WorkspaceRecord>>;
  /** Throws StoreConflictError when the workspace already has an environment of that name. */
  createEnvironment(env: NewEnvironment): Promise<void>;
  listEnvironments(workspaceId: string): Promise<readonly EnvironmentRecord[]>;
  getEnvironmentByName(workspaceId: string, name: string): Promise<EnvironmentRecord | undefined>;
  getEnvironment(id: string): Promise<EnvironmentRecord | undefined>;

  // CMKs.
  getCmk(id: string): Promise<CmkRecord | undefined>;
  /** The environment's current CMK (the one its active EK is wrapped by). */
  getActiveCmk(environmentId: string): Promise<CmkRecord | undefined>;

  // Keys.
  getKey(environmentId: string, keyId: string): Promise<KeyRecord | undefined>;
  /** The environment's active EK. */
  getActiveEk(environmentId: string): Promise<KeyRecord | undefined>;
  getHourlyKey(environmentId: string, hourStart: number): Promise<KeyRecord | undefined>;
  /** A job/connection/context key by its scope id; for kind "log", the active log key (scopeId ignored). */
  findScopedKey(environmentId: string, kind: KeyKind, scopeId: string | null): Promise<KeyRecord | undefined>;
  /**
   * Inserts the key unless one with the same uniqueness identity exists (same env and hourStart for
   * hourly keys; same env, kind and scopeId for job/connection/context keys; an active log key for
   * log keys). Returns the key that is stored afterwards — the caller's or the one that won a race.
   */
  insertKeyIfAbsent(key: KeyRecord): Promise<KeyRecord>;
  /** Counts of keys in an environment by kind, and the newest hourly key. */
  keyStats(environmentId: string): Promise<{ readonly counts: Readonly<Record<KeyKind, number>>; readonly latestHourly: KeyRecord | undefined }>;

  // Vault objects.
  /** Throws StoreConflictError when an object of that name exists in the environment. */
  createObject(object: ObjectRecord, firstVersion: ObjectVersionRecord): Promise<void>;
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
  ): Promise<ObjectRecord | undefined>;
  getObjectVersion(objectId: string, version: number): Promise<ObjectVersionRecord | undefined>;
  /** Versions newest first, without ciphertext-heavy callers needing more: metadata only is fine. */
  listObjectVersions(objectId: string): Promise<readonly ObjectVersionRecord[]>;
  /** Deletes the object and all its versions. Returns false if it did not exist. */
  deleteObject(environmentId: string, id: string): Promise<boolean>;

  close(): Promise<void>;
}

/** Thrown by the store when a uniqueness rule rejects a write (duplicate name). */
export class StoreConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreConflictError';
  }
}
