import { newId, randomKey, zeroize } from '../core/bytes.js';
import { bindingBytes, openEnvelope, parseEnvelope, sealEnvelope } from '../core/envelope.js';
import { canonicalContext, contextDigest, type KeyContext } from '../core/key-context.js';
import { unwrapKey, wrapKey } from '../core/wrapped-key.js';
import { KeystrataError, invalidRequest } from '../errors.js';
import { StoreConflictError, type ObjectRecord, type ObjectVersionRecord, type Page, type Store } from '../store/store.js';
import type { ChangeAudit } from './audit/audit-event.js';
import type { Clock } from './clock.js';
import type { KeyHierarchy } from './key-hierarchy.js';
import type { EnvironmentContext } from './workspaces.js';

/**
 * The encrypted key-value store (DESIGN §4). Each object version gets its own data key, wrapped by
 * the context key of the object's key context; the value is a ks1 envelope whose AAD binds the
 * workspace, environment, context digest, object id and version. A value can therefore not be
 * moved to another object, version, context or tenant without failing its integrity check.
 */

export interface VaultObjectView {
  readonly id: string;
  readonly name: string;
  readonly version: number;
  readonly context: KeyContext;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface VaultObjectWithValue extends VaultObjectView {
  readonly value: string;
}

export interface ObjectVersionView {
  readonly version: number;
  readonly createdAt: Date;
}

export type VaultObjectStore = Pick<
  Store,
  'createObject' | 'getObject' | 'getObjectByName' | 'listObjects' | 'addObjectVersion' | 'getObjectVersion' | 'listObjectVersions' | 'deleteObject'
>;

export type VaultObjects = ReturnType<typeof createVaultObjects>;

function view(record: ObjectRecord): VaultObjectView {
  return {
    id: record.id,
    name: record.name,
    version: record.version,
    context: JSON.parse(record.context) as KeyContext,
    metadata: record.metadata,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
}

function objectScopeId(objectId: string, version: number): string {
  return `${objectId}/${version}`;
}

function notFound(id: string): KeystrataError {
  return new KeystrataError('object_not_found', `Object ${id} does not exist in this environment.`);
}

const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Text that both stores keep exactly: no lone UTF-16 surrogates (UTF-8 storage would turn them into
 * U+FFFD, silently changing the secret) and, in JSON metadata, no U+0000 (PostgreSQL's jsonb cannot
 * store it, so the same request would succeed on SQLite and fail on PostgreSQL).
 */
function checkStorableText(value: string, field: string): void {
  if (LONE_SURROGATE.test(value)) throw invalidRequest(field, `${field} must be well-formed Unicode text (it contains a lone surrogate).`);
}

/** Deeper metadata is refused: nobody needs it, and an unbounded walk is a stack-overflow vector. */
const MAX_METADATA_DEPTH = 32;

function checkStorableJson(root: unknown, field: string): void {
  // Iterative, with an explicit depth bound: the body parser accepts arbitrarily deep JSON.
  const pending: [unknown, number][] = [[root, 0]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [value, depth] = next;
    if (depth > MAX_METADATA_DEPTH) throw invalidRequest(field, `${field} is nested more than ${MAX_METADATA_DEPTH} levels deep.`);
    if (typeof value === 'string') {
      checkStorableText(value, field);
      if (value.includes('\u0000')) throw invalidRequest(field, `${field} must not contain the character U+0000.`);
    } else if (Array.isArray(value)) {
      for (const item of value) pending.push([item, depth + 1]);
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) pending.push([key, depth + 1], [item, depth + 1]);
    }
  }
}

export function createVaultObjects(deps: {
  readonly store: VaultObjectStore;
  readonly hierarchy: Pick<KeyHierarchy, 'scopedKeyId' | 'withKeyById'>;
  readonly clock: Clock;
}) {
  const { store, hierarchy, clock } = deps;

  async function sealVersion(env: EnvironmentContext, object: Pick<ObjectRecord, 'id' | 'context' | 'contextKeyId'>, version: number, value: string, createdAt: Date): Promise<ObjectVersionRecord> {
    const environmentId = env.environment.id;
    const dataKeyId = newId();
    const dataKey = randomKey();
    try {
      const wrappedDataKey = await hierarchy.withKeyById(environmentId, object.contextKeyId, (contextKey) =>
        wrapKey(contextKey.material, dataKey, { environmentId, keyId: dataKeyId, kind: 'object', parentId: object.contextKeyId }),
      );
      const binding = bindingBytes({ workspaceId: env.workspaceId, environmentId, contextDigest: contextDigest(JSON.parse(object.context) as KeyContext) });
      const plaintext = Buffer.from(value, 'utf8');
      try {
        const ciphertext = sealEnvelope(dataKey, { scopeKind: 'object', scopeId: objectScopeId(object.id, version), keyId: dataKeyId }, binding, plaintext);
        return { objectId: object.id, version, dataKeyId, wrappedDataKey, ciphertext, createdAt };
      } finally {
        zeroize(plaintext);
      }
    } finally {
      zeroize(dataKey);
    }
  }

  async function openVersion(env: EnvironmentContext, object: ObjectRecord, stored: ObjectVersionRecord): Promise<string> {
    const environmentId = env.environment.id;
    const parsed = parseEnvelope(stored.ciphertext);
    const integrityFailure = new KeystrataError('integrity_check_failed', 'A stored object value failed its integrity check.', {
      logDetail: `object ${object.id} version ${stored.version}`,
    });
    if (!parsed || parsed.header.keyId !== stored.dataKeyId || parsed.header.scopeId !== objectScopeId(object.id, stored.version)) throw integrityFailure;
    const binding = bindingBytes({ workspaceId: env.workspaceId, environmentId, contextDigest: contextDigest(JSON.parse(object.context) as KeyContext) });
    const plaintext = await hierarchy.withKeyById(environmentId, object.contextKeyId, (contextKey) => {
      const dataKey = unwrapKey(contextKey.material, stored.wrappedDataKey, { environmentId, keyId: stored.dataKeyId, kind: 'object', parentId: object.contextKeyId });
      if (!dataKey) return undefined;
      try {
        return openEnvelope(dataKey, parsed, binding);
      } finally {
        zeroize(dataKey);
      }
    });
    if (!plaintext) throw integrityFailure;
    const value = plaintext.toString('utf8');
    zeroize(plaintext);
    return value;
  }

  async function requireObject(env: EnvironmentContext, id: string): Promise<ObjectRecord> {
    const object = await store.getObject(env.environment.id, id);
    if (!object) throw notFound(id);
    return object;
  }

  async function withValue(env: EnvironmentContext, object: ObjectRecord, version = object.version): Promise<VaultObjectWithValue> {
    const stored = await store.getObjectVersion(object.id, version);
    if (!stored) throw new KeystrataError('object_version_not_found', `Object ${object.id} has no version ${version}.`);
    // updatedAt is when THIS version was written (for the current version, the object's updatedAt).
    return { ...view(object), version, updatedAt: stored.createdAt, value: await openVersion(env, object, stored) };
  }

  return {
    async create(
      env: EnvironmentContext,
      input: { name: string; value: string; context: KeyContext; metadata?: Readonly<Record<string, unknown>> | undefined },
      audit?: ChangeAudit,
    ): Promise<VaultObjectView> {
      checkStorableText(input.value, 'value');
      checkStorableJson(input.metadata ?? {}, 'metadata');
      const environmentId = env.environment.id;
      const context = canonicalContext(input.context);
      const contextKeyId = await hierarchy.scopedKeyId(environmentId, { kind: 'context', scopeId: contextDigest(input.context).toString('hex') });
      const now = new Date(clock.now());
      const object: ObjectRecord = {
        id: newId(),
        environmentId,
        name: input.name,
        context,
        contextKeyId,
        metadata: input.metadata ?? {},
        version: 1,
        createdAt: now,
        updatedAt: now,
      };
      const first = await sealVersion(env, object, 1, input.value, now);
      try {
        await store.createObject(object, first, await audit?.({ environment: env, target: { objectId: object.id, objectName: object.name, version: '1' } }));
      } catch (error) {
        if (error instanceof StoreConflictError) throw new KeystrataError('already_exists', `An object named "${input.name}" already exists in this environment.`);
        throw error;
      }
      return view(object);
    },

    async get(env: EnvironmentContext, id: string): Promise<VaultObjectWithValue> {
      return withValue(env, await requireObject(env, id));
    },

    async getByName(env: EnvironmentContext, name: string): Promise<VaultObjectWithValue> {
      const object = await store.getObjectByName(env.environment.id, name);
      if (!object) throw new KeystrataError('object_not_found', `No object named "${name}" exists in this environment.`);
      return withValue(env, object);
    },

    async getVersion(env: EnvironmentContext, id: string, version: number): Promise<VaultObjectWithValue> {
      return withValue(env, await requireObject(env, id), version);
    },

    async list(env: EnvironmentContext, options: { limit: number; cursor?: string | undefined }): Promise<Page<VaultObjectView>> {
      const page = await store.listObjects(env.environment.id, options);
      return { items: page.items.map(view), nextCursor: page.nextCursor };
    },

    /** Optimistic concurrency: succeeds only if the object is still at `expectedVersion`. */
    async update(env: EnvironmentContext, id: string, input: { value: string; expectedVersion: number }, audit?: ChangeAudit): Promise<VaultObjectView> {
      checkStorableText(input.value, 'value');
      const object = await requireObject(env, id);
      if (object.version !== input.expectedVersion) throw conflict(object.version);
      const now = new Date(clock.now());
      const next = await sealVersion(env, object, input.expectedVersion + 1, input.value, now);
      const entry = await audit?.({ environment: env, target: { objectId: id, objectName: object.name, version: String(input.expectedVersion + 1) } });
      const updated = await store.addObjectVersion(env.environment.id, id, input.expectedVersion, next, now, entry);
      if (updated) return view(updated);
      const current = await store.getObject(env.environment.id, id);
      if (!current) throw notFound(id);
      throw conflict(current.version);
    },

    async delete(env: EnvironmentContext, id: string, audit?: ChangeAudit): Promise<void> {
      if (!(await store.deleteObject(env.environment.id, id, await audit?.({ environment: env, target: { objectId: id } })))) throw notFound(id);
    },

    async versions(env: EnvironmentContext, id: string): Promise<readonly ObjectVersionView[]> {
      await requireObject(env, id);
      const versions = await store.listObjectVersions(id);
      return versions.map((v) => ({ version: v.version, createdAt: v.createdAt }));
    },
  };
}

function conflict(currentVersion: number): KeystrataError {
  return new KeystrataError('version_conflict', `The object is at version ${currentVersion}; re-read it and retry.`, { details: { currentVersion } });
}
