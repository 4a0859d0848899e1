import type { Static } from '@sinclair/typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KeystrataClient,
  isKeystrataApiError,
  type ApiClient,
  type ApiErrorBody,
  type AuditActor,
  type AuditEntry,
  type AuditVerifyResponse,
  type ClientTokenInfo,
  type ClientUsage,
  type CmkInfo,
  type CmkSummary,
  type PutCmkRequest,
  type RepackInfo,
  type CreateClientRequest,
  type CreateClientResponse,
  type CreateObjectRequest,
  type DecryptResult,
  type EncryptResult,
  type Environment,
  type JwtRequest,
  type JwtResponse,
  type KeyStatus,
  type ObjectVersionList,
  type Page,
  type RotateTokenRequest,
  type RotateTokenResponse,
  type Scope,
  type UpdateClientRequest,
  type UpdateObjectRequest,
  type VaultObject,
  type VaultObjectWithValue,
  type Workspace,
  type WorkspaceSummary,
} from '../../sdk/index.js';
import type * as accessSchemas from '../../src/http/access-schemas.js';
import type * as schemas from '../../src/http/schemas.js';
import { openTestKeystrata, type TestKeystrata } from '../support/test-keystrata.js';

// The SDK declares its own types (it must not depend on the server), so this file holds them to
// the server's schemas (src/http/schemas.ts, docs/api.md): at compile time against the TypeBox
// types, and at run time against answers of the real app on a real socket.

type S<T extends keyof typeof schemas> = (typeof schemas)[T] extends infer U extends import('@sinclair/typebox').TSchema ? Static<U> : never;
/** Likewise for the access-control schemas (src/http/access-schemas.ts). */
type A<T extends keyof typeof accessSchemas> = (typeof accessSchemas)[T] extends infer U extends import('@sinclair/typebox').TSchema
  ? Static<U>
  : never;

/** The SDK's types are readonly throughout; the schemas' static types are not. */
type DeepMutable<T> = T extends readonly (infer U)[]
  ? DeepMutable<U>[]
  : T extends object
    ? { -readonly [K in keyof T]: DeepMutable<T[K]> }
    : T;

type Extends<A, B> = [A] extends [B] ? true : false;
type Identical<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

/**
 * `true` when the SDK type and the server's type are assignable both ways (every required member
 * present, compatible member types) and have the same members; otherwise a message saying which.
 */
type SameShape<Sdk, Server> =
  Extends<DeepMutable<Sdk>, Server> extends false
    ? 'the SDK type is not assignable to the server type (wrong member type, or a member the server requires is missing)'
    : Extends<Server, DeepMutable<Sdk>> extends false
      ? 'the server type is not assignable to the SDK type (wrong member type, or the SDK requires a member the server does not send)'
      : Identical<keyof Sdk, keyof Server> extends false
        ? 'the SDK type and the server type have different members'
        : true;

/** Compile-time only: `npx tsc` fails on the call if T is not `true`. */
function sameShape<T extends true>(): T | undefined {
  return undefined;
}

// Routes reference the shared schemas by $id (Type.Ref), whose static type is unknown; spelled out here.
type ServerWorkspace = Omit<S<'Workspace'>, 'environments'> & { environments: S<'Environment'>[] };
type ServerVersionList = { items: S<'ObjectVersion'>[] };
type ServerPage<T> = { items: T[]; nextCursor: string | null };
type ServerCreateClientResponse = Omit<A<'CreateClientResponse'>, 'client'> & { client: A<'ApiClient'> };

