/** Builders of store records for the contract suite. The store never interprets wrapped keys or ciphertext. */
import { randomBytes } from 'node:crypto';
import { newId } from '../../src/core/bytes.js';
import type {
  KeyKind, KeyRecord, NewEnvironment, ObjectRecord, ObjectVersionRecord, WorkspaceRecord,
} from '../../src/store/store.js';

export function wrappedKey(): Buffer {
  return randomBytes(61);
}

export function newEnvironment(workspaceId: string, name = 'production', createdAt = new Date()): NewEnvironment {
  const environmentId = newId();
  const cmkId = newId();
  return {
    environment: { id: environmentId, workspaceId, name, createdAt },
    cmk: {
      id: cmkId, environmentId, provider: 'platform', state: 'active', createdAt,
      config: { wrapped: randomBytes(40).toString('base64url'), nested: { list: [1, 'two', null], flag: true } },
    },
    ek: key(environmentId, 'ek', { parentId: cmkId, wrappingKeyVersion: 'v1', createdAt }),
  };
}

export function newWorkspace(name = 'Acme', createdAt = new Date()): { workspace: WorkspaceRecord; first: NewEnvironment } {
  const workspace = { id: newId(), name, createdAt };
  return { workspace, first: newEnvironment(workspace.id, 'production', createdAt) };
}

export function key(environmentId: string, kind: KeyKind, fields: Partial<KeyRecord> = {}): KeyRecord {
  return {
    id: newId(), environmentId, kind, scopeId: null, hourStart: null, parentId: newId(),
    wrapped: wrappedKey(), wrappingKeyVersion: null, state: 'active', createdAt: new Date(), ...fields,
  };
}

export function objectVersion(objectId: string, version: number, createdAt = new Date()): ObjectVersionRecord {
  return { objectId, version, dataKeyId: newId(), wrappedDataKey: wrappedKey(), ciphertext: randomBytes(80), createdAt };
}

export function newObject(environmentId: string, name: string, createdAt = new Date()): { object: ObjectRecord; version: ObjectVersionRecord } {
  const object: ObjectRecord = {
    id: newId(), environmentId, name, context: '{"organization_id":"org_1"}', contextKeyId: newId(),
    metadata: { owner: 'team-a', tags: ['x', 'y'], depth: { n: 1 } }, version: 1, createdAt, updatedAt: createdAt,
  };
  return { object, version: objectVersion(object.id, 1, createdAt) };
}
