/**
 * Checks on what callers hand the store. A record that contradicts itself (an EK filed under
 * another environment, a version row for another object) would be stored without complaint by the
 * database and surface much later as an undecryptable key, so both stores refuse it up front.
 */
import type {
  AuditAppend, ClientPatch, ClientRecord, ClientTokenRecord, ClientUsageDelta, CmkHealthRecord, CmkReplacement, EkRewrap, EkRotation, KeyRecord,
  KeyStateChange, NewEnvironment, ObjectRecord, ObjectVersionRecord, RepackBatch, RepackRecord, WorkspaceRecord,
} from './store.js';
import { AUDIT_SEALINGS, CLIENT_ROLES, SCOPED_KINDS, isKeyState } from './rows.js';

function needs(condition: boolean, message: string): asserts condition {
  if (!condition) throw new TypeError(`store precondition: ${message}`);
}

export function checkLimit(limit: number): void {
  /* Precondition: a page holds at least one item. */
  needs(Number.isSafeInteger(limit) && limit >= 1, 'limit must be a positive integer');
}

export function checkNewEnvironment(env: NewEnvironment, workspace?: WorkspaceRecord): void {
  const { environment, cmk, ek } = env;
  /* Precondition: the first environment belongs to the workspace created with it. */
  if (workspace) needs(environment.workspaceId === workspace.id, 'environment.workspaceId must be the new workspace id');
  /* Precondition: the CMK and EK belong to the new environment, and the EK is wrapped by that CMK. */
  needs(cmk.environmentId === environment.id, 'cmk.environmentId must be the environment id');
  needs(ek.environmentId === environment.id, 'ek.environmentId must be the environment id');
  needs(ek.kind === 'ek' && ek.state === 'active', 'ek must be an active key of kind "ek"');
  needs(ek.destroyAt === undefined || ek.destroyAt === null, 'an active ek has no destroyAt');
  needs(ek.parentId === cmk.id, 'ek.parentId must be the cmk id');
}

export function checkKey(key: KeyRecord): void {
  /* Precondition: keys with a uniqueness identity carry it (NULLs would never collide in an index). */
  if (key.kind === 'hourly') needs(key.hourStart !== null, 'an hourly key needs hourStart');
  if (SCOPED_KINDS.includes(key.kind)) needs(key.scopeId !== null, `a ${key.kind} key needs scopeId`);
  /* Precondition: destroyAt is set exactly when the key is scheduled for destruction (the due list reads it). */
  if (key.state === 'scheduled-destruction') needs(isDate(key.destroyAt), 'a key in scheduled-destruction needs destroyAt as a valid Date');
  else needs(key.destroyAt === undefined || key.destroyAt === null, `a key in state ${key.state} has no destroyAt`);
}

export function checkKeyStateChange(change: KeyStateChange): void {
  /* Precondition: the change names one key. */
  needs(typeof change.environmentId === 'string' && change.environmentId !== '', 'environmentId must be a non-empty string');
  needs(typeof change.keyId === 'string' && change.keyId !== '', 'keyId must be a non-empty string');
  /* Precondition: the compare-and-set compares against at least one known state (an empty list would never apply). */
  needs(Array.isArray(change.from) && change.from.length > 0 && change.from.every(isKeyState), 'from must be a non-empty array of key states');
  needs(isKeyState(change.to), 'to must be a key state');
  /* Precondition: a scheduled destruction says when; any other state clears destroyAt, whatever the change carries. */
  if (change.to === 'scheduled-destruction') needs(isDate(change.destroyAt), 'destroyAt must be a valid Date with to = "scheduled-destruction"');
}

/** The most keys one listDueDestructions call returns. */
export const MAX_DUE_PAGE = 1000;

export function checkDueListing(now: Date, limit: number): void {
  /* Precondition: a page holds 1..1000 keys due at a valid time. */
  needs(isDate(now), 'now must be a valid Date');
  needs(Number.isSafeInteger(limit) && limit >= 1 && limit <= MAX_DUE_PAGE, `limit must be an integer from 1 to ${MAX_DUE_PAGE}`);
}

export function checkNewObject(object: ObjectRecord, first: ObjectVersionRecord): void {
  /* Precondition: the first version row is this object's current version. */
  needs(first.objectId === object.id, 'firstVersion.objectId must be the object id');
  needs(first.version === object.version, 'firstVersion.version must be object.version');
}

export function checkNextVersion(objectId: string, expectedVersion: number, version: ObjectVersionRecord): void {
  /* Precondition: the new version row is the one that follows the expected version of this object. */
  needs(version.objectId === objectId, 'version.objectId must be the object id');
  needs(version.version === expectedVersion + 1, 'version.version must be expectedVersion + 1');
}