describe('SDK types match the server schemas', () => {
  it('response types', () => {
    sameShape<SameShape<Environment, S<'Environment'>>>();
    sameShape<SameShape<Workspace, ServerWorkspace>>();
    sameShape<SameShape<WorkspaceSummary, S<'WorkspaceSummary'>>>();
    sameShape<SameShape<Page<WorkspaceSummary>, ServerPage<S<'WorkspaceSummary'>>>>();
    sameShape<SameShape<VaultObject, S<'VaultObject'>>>();
    sameShape<SameShape<VaultObjectWithValue, S<'VaultObjectWithValue'>>>();
    sameShape<SameShape<ObjectVersionList, ServerVersionList>>();
    sameShape<SameShape<Omit<CmkInfo, 'health' | 'config'>, Omit<S<'CmkView'>, 'health' | 'config'>>>();
    sameShape<SameShape<NonNullable<CmkInfo['health']>, NonNullable<S<'CmkView'>['health']>>>();
    sameShape<SameShape<RepackInfo, S<'RepackView'>>>();
    sameShape<SameShape<NonNullable<CmkInfo['repack']>, NonNullable<S<'CmkView'>['repack']>>>();
    sameShape<SameShape<CmkSummary, S<'CmkSummary'>>>();
    sameShape<SameShape<PutCmkRequest, Omit<S<'PutCmkBody'>, 'config'> & { config?: Record<string, unknown> }>>();
    sameShape<SameShape<EncryptResult, S<'EncryptResponse'>>>();
    // The SDK decodes the base64 plaintext into bytes; the rest is as sent.
    sameShape<SameShape<Omit<DecryptResult, 'plaintext'> & { plaintext: string }, S<'DecryptResponse'>>>();
    sameShape<SameShape<Scope, S<'Scope'>>>();
    sameShape<SameShape<ApiErrorBody, S<'ErrorBody'>>>();
    sameShape<SameShape<ApiErrorBody['error'], S<'ErrorBody'>['error']>>();
  });

  it('the key status, member by member', () => {
    type Server = S<'KeyStatusResponse'>;
    sameShape<SameShape<KeyStatus, Server>>();
    sameShape<SameShape<KeyStatus['ek'], Server['ek']>>();
    sameShape<SameShape<KeyStatus['hourly'], Server['hourly']>>();
    sameShape<SameShape<NonNullable<KeyStatus['hourly']['latest']>, NonNullable<Server['hourly']['latest']>>>();
    sameShape<SameShape<KeyStatus['counts'], Server['counts']>>();
  });

  it('request types: an update carries exactly value and expectedVersion', () => {
    sameShape<SameShape<UpdateObjectRequest, S<'UpdateObjectBody'>>>();
    sameShape<SameShape<CreateObjectRequest, S<'CreateObjectBody'>>>();
  });

  it('access control: API clients, tokens and JWTs', () => {
    sameShape<SameShape<ApiClient, A<'ApiClient'>>>();
    sameShape<SameShape<ClientUsage, A<'ClientUsage'>>>();
    sameShape<SameShape<ClientTokenInfo, A<'ApiClient'>['tokens'][number]>>();
    sameShape<SameShape<Page<ApiClient>, ServerPage<A<'ApiClient'>>>>();
    sameShape<SameShape<CreateClientResponse, ServerCreateClientResponse>>();
    sameShape<SameShape<RotateTokenResponse, A<'RotateTokenResponse'>>>();
    sameShape<SameShape<JwtResponse, A<'JwtResponse'>>>();
    sameShape<SameShape<CreateClientRequest, A<'CreateClientBody'>>>();
    sameShape<SameShape<UpdateClientRequest, A<'UpdateClientBody'>>>();
    sameShape<SameShape<RotateTokenRequest, A<'RotateTokenBody'>>>();
    sameShape<SameShape<JwtRequest, A<'JwtRequestBody'>>>();
  });

  it('access control: the audit log', () => {
    sameShape<SameShape<AuditEntry, A<'AuditEntry'>>>();
    sameShape<SameShape<AuditActor, A<'AuditActor'>>>();
    sameShape<SameShape<Page<AuditEntry>, ServerPage<A<'AuditEntry'>>>>();
    sameShape<SameShape<AuditVerifyResponse, A<'AuditVerifyResponse'>>>();
    sameShape<SameShape<AuditVerifyResponse['head'], A<'AuditVerifyResponse'>['head']>>();
  });

  it('the audit target is a map of strings (the schema says so in additionalProperties, which its static type drops)', async () => {
    // Only the schema object is read here; the routes are exercised by the server's own tests.
    const { AuditEntry: schema } = await import('../../src/http/access-schemas.js');
    expect(schema.properties.target.additionalProperties).toMatchObject({ type: 'string' });
    type SdkTarget = NonNullable<AuditEntry['target']>;
    sameShape<Identical<SdkTarget[string], string>>();
  });
});

/** The member names of T, listed so that the compiler rejects a missing or an extra one. */
function membersOf<T>(members: Record<keyof T, true>): string[] {
  return Object.keys(members).sort();
}

const sorted = (value: object): string[] => Object.keys(value).sort();

