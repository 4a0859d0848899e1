/** Builders of store records for the contract suite. The store never interprets wrapped keys or ciphertext. */
import { createHash, randomBytes } from 'node:crypto';
import { newId } from '../../src/core/bytes.js';
import {
  AUDIT_GENESIS_LINK,
  type AuditAppend, type AuditEntryDraft, type AuditEntryRecord, type AuditLinker, type ClientRecord, type ClientTokenRecord, type CmkHealthRecord,
  type CmkRecord, type KeyKind, type KeyRecord, type NewEnvironment, type ObjectRecord, type ObjectVersionRecord, type WorkspaceRecord,
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

/** A customer-managed CMK (active) of the environment; the store keeps its config as opaque JSON. */
export function newCmk(environmentId: string, provider = 'aws-kms', fields: Partial<CmkRecord> = {}): CmkRecord {
  return {
    id: newId(), environmentId, provider, state: 'active', createdAt: new Date(),
    config: { keyArn: `arn:aws:kms:eu-west-1:111122223333:key/${newId()}`, sealed: { secretAccessKey: randomBytes(24).toString('base64url') } },
    ...fields,
  };
}

/** A probe result entering `state` at `at` (since = checkedAt = at, as a probe that sees a new state reports it). */
export function cmkHealth(cmkId: string, state: string, at: Date, fields: Partial<CmkHealthRecord> = {}): CmkHealthRecord {
  return { cmkId, state, since: at, checkedAt: at, currentVersion: null, expiresAt: null, deletionAt: null, detail: null, ...fields };
}

export function key(environmentId: string, kind: KeyKind, fields: Partial<KeyRecord> = {}): KeyRecord {
  return {
    id: newId(), environmentId, kind, scopeId: null, hourStart: null, parentId: newId(),
    wrapped: wrappedKey(), wrappingKeyVersion: null, state: 'active', createdAt: new Date(), destroyAt: null, ...fields,
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

export function newClient(workspaceId: string, name: string, fields: Partial<ClientRecord> = {}): ClientRecord {
  const createdAt = fields.createdAt ?? new Date();
  return {
    id: newId(), workspaceId, name, role: 'app', environments: ['production', 'staging'], allowedCidrs: ['10.0.0.0/8', '2001:db8::/32'],
    tokenTtlSeconds: 86_400, rateLimitPerSecond: null, disabled: false, createdAt, updatedAt: createdAt, ...fields,
  };
}

/** A token row; the hash is random hex as a SHA-256 would be. */
export function clientToken(clientId: string, createdAt = new Date(), expiresAt = new Date(createdAt.getTime() + 86_400_000)): ClientTokenRecord {
  return { id: newId(), clientId, tokenHash: randomBytes(32).toString('hex'), createdAt, expiresAt };
}

export function auditDraft(workspaceId: string, fields: Partial<AuditEntryDraft> = {}): AuditEntryDraft {
  return {
    id: newId(), workspaceId, environmentId: null, at: new Date(), sealing: 'workspace-key', body: randomBytes(48), ...fields,
  };
}

/**
 * A test linker: SHA-256 over the previous link and every field. Unkeyed, so only for tests (the
 * service's linker is a MAC); it still makes every link depend on the whole chain before it.
 */
export const testLinker: AuditLinker = (entry, previousLink) =>
  createHash('sha256')
    .update(previousLink)
    .update(JSON.stringify([entry.workspaceId, entry.seq, entry.id, entry.environmentId, entry.at.getTime(), entry.sealing, entry.body.toString('hex')]))
    .digest();

export function auditAppend(...entries: AuditEntryDraft[]): AuditAppend {
  return { entries, link: testLinker };
}

/**
 * Checks a workspace's chain as a verifier would: seq 1..n without gaps, each link recomputed from
 * the one before. Returns a description of the first fault, or undefined.
 */
export function chainFault(entries: readonly AuditEntryRecord[]): string | undefined {
  let previous = AUDIT_GENESIS_LINK;
  for (const [i, entry] of entries.entries()) {
    if (entry.seq !== i + 1) return `entry ${i} has seq ${entry.seq}`;
    const { link, ...fields } = entry;
    if (!testLinker(fields, previous).equals(link)) return `the link of seq ${entry.seq} does not follow from the previous one`;
    previous = link;
  }
  return undefined;
}