/** The most audit entries one listAuditEntries call returns. */
export const MAX_AUDIT_PAGE = 1000;

function isDate(value: unknown): value is Date {
  return value instanceof Date && !Number.isNaN(value.getTime());
}

function isStrings(value: unknown): boolean {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

function isPositiveInteger(value: unknown): boolean {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
}

function isCount(value: unknown): boolean {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * `workspaceId`: the workspace the accompanying change is in, when the store knows it; entries
 * about another workspace would be chained there, out of sight of whoever audits this one.
 */
export function checkAudit(append: AuditAppend, workspaceId?: string): void {
  /* Precondition: an append carries entries and a linker (an empty append would be a silent no-op). */
  needs(typeof append.link === 'function', 'audit.link must be a function');
  needs(Array.isArray(append.entries) && append.entries.length > 0, 'audit.entries must be a non-empty array');
  for (const entry of append.entries) {
    /* Precondition: every entry is complete; the body is sealed bytes, never an object to serialise. */
    needs(typeof entry.id === 'string' && entry.id !== '', 'audit entry id must be a non-empty string');
    needs(typeof entry.workspaceId === 'string' && entry.workspaceId !== '', 'audit entry workspaceId must be a non-empty string');
    needs(entry.environmentId === null || typeof entry.environmentId === 'string', 'audit entry environmentId must be a string or null');
    needs(isDate(entry.at), 'audit entry at must be a valid Date');
    needs((AUDIT_SEALINGS as readonly string[]).includes(entry.sealing), 'audit entry sealing must be "log-key" or "workspace-key"');
    needs(Buffer.isBuffer(entry.body), 'audit entry body must be a Buffer');
  }
  if (workspaceId !== undefined) checkAuditWorkspace(append, workspaceId);
}

export function checkAuditWorkspace(append: AuditAppend, workspaceId: string): void {
  /* Precondition: audit passed with a change is about that change's workspace. */
  needs(append.entries.every((e) => e.workspaceId === workspaceId), 'audit entries must belong to the workspace being changed');
}

export function checkAuditPage(afterSeq: number, limit: number): void {
  /* Precondition: a page starts after a seq (0: from the first entry) and holds 1..1000 entries. */
  needs(isCount(afterSeq), 'afterSeq must be a non-negative integer');
  needs(Number.isSafeInteger(limit) && limit >= 1 && limit <= MAX_AUDIT_PAGE, `limit must be an integer from 1 to ${MAX_AUDIT_PAGE}`);
}

function checkClientFields(fields: ClientPatch): void {
  /* Precondition: client fields have the types their columns hold (the role is one the authoriser knows). */
  if (fields.name !== undefined) needs(typeof fields.name === 'string' && fields.name !== '', 'client name must be a non-empty string');
  if (fields.role !== undefined) needs(CLIENT_ROLES.includes(fields.role), 'client role must be admin, operator, app or auditor');
  if (fields.environments !== undefined) needs(isStrings(fields.environments), 'client environments must be an array of strings');
  if (fields.allowedCidrs !== undefined) needs(isStrings(fields.allowedCidrs), 'client allowedCidrs must be an array of strings');
  if (fields.tokenTtlSeconds !== undefined) needs(isPositiveInteger(fields.tokenTtlSeconds), 'client tokenTtlSeconds must be a positive integer');
  if (fields.rateLimitPerSecond !== undefined && fields.rateLimitPerSecond !== null) {
    needs(isPositiveInteger(fields.rateLimitPerSecond), 'client rateLimitPerSecond must be a positive integer or null');
  }
  if (fields.disabled !== undefined) needs(typeof fields.disabled === 'boolean', 'client disabled must be a boolean');
}

export function checkNewClient(client: ClientRecord, firstToken: ClientTokenRecord): void {
  checkClientFields(client);
  needs(client.name !== undefined && client.role !== undefined && client.disabled !== undefined, 'client name, role and disabled are required');
  needs(client.environments !== undefined && client.allowedCidrs !== undefined, 'client environments and allowedCidrs are required');
  needs(client.tokenTtlSeconds !== undefined && client.rateLimitPerSecond !== undefined, 'client tokenTtlSeconds and rateLimitPerSecond are required');
  needs(isDate(client.createdAt) && isDate(client.updatedAt), 'client createdAt and updatedAt must be valid Dates');
  checkClientToken(client.id, firstToken);
}

export function checkClientPatch(patch: ClientPatch, updatedAt: Date): void {
  checkClientFields(patch);
  needs(isDate(updatedAt), 'updatedAt must be a valid Date');
}

export function checkClientToken(clientId: string, token: ClientTokenRecord): void {
  /* Precondition: the token row is this client's, and carries the times rotation compares. */
  needs(token.clientId === clientId, 'token.clientId must be the client id');
  needs(typeof token.tokenHash === 'string' && token.tokenHash !== '', 'token.tokenHash must be a non-empty string');
  needs(isDate(token.createdAt) && isDate(token.expiresAt), 'token createdAt and expiresAt must be valid Dates');
}

export function checkRotationTimes(othersExpireBy: Date, now: Date): void {
  needs(isDate(othersExpireBy) && isDate(now), 'othersExpireBy and now must be valid Dates');
}

export function checkUsageDeltas(deltas: readonly ClientUsageDelta[]): void {
  for (const d of deltas) {
    /* Precondition: usage only grows; a negative or fractional delta would corrupt the counters. */
    needs(typeof d.clientId === 'string', 'usage clientId must be a string');
    needs(isCount(d.requests) && isCount(d.failures), 'usage requests and failures must be non-negative integers');
    needs(isDate(d.lastUsedAt), 'usage lastUsedAt must be a valid Date');
    needs(typeof d.lastUsedIp === 'string', 'usage lastUsedIp must be a string');
  }
}

/** The most CMKs one listActiveCmks call returns. */
export const MAX_CMK_PAGE = 1000;

function isNewWrapping(wrapped: unknown, wrappingKeyVersion: unknown): boolean {
  return Buffer.isBuffer(wrapped) && wrapped.length > 0 && typeof wrappingKeyVersion === 'string';
}

export function checkCmkReplacement(change: CmkReplacement): void {
  const { cmk } = change;
  /* Precondition: the new CMK is a different, active CMK of the environment being moved. */
  needs(cmk.environmentId === change.environmentId, 'cmk.environmentId must be the environment id');
  needs(cmk.state === 'active', 'the new cmk must be active');
  needs(cmk.id !== change.fromCmkId, 'the new cmk must not be fromCmkId');
  needs(isDate(cmk.createdAt), 'cmk createdAt must be a valid Date');
  /* Precondition: the EK's new wrapping is bytes, with the CMK version that made them. */
  needs(isNewWrapping(change.wrapped, change.wrappingKeyVersion), 'wrapped must be a non-empty Buffer and wrappingKeyVersion a string');
}

export function checkEkRewrap(change: EkRewrap): void {
  /* Precondition: the compare-and-set compares bytes, and the new wrapping names the CMK version that made it. */
  needs(Buffer.isBuffer(change.expectedWrapped), 'expectedWrapped must be a Buffer');
  needs(isNewWrapping(change.wrapped, change.wrappingKeyVersion), 'wrapped must be a non-empty Buffer and wrappingKeyVersion a string');
}

export function checkCmkListing(excludeProviders: readonly string[], limit: number, afterId: string | undefined): void {
  /* Precondition: a page holds 1..1000 CMKs and starts after an id, if any. */
  needs(isStrings(excludeProviders), 'excludeProviders must be an array of strings');
  needs(Number.isSafeInteger(limit) && limit >= 1 && limit <= MAX_CMK_PAGE, `limit must be an integer from 1 to ${MAX_CMK_PAGE}`);
  needs(afterId === undefined || typeof afterId === 'string', 'afterId must be a string when given');
}

export function checkCmkHealth(record: CmkHealthRecord): void {
  /* Precondition: a probe result names its CMK and state and carries valid times (null: not known). */
  needs(typeof record.cmkId === 'string' && record.cmkId !== '', 'health cmkId must be a non-empty string');
  needs(typeof record.state === 'string' && record.state !== '', 'health state must be a non-empty string');
  needs(isDate(record.since) && isDate(record.checkedAt), 'health since and checkedAt must be valid Dates');
  needs(record.expiresAt === null || isDate(record.expiresAt), 'health expiresAt must be a valid Date or null');
  needs(record.deletionAt === null || isDate(record.deletionAt), 'health deletionAt must be a valid Date or null');
  needs(record.currentVersion === null || typeof record.currentVersion === 'string', 'health currentVersion must be a string or null');
  needs(record.detail === null || typeof record.detail === 'string', 'health detail must be a string or null');
}

function isId(value: unknown): value is string {
  return typeof value === 'string' && value !== '';
}

export function checkEkRotation(change: EkRotation): void {
  const { cmk, ek } = change;
  /* Precondition: the rotation names the environment, the CMK and EK it moves from, and the repack it starts. */
  needs(isId(change.environmentId) && isId(change.fromCmkId) && isId(change.fromEkId), 'environmentId, fromCmkId and fromEkId must be non-empty strings');
  needs(isId(change.repackId), 'repackId must be a non-empty string');
  needs(isDate(change.startedAt), 'startedAt must be a valid Date');
  /* Precondition: the new CMK is a different, active CMK of the environment. */
  needs(cmk.environmentId === change.environmentId, 'cmk.environmentId must be the environment id');
  needs(cmk.state === 'active', 'the new cmk must be active');
  needs(cmk.id !== change.fromCmkId, 'the new cmk must not be fromCmkId');
  needs(isDate(cmk.createdAt), 'cmk createdAt must be a valid Date');
  /* Precondition: the new EK is a different, active key of kind "ek" of the environment, wrapped by the new CMK. */
  needs(ek.environmentId === change.environmentId, 'ek.environmentId must be the environment id');
  needs(ek.kind === 'ek' && ek.state === 'active', 'ek must be an active key of kind "ek"');
  needs(ek.destroyAt === undefined || ek.destroyAt === null, 'an active ek has no destroyAt');
  needs(ek.id !== change.fromEkId, 'the new ek must not be fromEkId');
  needs(ek.parentId === cmk.id, 'ek.parentId must be the new cmk id');
  needs(isNewWrapping(ek.wrapped, ek.wrappingKeyVersion), 'ek.wrapped must be a non-empty Buffer and ek.wrappingKeyVersion a string');
  needs(isDate(ek.createdAt), 'ek createdAt must be a valid Date');
}

/** The most keys one listKeysUnder call returns, and one applyRepackBatch call moves. */
export const MAX_REPACK_BATCH = 10_000;

export function checkKeysUnderListing(environmentId: string, parentId: string, limit: number): void {
  /* Precondition: a page of 1..10000 keys under one parent of one environment. */
  needs(isId(environmentId) && isId(parentId), 'environmentId and parentId must be non-empty strings');
  needs(Number.isSafeInteger(limit) && limit >= 1 && limit <= MAX_REPACK_BATCH, `limit must be an integer from 1 to ${MAX_REPACK_BATCH}`);
}

/** The most repacks one listUnfinishedRepacks call returns. */
export const MAX_REPACK_PAGE = 1000;

export function checkRepackListing(limit: number): void {
  /* Precondition: a page holds 1..1000 repacks. */
  needs(Number.isSafeInteger(limit) && limit >= 1 && limit <= MAX_REPACK_PAGE, `limit must be an integer from 1 to ${MAX_REPACK_PAGE}`);
}

export function checkRepackBatch(batch: RepackBatch): void {
  /* Precondition: the batch names its repack, the EK keys leave and the EK they join (a different one). */
  needs(isId(batch.repackId) && isId(batch.environmentId), 'repackId and environmentId must be non-empty strings');
  needs(isId(batch.fromEkId) && isId(batch.toEkId) && batch.fromEkId !== batch.toEkId, 'fromEkId and toEkId must be two different non-empty strings');
  needs(isId(batch.runner), 'runner must be a non-empty string');
  needs(isDate(batch.at), 'at must be a valid Date');
  needs(Array.isArray(batch.keys) && batch.keys.length <= MAX_REPACK_BATCH, `keys must be an array of at most ${MAX_REPACK_BATCH}`);
  const ids = new Set<string>();
  for (const k of batch.keys) {
    /* Precondition: each key at most once (one statement cannot move a row twice), compared and replaced by bytes. */
    needs(isId(k.id), 'a repacked key id must be a non-empty string');
    needs(!ids.has(k.id), `key ${k.id} appears twice in the batch`);
    ids.add(k.id);
    needs(Buffer.isBuffer(k.expectedWrapped) && Buffer.isBuffer(k.wrapped), 'expectedWrapped and wrapped must be Buffers');
    /* Precondition: zero bytes only for a key already destroyed: a batch must never erase (or revive) key material. */
    needs((k.wrapped.length === 0) === (k.expectedWrapped.length === 0), `key ${k.id}: wrapped is empty exactly when expectedWrapped is (a destroyed key)`);
  }
}

export function checkBatchOfRepack(batch: RepackBatch, stored: RepackRecord): void {
  /* Precondition: the batch names the EKs of the repack it is applied to (a mix-up would move keys under the wrong EK). */
  needs(
    stored.environmentId === batch.environmentId && stored.fromEkId === batch.fromEkId && stored.toEkId === batch.toEkId,
    `the batch's environmentId, fromEkId and toEkId must be those of repack ${batch.repackId}`,
  );
}

export function checkRepackPause(repackId: string, reason: string | null, runner: string, at: Date): void {
  /* Precondition: a pause says why (operator-facing text); a resume passes null. */
  needs(isId(repackId), 'repackId must be a non-empty string');
  needs(reason === null || (typeof reason === 'string' && reason !== ''), 'reason must be a non-empty string or null');
  needs(isId(runner), 'runner must be a non-empty string');
  needs(isDate(at), 'at must be a valid Date');
}

export function checkRepackFinish(repackId: string, at: Date): void {
  needs(isId(repackId), 'repackId must be a non-empty string');
  needs(isDate(at), 'at must be a valid Date');
}