describe('SDK against the real server', () => {
  let t: TestKeystrata;
  let client: KeystrataClient;

  beforeAll(async () => {
    t = await openTestKeystrata();
    const url = await t.app.listen({ host: '127.0.0.1', port: 0 });
    client = new KeystrataClient({ baseUrl: url, token: t.token });
  });
  afterAll(async () => {
    await t.destroy();
  });

  it('reads the key status with every member the SDK declares, and no other', async () => {
    const ws = await client.createWorkspace({ name: 'acme' });
    expect(sorted(ws)).toEqual(membersOf<Workspace>({ id: true, name: true, createdAt: true, environments: true }));
    await client.encrypt(ws.id, 'production', { scope: { type: 'event', id: 'evt_1' }, plaintext: 'x' });

    const status = await client.keyStatus(ws.id, 'production');
    expect(sorted(status)).toEqual(
      membersOf<KeyStatus>({ environment: true, cmk: true, ek: true, hourly: true, counts: true }),
    );
    expect(sorted(status.ek)).toEqual(membersOf<KeyStatus['ek']>({ id: true, state: true, createdAt: true, wrappingKeyVersion: true }));
    expect(sorted(status.hourly)).toEqual(membersOf<KeyStatus['hourly']>({ periodSeconds: true, current: true, latest: true }));
    expect(sorted(status.counts)).toEqual(
      membersOf<KeyStatus['counts']>({ ek: true, hourly: true, job: true, connection: true, log: true, context: true }),
    );
    // The event was sealed under the current hourly key, which is therefore also the latest.
    expect(status.hourly.current).not.toBeNull();
    expect(status.hourly.latest).toEqual(status.hourly.current);
    expect(status.ek.wrappingKeyVersion === null || typeof status.ek.wrappingKeyVersion === 'string').toBe(true);

    const cmk = await client.getCmk(ws.id, 'production');
    expect(sorted(cmk)).toEqual(
      membersOf<CmkInfo>({ id: true, provider: true, state: true, createdAt: true, config: true, secretFields: true, keyVersion: true, health: true, repack: true }),
    );
    expect({ id: cmk.id, provider: cmk.provider, state: cmk.state, createdAt: cmk.createdAt }).toEqual(status.cmk);
    expect(cmk).toMatchObject({ config: {}, secretFields: [], keyVersion: status.ek.wrappingKeyVersion, health: null, repack: null });
  });

  it('rotates the environment key: the repack has every member the SDK declares, and no other', async () => {
    const ws = await client.createWorkspace({ name: 'rotation' });
    await client.encrypt(ws.id, 'production', { scope: { type: 'connection', id: 'conn_1' }, plaintext: 'x' });
    const before = await client.getCmk(ws.id, 'production');
    const rotated = await client.putCmk(ws.id, 'production', { provider: 'platform', rotateEnvironmentKey: true });
    const repack = rotated.repack;
    expect(repack).not.toBeNull();
    expect(sorted(repack!)).toEqual(
      membersOf<RepackInfo>({
        id: true,
        state: true,
        done: true,
        total: true,
        ratePerSecond: true,
        etaSeconds: true,
        startedAt: true,
        updatedAt: true,
        finishedAt: true,
        pausedReason: true,
        fromCmkId: true,
        toCmkId: true,
        fromEkId: true,
        toEkId: true,
      }),
    );
    expect(repack).toMatchObject({ fromCmkId: before.id, toCmkId: rotated.id });
    expect(Number.isNaN(Date.parse(repack!.startedAt))).toBe(false);
    // The same repack is read back through GET …/cmk.
    expect((await client.getCmk(ws.id, 'production')).repack?.id).toBe(repack!.id);
  });

  it('updates an object (value only; metadata stays as created) and reports conflicts with details', async () => {
    const ws = await client.createWorkspace({ name: 'objects' });
    const created = await client.createObject(ws.id, 'production', {
      name: 'db',
      value: 'v1',
      context: { organization_id: 'org_1' },
      metadata: { owner: 'payments' },
    });
    expect(sorted(created)).toEqual(
      membersOf<VaultObject>({ id: true, name: true, version: true, context: true, metadata: true, createdAt: true, updatedAt: true }),
    );
    const updated = await client.updateObject(ws.id, 'production', created.id, { value: 'v2', expectedVersion: 1 });
    expect(updated).toMatchObject({ version: 2, metadata: { owner: 'payments' } });
    expect((await client.getObject(ws.id, 'production', created.id)).value).toBe('v2');
    expect((await client.getObjectVersion(ws.id, 'production', created.id, 1)).value).toBe('v1');
    expect((await client.listObjectVersions(ws.id, 'production', created.id)).items.map((v) => v.version)).toEqual([2, 1]);

    const conflict: unknown = await client.updateObject(ws.id, 'production', created.id, { value: 'v3', expectedVersion: 1 }).catch((e: unknown) => e);
    expect(isKeystrataApiError(conflict)).toBe(true);
    expect(conflict).toMatchObject({ status: 409, code: 'version_conflict', details: { currentVersion: 2 } });
  });

  it('passes on the field at fault of an invalid request', async () => {
    const ws = await client.createWorkspace({ name: 'fields' });
    const err: unknown = await client.createEnvironment(ws.id, { name: 'Not Valid' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400, code: 'invalid_request', field: 'name' });
    expect(typeof (err as { requestId?: unknown }).requestId).toBe('string');
  });
});
