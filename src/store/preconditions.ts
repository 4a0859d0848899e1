/**
 * Checks on what callers hand the store. A record that contradicts itself (an EK filed under
 * another environment, a version row for another object) would be stored without complaint by the
 * database and surface much later as an undecryptable key, so both stores refuse it up front.
 */
import type { KeyRecord, NewEnvironment, ObjectRecord, ObjectVersionRecord, WorkspaceRecord } from './store.js';
import { SCOPED_KINDS } from './rows.js';

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
  needs(ek.parentId === cmk.id, 'ek.parentId must be the cmk id');
}

export function checkKey(key: KeyRecord): void {
  /* Precondition: keys with a uniqueness identity carry it (NULLs would never collide in an index). */
  if (key.kind === 'hourly') needs(key.hourStart !== null, 'an hourly key needs hourStart');
  if (SCOPED_KINDS.includes(key.kind)) needs(key.scopeId !== null, `a ${key.kind} key needs scopeId`);
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
