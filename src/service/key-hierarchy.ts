import { newId, randomKey, zeroize } from '../core/bytes.js';
import { ekWrapAad, unwrapKey, wrapKey } from '../core/wrapped-key.js';
import { KeystrataError } from '../errors.js';
import type { ProviderRegistry } from '../providers/registry.js';
import { EVERY_ENVIRONMENT, StaleParentError, type AuditAppend, type KeyKind, type KeyRecord, type KeyState, type Store } from '../store/store.js';
import type { Clock } from './clock.js';
import { MISS, type KeyCache, type KeyEntry, type LoadedKey } from './key-cache.js';
import { LruMap } from './lru-map.js';
import { providerFailure } from './provider-failures.js';
import { SingleFlight } from './single-flight.js';

/** What the cache remembers about a key besides its material: enough to check a ciphertext's claims. */
export interface KeyMeta {
  /** The key's id (the cache slot name also carries the environment). */
  readonly keyId: string;
  readonly environmentId: string;
  readonly kind: KeyKind;
  readonly scopeId: string | null;
  readonly hourStart: number | null;
}

export type HierarchyStore = Pick<Store, 'getKey' | 'getActiveEk' | 'getCmk' | 'latestHourlyKey' | 'findScopedKey' | 'insertKeyIfAbsent' | 'setKeyState'>;

export interface KeyHierarchyDeps {
  readonly store: HierarchyStore;
  readonly cache: KeyCache<KeyMeta>;
  readonly providers: Pick<ProviderRegistry, 'forCmk'>;
  readonly clock: Clock;
  readonly hourlyPeriodSeconds: number;
  /** Bound on the (non-secret) scope → key id index. */
  readonly scopeIndexSize: number;
  /** A log key older than this is retired (decrypt-only) and the next log write gets a new one. */
  readonly logKeyRotationMs?: number;
  /** The audit entry written with a log key's retirement (sealed without the log key itself). */
  readonly logKeyRetirementAudit?: (environmentId: string, keyId: string) => Promise<AuditAppend | undefined>;
}

/** Keys a caller can ask for by scope; each is created on first use. */
export type ScopedKeyRequest =
  | { readonly kind: 'hourly' }
  | { readonly kind: 'job'; readonly scopeId: string }
  | { readonly kind: 'connection'; readonly scopeId: string }
  | { readonly kind: 'context'; readonly scopeId: string }
  | { readonly kind: 'log' };

export type KeyHierarchy = ReturnType<typeof createKeyHierarchy>;

/** A key's state as callers should see it: an hourly key is decrypt-only once its hour is over. */
export function effectiveKeyState(record: Pick<KeyRecord, 'kind' | 'state' | 'hourStart'>, nowMs: number, periodSeconds: number): KeyState {
  if (record.kind === 'hourly' && record.state === 'active' && record.hourStart !== null && (record.hourStart + periodSeconds) * 1000 <= nowMs) {
    return 'decrypt-only';
  }
  return record.state;
}

function assertUsable(state: KeyState, what: string): void {
  if (state === 'destroyed') throw new KeystrataError('key_destroyed', `The ${what} has been destroyed; data encrypted under it is lost.`);
  if (state === 'disabled' || state === 'scheduled-destruction') throw new KeystrataError('key_disabled', `The ${what} is disabled.`);
}

/**
 * The key hierarchy of DESIGN §1 below the CMK: resolves keys by id or by scope, creates them on
 * first use, and unwraps them through their parents with the key cache in front of every level.
 */
export function createKeyHierarchy(deps: KeyHierarchyDeps) {
  const { store, cache, providers, clock } = deps;
  const periodMs = deps.hourlyPeriodSeconds * 1000;
  // scope → key id. Ids are not secret, and a scope's key never changes once created.
  const scopeIndex = new LruMap<string, string>(deps.scopeIndexSize);
  const resolving = new SingleFlight<string, string>();
  /**
   * CMKs whose provider just failed (unavailable, disabled …): for a short while every further
   * cold load fails at once with the same answer instead of waiting on the KMS again — a revoked or
   * unreachable CMK costs requests nothing but a map lookup, and the KMS is not hammered.
   */
  const recentFailures = new LruMap<string, { readonly error: KeystrataError; readonly until: number }>(10_000);
  const FAILURE_HOLD_MS = 2000;
  /** When each known log key was created: log keys rotate on age (KEYSTRATA_LOG_KEY_ROTATION_DAYS). */
  const logKeyBorn = new LruMap<string, number>(deps.scopeIndexSize);

  /**
   * The single-flight of a key's load is per environment. Key ids appear in clear in every ks1
   * header, so anyone can name another tenant's key id; the load is environment-scoped
   * (store.getKey(env, id)), and a request from another environment must never share — and fail —
   * the load that tenant's own request is waiting on. Cache entries stay keyed by id (hits are the
   * hot path) and every use checks the entry's environment.
   */
  function flightOf(environmentId: string, keyId: string): string {
    return `${environmentId}\0${keyId}`;
  }

  function metaOf(record: KeyRecord): KeyMeta {
    return { keyId: record.id, environmentId: record.environmentId, kind: record.kind, scopeId: record.scopeId, hourStart: record.hourStart };
  }

  /**
   * The newest hour whose key this node has used, per environment: after the clock steps back, the
   * node goes on with that key instead of returning to an earlier hour's (DESIGN §5, decisions 34).
   */
  const newestHour = new LruMap<string, number>(deps.scopeIndexSize);
  function hourInUse(environmentId: string): number {
    const now = currentHourStart();
    const newest = newestHour.peek(environmentId);
    return newest !== undefined && newest > now ? newest : now;
  }
  function sawHour(environmentId: string, hourStart: number): void {
    const newest = newestHour.peek(environmentId);
    if (newest === undefined || hourStart > newest) newestHour.set(environmentId, hourStart);
  }

  /** Start of the current key period (UTC-aligned), in epoch seconds. */
  function currentHourStart(): number {
    return (Math.floor(clock.now() / periodMs) * periodMs) / 1000;
  }

  async function loadKey(environmentId: string, keyId: string, reread = false): Promise<LoadedKey<KeyMeta>> {
    const record = await store.getKey(environmentId, keyId);
    if (!record) throw new KeystrataError('key_not_found', 'No such key in this environment.');
    assertUsable(record.state, `${record.kind} key`);
    if (record.kind === 'ek') return loadEnvironmentKey(record);
    return loadUnder(record).catch(async (error: unknown) => {
      // A repack may have moved this key to the new EK and destroyed the old one between the two
      // reads: the row read again names its new parent.
      if (reread || !(error instanceof KeystrataError) || (error.code !== 'key_destroyed' && error.code !== 'key_not_found')) throw error;
      const again = await store.getKey(environmentId, keyId);
      if (again === undefined || again.parentId === record.parentId) throw error;
      return loadKey(environmentId, keyId, true);
    });
  }

  function loadUnder(record: KeyRecord): Promise<LoadedKey<KeyMeta>> {
    const environmentId = record.environmentId;
    return cache.withKey(
      record.parentId,
      () => loadKey(environmentId, record.parentId),
      (parent) => {
        const material = unwrapKey(parent.material, record.wrapped, {
          environmentId,
          keyId: record.id,
          kind: record.kind,
          parentId: record.parentId,
        });
        if (!material) {
          throw new KeystrataError('integrity_check_failed', 'A stored key failed its integrity check.', {
            logDetail: `${record.kind} key ${record.id} did not unwrap under ${record.parentId}`,
          });
        }
        return { material, meta: metaOf(record), notAfter: parent.expiresAt };
      },
      flightOf(environmentId, record.parentId),
    );
  }

  async function loadEnvironmentKey(record: KeyRecord): Promise<LoadedKey<KeyMeta>> {
    const cmk = await store.getCmk(record.parentId);
    if (!cmk) throw new KeystrataError('integrity_check_failed', 'An environment key names a CMK that does not exist.');
    assertUsable(cmk.state, 'customer main key');
    const held = recentFailures.get(cmk.id);
    if (held !== undefined && clock.now() < held.until) throw held.error;
    const aad = ekWrapAad({ environmentId: record.environmentId, ekId: record.id, cmkId: cmk.id });
    const material = await providers
      .forCmk(cmk)
      .unwrap(record.wrapped, aad, record.wrappingKeyVersion)
      .catch((error: unknown) => {
        const failure = providerFailure(error, cmk);
        if (failure.code === 'key_unavailable' || failure.code === 'key_destroyed') {
          recentFailures.set(cmk.id, { error: failure, until: clock.now() + FAILURE_HOLD_MS });
        }
        throw failure;
      });
    recentFailures.delete(cmk.id);
    return { material, meta: metaOf(record) };
  }

  function inEnvironment<T>(environmentId: string, use: (key: KeyEntry<KeyMeta>) => T): (key: KeyEntry<KeyMeta>) => T {
    return (entry) => {
      // Key ids are global, the cache is shared: never let one environment use another's key.
      if (entry.meta.environmentId !== environmentId) throw new KeystrataError('key_not_found', 'No such key in this environment.');
      return use(entry);
    };
  }

  /** Run `use` with key `keyId` of this environment; key_not_found if it belongs elsewhere. */
  function withKeyById<T>(environmentId: string, keyId: string, use: (key: KeyEntry<KeyMeta>) => T): Promise<T> {
    const guarded = inEnvironment(environmentId, use);
    // Cache hit: no promise machinery beyond the one the caller awaits.
    try {
      const hit = cache.tryUse(keyId, guarded);
      if (hit !== MISS) return Promise.resolve(hit);
    } catch (error) {
      return Promise.reject(error);
    }
    return cache.withKey(keyId, () => loadKey(environmentId, keyId), guarded, flightOf(environmentId, keyId));
  }

  /**
   * Cache a new EK's material right after it was stored (a rotation made it and wrapped it itself),
   * so the repack and the next requests do not ask the new CMK to unwrap what keystrata just held.
   * Takes a copy: the caller zeroes its own.
   */
  function adoptEnvironmentKey(record: KeyRecord, material: Buffer): void {
    cache.put(record.id, { material: Buffer.from(material), meta: metaOf(record) });
  }

  /**
   * Forget which EK is the environment's active one (it may have been rotated: read it again).
   * EVERY_ENVIRONMENT (changes may have been missed) forgets the whole scope index.
   */
  function forgetEnvironmentKey(environmentId: string): void {
    if (environmentId === EVERY_ENVIRONMENT) scopeIndex.clear();
    else scopeIndex.delete(`${environmentId}\0ek`);
  }

  async function environmentKeyId(environmentId: string): Promise<string> {
    const indexKey = `${environmentId}\0ek`;
    const known = scopeIndex.get(indexKey);
    if (known) return known;
    const ek = await store.getActiveEk(environmentId);
    // Every environment has an EK from its creation on: none active means it is disabled, scheduled
    // for destruction (a shred) or destroyed — a state the caller is told, not an internal error.
    if (!ek) throw new KeystrataError('key_disabled', 'The environment key is not active (disabled, scheduled for destruction or destroyed): no new keys can be made in this environment.');
    scopeIndex.set(indexKey, ek.id);
    return ek.id;
  }

  /** Create a key under `parentId`, or return the id of the one that won a race to create it. */
  async function createKey(environmentId: string, template: Omit<KeyRecord, 'id' | 'wrapped' | 'parentId' | 'createdAt' | 'environmentId' | 'state' | 'wrappingKeyVersion'>, parentId: string): Promise<string> {
    const id = newId();
    const material = randomKey();
    let cached = false;
    try {
      const { wrapped, parentExpiry } = await withKeyById(environmentId, parentId, (parent) => ({
        wrapped: wrapKey(parent.material, material, { environmentId, keyId: id, kind: template.kind, parentId }),
        parentExpiry: parent.expiresAt,
      }));
      const record: KeyRecord = {
        ...template,
        id,
        environmentId,
        parentId,
        wrapped,
        wrappingKeyVersion: null,
        state: 'active',
        createdAt: new Date(clock.now()),
      };
      const winner = await store.insertKeyIfAbsent(record);
      if (winner.id === id) {
        cache.put(id, { material, meta: metaOf(record), notAfter: parentExpiry });
        cached = true;
      }
      return winner.id;
    } finally {
      if (!cached) zeroize(material);
    }
  }

  /**
   * The scope-index key of a request. `hourStart` is passed in, never re-read from the clock here:
   * reading the clock twice could straddle an hour boundary and file one hour's key under the
   * next hour's entry, and events would then be sealed under a decrypt-only key for an hour.
   */
  function indexKeyOf(environmentId: string, request: ScopedKeyRequest, hourStart: number | null): string {
    const identity = request.kind === 'hourly' ? hourStart : 'scopeId' in request ? request.scopeId : '';
    return `${environmentId}\0${request.kind}\0${identity}`;
  }

  /** The id of the key for `request`, creating it (and its parents) on first use. */
  function scopedKeyId(environmentId: string, request: ScopedKeyRequest): Promise<string> {
    const hourStart = request.kind === 'hourly' ? hourInUse(environmentId) : null;
    const scopeId = 'scopeId' in request ? request.scopeId : null;
    const indexKey = indexKeyOf(environmentId, request, hourStart);
    const known = scopeIndex.get(indexKey);
    if (known) return Promise.resolve(known);
    return resolving.run(indexKey, async () => {
      const existing = hourStart !== null ? await hourlyKeyFor(environmentId, hourStart) : await store.findScopedKey(environmentId, request.kind, scopeId);
      let id = existing?.id;
      let born = existing?.createdAt.getTime();
      if (id === undefined) {
        id = await createScopedKey(environmentId, { kind: request.kind, scopeId, hourStart });
        born = clock.now();
      }
      if (hourStart !== null) sawHour(environmentId, existing?.hourStart ?? hourStart);
      if (request.kind === 'log' && born !== undefined && !logKeyBorn.peek(id)) logKeyBorn.set(id, born);
      scopeIndex.set(indexKey, id);
      return id;
    });
  }

  /**
   * The hourly key to use in the hour starting at `hourStart`: never one older than the newest
   * hourly key already stored. A clock that jumped back (or a node whose clock lags another's)
   * keeps using the newest key instead of creating, or going back to, an earlier hour's key, so
   * hourly keys in use never overlap and their hours only move forward.
   */
  async function hourlyKeyFor(environmentId: string, hourStart: number): Promise<KeyRecord | undefined> {
    const latest = await store.latestHourlyKey(environmentId);
    return latest !== undefined && latest.hourStart !== null && latest.hourStart >= hourStart ? latest : undefined;
  }

  /**
   * Create a scoped key under its parent. Job keys hang under the hourly key of the hour the job
   * first ran; the rest under the EK. If the EK was rotated meanwhile (the store refuses children
   * of a retired EK: its repack has counted them), read the active EK again and create it there.
   */
  async function createScopedKey(environmentId: string, template: { kind: KeyKind; scopeId: string | null; hourStart: number | null }): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      const underEk = template.kind !== 'job';
      const parentId = underEk ? await environmentKeyId(environmentId) : await scopedKeyId(environmentId, { kind: 'hourly' });
      try {
        return await createKey(environmentId, template, parentId);
      } catch (error) {
        if (!underEk || attempt >= 3 || !(await parentWasRotated(environmentId, parentId, error))) throw error;
      }
    }
  }

  /**
   * Whether creating a key under `ekId` failed because that EK is no longer the active one (this
   * node remembered a rotated EK: refused by the store, or already disabled or destroyed by the end
   * of its repack). The remembered EK is forgotten either way; true if another EK is active now.
   */
  async function parentWasRotated(environmentId: string, ekId: string, error: unknown): Promise<boolean> {
    const parentGone = error instanceof KeystrataError && (error.code === 'key_destroyed' || error.code === 'key_disabled' || error.code === 'key_not_found');
    if (!(error instanceof StaleParentError) && !parentGone) return false;
    forgetEnvironmentKey(environmentId);
    const active = await store.getActiveEk(environmentId);
    return active !== undefined && active.id !== ekId;
  }

  /**
   * Retire the environment's log key if it is older than the rotation period: it becomes
   * decrypt-only (old log entries still open) and the next log write creates a new one. Several
   * nodes may notice at once; the store's compare-and-set lets one retire it, and the unique active
   * log key lets one new key win.
   */
  async function rotateLogKeyIfDue(environmentId: string, indexKey: string, keyId: string): Promise<void> {
    const born = logKeyBorn.peek(keyId);
    if (deps.logKeyRotationMs === undefined || born === undefined || clock.now() - born < deps.logKeyRotationMs) return;
    const audit = await deps.logKeyRetirementAudit?.(environmentId, keyId);
    await store.setKeyState({ environmentId, keyId, from: ['active'], to: 'decrypt-only' }, audit);
    logKeyBorn.delete(keyId);
    scopeIndex.delete(indexKey);
  }

  /** Run `use` with the key for a scope (created on first use). */
  function withScopedKey<T>(environmentId: string, request: ScopedKeyRequest, use: (key: KeyEntry<KeyMeta>) => T): Promise<T> {
    const indexKey = indexKeyOf(environmentId, request, request.kind === 'hourly' ? hourInUse(environmentId) : null);
    const known = scopeIndex.get(indexKey);
    if (known !== undefined && request.kind === 'log' && deps.logKeyRotationMs !== undefined) {
      const born = logKeyBorn.peek(known);
      if (born !== undefined && clock.now() - born >= deps.logKeyRotationMs) {
        return rotateLogKeyIfDue(environmentId, indexKey, known)
          .then(() => scopedKeyId(environmentId, request))
          .then((keyId) => withKeyById(environmentId, keyId, use));
      }
    }
    if (known !== undefined) return withKeyById(environmentId, known, use);
    return scopedKeyId(environmentId, request).then((keyId) => withKeyById(environmentId, keyId, use));
  }

  return { currentHourStart, withKeyById, withScopedKey, scopedKeyId, environmentKeyId, forgetEnvironmentKey, adoptEnvironmentKey };
}
