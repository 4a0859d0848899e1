import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntryView } from '../../src/service/audit/audit-log.js';
import type { AuditAppend } from '../../src/store/store.js';
import { withRawAudit } from '../support/audit-tamper.js';
import { createWorkspace, envUrl, expectError, ok, type Body, type InjectResult, type Method } from '../support/http-helpers.js';
import { dumpTables, encodingsOf } from '../support/store-dump.js';
import { TEST_ADMIN_TOKEN, openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

/**
 * The audit log as seen from the API: every admin action and every data access leaves exactly one
 * entry — who (actor), what (action, target ids), from where (sourceIp), which request (requestId =
 * x-request-id), and the outcome — in the right workspace's chain; never plaintext, values,
 * ciphertexts or tokens. Changes are recorded in their own transaction (a failed change leaves only
 * its failure entry), everything else before the response leaves; if the entry cannot be written
 * the response is a 503 that carries nothing the request produced.
 */

const ADMIN_ACTOR = { type: 'admin', id: null, name: null, role: null };

interface ClientInfo {
  readonly id: string;
  readonly name: string;
  readonly role: string;
  readonly token: string;
}

const actorOf = (c: ClientInfo) => ({ type: 'client', id: c.id, name: c.name, role: c.role });

for (const store of testStores()) {
  describe(`audit log over HTTP (${store})`, () => {
    let t: TestKeystrata;
    /** Workspace A: where the clients below live. B: another tenant. */
    let wsA: string;
    let wsB: string;
    let prodA: string;
    let stagingA: string;
    let admin: ClientInfo;
    let app: ClientInfo;
    let auditor: ClientInfo;
    let appB: ClientInfo;

    async function send(method: Method, url: string, options: { token?: string; ip?: string; payload?: unknown } = {}): Promise<InjectResult> {
      const response = await t.app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${options.token ?? TEST_ADMIN_TOKEN}` },
        remoteAddress: options.ip ?? '127.0.0.1',
        ...(options.payload === undefined ? {} : { payload: options.payload as Record<string, unknown> }),
      });
      return response as unknown as InjectResult;
    }

    async function sendOk(method: Method, url: string, options: { token?: string; ip?: string; payload?: unknown } = {}, status = 200): Promise<InjectResult> {
      const response = await send(method, url, options);
      expect(response.statusCode, `${method} ${url}: ${response.body}`).toBe(status);
      return response;
    }

    async function createClient(ws: string, body: Record<string, unknown>): Promise<ClientInfo> {
      const created = await ok(t, 'POST', `/v1/workspaces/${ws}/clients`, body, 201);
      return { id: created.client.id, name: created.client.name, role: created.client.role, token: created.token };
    }

    const headSeq = async (ws: string): Promise<number> => (await t.ks.store.getAuditHead(ws))?.seq ?? 0;

    /** Decrypted entries after `afterSeq`, read through the service (reading over HTTP would add entries). */
    async function entriesAfter(ws: string, afterSeq: number): Promise<AuditEntryView[]> {
      const all: AuditEntryView[] = [];
      for (let after = afterSeq; ; ) {
        const page = await t.ks.audit.list(ws, { afterSeq: after, limit: 1000 });
        all.push(...page.items);
        if (page.nextCursor === null) return all;
        after = Number(page.nextCursor);
      }
    }

    /** Runs `act` and returns its response with the ONE entry it added to `ws` (failing on none or several). */
    async function recorded(ws: string, act: () => Promise<InjectResult>): Promise<{ response: InjectResult; entry: AuditEntryView }> {
      const before = await headSeq(ws);
      const response = await act();
      const added = await entriesAfter(ws, before);
      expect(added.map((e) => `${e.action} ${e.outcome}`), `entries added by one request (${response.statusCode} ${response.body.slice(0, 200)})`).toHaveLength(1);
      expect(added[0]!.seq).toBe(before + 1);
      return { response, entry: added[0]! };
    }

    interface Expected {
      readonly actor: unknown;
      readonly action: string;
      readonly target: Record<string, string>;
      readonly ip?: string;
      /** The clear environment column: the environment the entry is about, or null. */
      readonly environmentId: string | null;
    }

    /** A success entry: everything about it, and the request id of its response. */
    function expectSuccess(entry: AuditEntryView, response: InjectResult, expected: Expected): void {
      expect(entry).toEqual({
        seq: expect.any(Number),
        id: expect.any(String),
        at: expect.any(Date),
        environmentId: expected.environmentId,
        link: expect.stringMatching(/^[0-9a-f]{64}$/),
        actor: expected.actor,
        action: expected.action,
        target: expected.target,
        sourceIp: expected.ip ?? '127.0.0.1',
        requestId: response.headers['x-request-id'],
        outcome: 'success',
      });
      expect(response.statusCode).toBeLessThan(400);
    }

    /** A failure entry: status and errorCode are the response's. */
    function expectFailure(entry: AuditEntryView, response: InjectResult, expected: Expected & { readonly status: number; readonly errorCode: string }): void {
      const error = expectError(response, expected.status, expected.errorCode);
      expect(entry).toEqual({
        seq: expect.any(Number),
        id: expect.any(String),
        at: expect.any(Date),
        environmentId: expected.environmentId,
        link: expect.stringMatching(/^[0-9a-f]{64}$/),
        actor: expected.actor,
        action: expected.action,
        target: expected.target,
        sourceIp: expected.ip ?? '127.0.0.1',
        requestId: error.requestId,
        outcome: 'failure',
        status: expected.status,
        errorCode: expected.errorCode,
      });
    }

    beforeAll(async () => {
      t = await openTestKeystrata({ store });
      const a = await createWorkspace(t, 'audit-a');
      wsA = a.id;
      prodA = a.environments[0]!.id;
      wsB = (await createWorkspace(t, 'audit-b')).id;
      stagingA = (await ok(t, 'POST', `/v1/workspaces/${wsA}/environments`, { name: 'staging' }, 201)).id;
      admin = await createClient(wsA, { name: 'ops-admin', role: 'admin' });
      app = await createClient(wsA, { name: 'billing-app', role: 'app', environments: ['production'] });
      auditor = await createClient(wsA, { name: 'siem', role: 'auditor' });
      appB = await createClient(wsB, { name: 'other-tenant-app', role: 'app' });
    });
    afterAll(async () => {
      await t?.destroy();
    });

    describe('admin actions', () => {
      it('workspace.create: the first entry of the new workspace, by the admin token, from its address', async () => {
        const response = await sendOk('POST', '/v1/workspaces', { ip: '198.51.100.20', payload: { name: 'created-here' } }, 201);
        const created = response.json();
        const entries = await entriesAfter(created.id, 0);
        expect(entries).toHaveLength(1);
        expect(entries[0]!.seq).toBe(1);
        expectSuccess(entries[0]!, response, {
          actor: ADMIN_ACTOR,
          action: 'workspace.create',
          target: { workspaceName: 'created-here', environment: 'production', environmentId: created.environments[0].id },
          ip: '198.51.100.20',
          environmentId: null,
        });
      });

      it('environment.create and workspace.read: one entry each', async () => {
        const ws = (await createWorkspace(t, 'env-host')).id;
        const create = await recorded(ws, () => sendOk('POST', `/v1/workspaces/${ws}/environments`, { payload: { name: 'qa' } }, 201));
        const env = create.response.json();
        expectSuccess(create.entry, create.response, { actor: ADMIN_ACTOR, action: 'environment.create', target: { environment: 'qa', environmentId: env.id }, environmentId: env.id });
        const read = await recorded(ws, () => sendOk('GET', `/v1/workspaces/${ws}`));
        expectSuccess(read.entry, read.response, { actor: ADMIN_ACTOR, action: 'workspace.read', target: {}, environmentId: null });
        // A duplicate environment is a failure entry, and nothing else.
        const dup = await recorded(ws, () => send('POST', `/v1/workspaces/${ws}/environments`, { payload: { name: 'qa' } }));
        expectFailure(dup.entry, dup.response, { actor: ADMIN_ACTOR, action: 'environment.create', target: {}, status: 409, errorCode: 'already_exists', environmentId: null });
      });

      it('platform-wide calls with no workspace (list workspaces; an unknown workspace) leave no entry anywhere', async () => {
        const before = [await headSeq(wsA), await headSeq(wsB)];
        await sendOk('GET', '/v1/workspaces');
        const unknown = randomUUID();
        expectError(await send('GET', `/v1/workspaces/${unknown}`), 404, 'workspace_not_found');
        expectError(await send('POST', `${envUrl(unknown)}/encrypt`, { payload: { scope: { type: 'job', id: 'j' }, plaintext: '' } }), 404, 'workspace_not_found');
        expect([await headSeq(wsA), await headSeq(wsB)]).toEqual(before);
        expect(await entriesAfter(unknown, 0)).toEqual([]);
      });

      it('client.create / list / read / update / token.rotate / delete by an admin client: actor, targets, never the token', async () => {
        const ip = '192.0.2.44';
        const create = await recorded(wsA, () => sendOk('POST', `/v1/workspaces/${wsA}/clients`, { token: admin.token, ip, payload: { name: 'short-lived', role: 'app' } }, 201));
        const created = create.response.json();
        expectSuccess(create.entry, create.response, {
          actor: actorOf(admin),
          action: 'client.create',
          target: { clientId: created.client.id, clientName: 'short-lived', role: 'app', tokenId: created.tokenId },
          ip,
          environmentId: null,
        });
        const id = created.client.id as string;
        const base = `/v1/workspaces/${wsA}/clients`;

        const list = await recorded(wsA, () => sendOk('GET', base, { token: admin.token, ip }));
        expectSuccess(list.entry, list.response, { actor: actorOf(admin), action: 'client.list', target: {}, ip, environmentId: null });
        const read = await recorded(wsA, () => sendOk('GET', `${base}/${id}`, { token: admin.token, ip }));
        expectSuccess(read.entry, read.response, { actor: actorOf(admin), action: 'client.read', target: { id }, ip, environmentId: null });
        const update = await recorded(wsA, () => sendOk('PATCH', `${base}/${id}`, { token: admin.token, ip, payload: { name: 'renamed', disabled: true } }));
        expectSuccess(update.entry, update.response, { actor: actorOf(admin), action: 'client.update', target: { clientId: id, changed: 'disabled,name' }, ip, environmentId: null });
        const rotate = await recorded(wsA, () => sendOk('POST', `${base}/${id}/tokens`, { token: admin.token, ip, payload: { graceSeconds: 0 } }, 201));
        expectSuccess(rotate.entry, rotate.response, {
          actor: actorOf(admin),
          action: 'client.token.rotate',
          target: { clientId: id, clientName: 'renamed', tokenId: rotate.response.json().tokenId },
          ip,
          environmentId: null,
        });
        const remove = await recorded(wsA, () => sendOk('DELETE', `${base}/${id}`, { token: admin.token, ip }, 204));
        expectSuccess(remove.entry, remove.response, { actor: actorOf(admin), action: 'client.delete', target: { clientId: id }, ip, environmentId: null });

        // The same calls failing: one failure entry each, with the id from the URL.
        const missing = randomUUID();
        const del404 = await recorded(wsA, () => send('DELETE', `${base}/${missing}`, { token: admin.token, ip }));
        expectFailure(del404.entry, del404.response, { actor: actorOf(admin), action: 'client.delete', target: { id: missing }, ip, status: 404, errorCode: 'client_not_found', environmentId: null });
        const upd404 = await recorded(wsA, () => send('PATCH', `${base}/${missing}`, { token: admin.token, ip, payload: { name: 'x' } }));
        expectFailure(upd404.entry, upd404.response, { actor: actorOf(admin), action: 'client.update', target: { id: missing }, ip, status: 404, errorCode: 'client_not_found', environmentId: null });
        const rot404 = await recorded(wsA, () => send('POST', `${base}/${missing}/tokens`, { token: admin.token, ip, payload: {} }));
        expectFailure(rot404.entry, rot404.response, { actor: actorOf(admin), action: 'client.token.rotate', target: { id: missing }, ip, status: 404, errorCode: 'client_not_found', environmentId: null });

        // Tokens issued here appear in no entry (only their ids do).
        const json = JSON.stringify(await entriesAfter(wsA, 0));
        for (const token of [created.token, rotate.response.json().token]) for (const encoding of encodingsOf(token)) expect(json).not.toContain(encoding);
      });

      it('the actor is the client as it was when it acted (a later rename does not rewrite history)', async () => {
        const temp = await createClient(wsA, { name: 'before-rename', role: 'auditor' });
        const read = await recorded(wsA, () => sendOk('GET', `/v1/workspaces/${wsA}`, { token: temp.token }));
        expectSuccess(read.entry, read.response, { actor: actorOf(temp), action: 'workspace.read', target: {}, environmentId: null });
        await ok(t, 'PATCH', `/v1/workspaces/${wsA}/clients/${temp.id}`, { name: 'after-rename' });
        const again = (await entriesAfter(wsA, read.entry.seq - 1))[0]!;
        expect(again.actor).toEqual(actorOf(temp));
        const next = await recorded(wsA, () => sendOk('GET', `/v1/workspaces/${wsA}`, { token: temp.token }));
        expect(next.entry.actor).toEqual({ ...actorOf(temp), name: 'after-rename' });
        await ok(t, 'DELETE', `/v1/workspaces/${wsA}/clients/${temp.id}`, undefined, 204);
      });
    });

    describe('data plane', () => {
      const scope = { type: 'job', id: 'nightly-export' };

      it('data.encrypt and data.decrypt by an app client: scope, key id, environment, its address', async () => {
        const ip = '203.0.113.77';
        const enc = await recorded(wsA, () => sendOk('POST', `${envUrl(wsA)}/encrypt`, { token: app.token, ip, payload: { scope, plaintext: Buffer.from('x').toString('base64') } }));
        const { ciphertext, keyId } = enc.response.json();
        expectSuccess(enc.entry, enc.response, {
          actor: actorOf(app),
          action: 'data.encrypt',
          target: { environment: 'production', scopeType: 'job', scopeId: 'nightly-export', keyId },
          ip,
          environmentId: prodA,
        });
        const dec = await recorded(wsA, () => sendOk('POST', `${envUrl(wsA)}/decrypt`, { token: app.token, ip, payload: { ciphertext } }));
        expectSuccess(dec.entry, dec.response, { actor: actorOf(app), action: 'data.decrypt', target: { environment: 'production', scopeType: 'job', scopeId: 'nightly-export' }, ip, environmentId: prodA });

        // A tampered ciphertext: failure, 400 decryption_failed.
        const tampered = ciphertext.slice(0, -6) + (ciphertext.at(-6) === 'A' ? 'B' : 'A') + ciphertext.slice(-5);
        const bad = await recorded(wsA, () => send('POST', `${envUrl(wsA)}/decrypt`, { token: app.token, ip, payload: { ciphertext: tampered } }));
        expectFailure(bad.entry, bad.response, { actor: actorOf(app), action: 'data.decrypt', target: { environment: 'production' }, ip, status: 400, errorCode: 'decryption_failed', environmentId: prodA });
      });

      it('IPv6 and IPv4-mapped source addresses are recorded in canonical form', async () => {
        const v6 = await recorded(wsA, () => sendOk('GET', `${envUrl(wsA)}/keys`, { token: auditor.token, ip: '2001:DB8:0:0::7' }));
        expect(v6.entry.sourceIp).toBe('2001:db8::7');
        const mapped = await recorded(wsA, () => sendOk('GET', `${envUrl(wsA)}/keys`, { token: auditor.token, ip: '::ffff:192.0.2.9' }));
        expect(mapped.entry.sourceIp).toBe('192.0.2.9');
      });

      it('auth.jwt: the JWT exchange, and requests made with the JWT, are the same client', async () => {
        const ip = '198.51.100.9';
        const jwt = await recorded(wsA, () => sendOk('POST', '/v1/auth/token', { token: app.token, ip, payload: {} }));
        expectSuccess(jwt.entry, jwt.response, { actor: actorOf(app), action: 'auth.jwt', target: {}, ip, environmentId: null });
        const token = jwt.response.json().token as string;
        const enc = await recorded(wsA, () => sendOk('POST', `${envUrl(wsA)}/encrypt`, { token, ip, payload: { scope, plaintext: '' } }));
        expect(enc.entry.actor).toEqual(actorOf(app));
        expect(enc.entry.action).toBe('data.encrypt');
        // Exchanging a JWT for a JWT is refused — and recorded against the client.
        const again = await recorded(wsA, () => send('POST', '/v1/auth/token', { token, ip, payload: {} }));
        expectFailure(again.entry, again.response, { actor: actorOf(app), action: 'auth.jwt', target: {}, ip, status: 403, errorCode: 'forbidden', environmentId: null });
        // The JWT itself is in no entry.
        expect(JSON.stringify(await entriesAfter(wsA, 0))).not.toContain(token.split('.')[2]);
      });

      it('vault objects: create, read, list, update, versions, read a version, delete — one entry each with the object id', async () => {
        const ip = '192.0.2.200';
        const objects = `${envUrl(wsA)}/objects`;
        const opts = (payload?: unknown) => ({ token: app.token, ip, ...(payload === undefined ? {} : { payload }) });

        const create = await recorded(wsA, () => sendOk('POST', objects, opts({ name: 'db-password', value: 'v1', context: { app: 'billing' } }), 201));
        const id = create.response.json().id as string;
        expectSuccess(create.entry, create.response, { actor: actorOf(app), action: 'object.create', target: { objectId: id, objectName: 'db-password', version: '1' }, ip, environmentId: prodA });

        const read = await recorded(wsA, () => sendOk('GET', `${objects}/${id}`, opts()));
        expectSuccess(read.entry, read.response, { actor: actorOf(app), action: 'object.read', target: { environment: 'production', id }, ip, environmentId: prodA });

        const list = await recorded(wsA, () => sendOk('GET', `${objects}?limit=5`, opts()));
        expectSuccess(list.entry, list.response, { actor: actorOf(app), action: 'object.list', target: { environment: 'production' }, ip, environmentId: prodA });

        // Read by name is a read (it returns the value), not a listing; the entry names the object by name and id.
        const byName = await recorded(wsA, () => sendOk('GET', `${objects}?name=db-password`, opts()));
        expectSuccess(byName.entry, byName.response, { actor: actorOf(app), action: 'object.read', target: { environment: 'production', name: 'db-password', id }, ip, environmentId: prodA });

        const update = await recorded(wsA, () => sendOk('PUT', `${objects}/${id}`, opts({ value: 'v2', expectedVersion: 1 })));
        expectSuccess(update.entry, update.response, { actor: actorOf(app), action: 'object.update', target: { objectId: id, objectName: 'db-password', version: '2' }, ip, environmentId: prodA });

        const versions = await recorded(wsA, () => sendOk('GET', `${objects}/${id}/versions`, opts()));
        expectSuccess(versions.entry, versions.response, { actor: actorOf(app), action: 'object.versions', target: { environment: 'production', id }, ip, environmentId: prodA });

        const readV1 = await recorded(wsA, () => sendOk('GET', `${objects}/${id}/versions/1`, opts()));
        expectSuccess(readV1.entry, readV1.response, { actor: actorOf(app), action: 'object.read', target: { environment: 'production', id, version: '1' }, ip, environmentId: prodA });

        const conflict = await recorded(wsA, () => send('PUT', `${objects}/${id}`, opts({ value: 'v3', expectedVersion: 1 })));
        expectFailure(conflict.entry, conflict.response, { actor: actorOf(app), action: 'object.update', target: { environment: 'production', id }, ip, status: 409, errorCode: 'version_conflict', environmentId: prodA });

        const remove = await recorded(wsA, () => sendOk('DELETE', `${objects}/${id}`, opts(), 204));
        expectSuccess(remove.entry, remove.response, { actor: actorOf(app), action: 'object.delete', target: { objectId: id }, ip, environmentId: prodA });

        const gone = await recorded(wsA, () => send('GET', `${objects}/${id}`, opts()));
        expectFailure(gone.entry, gone.response, { actor: actorOf(app), action: 'object.read', target: { environment: 'production', id }, ip, status: 404, errorCode: 'object_not_found', environmentId: prodA });
      });

      it('keys.status and cmk.read by an auditor client', async () => {
        const keys = await recorded(wsA, () => sendOk('GET', `${envUrl(wsA, 'staging')}/keys`, { token: auditor.token }));
        expectSuccess(keys.entry, keys.response, { actor: actorOf(auditor), action: 'keys.status', target: { environment: 'staging' }, environmentId: stagingA });
        const cmk = await recorded(wsA, () => sendOk('GET', `${envUrl(wsA)}/cmk`, { token: auditor.token }));
        expectSuccess(cmk.entry, cmk.response, { actor: actorOf(auditor), action: 'cmk.read', target: { environment: 'production' }, environmentId: prodA });
      });

      it('audit.read and audit.verify are themselves recorded', async () => {
        const read = await recorded(wsA, () => sendOk('GET', `/v1/workspaces/${wsA}/audit?limit=1`, { token: auditor.token }));
        expectSuccess(read.entry, read.response, { actor: actorOf(auditor), action: 'audit.read', target: {}, environmentId: null });
        const verify = await recorded(wsA, () => sendOk('GET', `/v1/workspaces/${wsA}/audit/verify`, { token: auditor.token }));
        expectSuccess(verify.entry, verify.response, { actor: actorOf(auditor), action: 'audit.verify', target: {}, environmentId: null });
        expect(verify.response.json()).toMatchObject({ ok: true });
      });
    });

    describe('denied and probing requests', () => {
      it('forbidden (a client of the same workspace without the permission or the environment): failure entries', async () => {
        const list = await recorded(wsA, () => send('GET', `/v1/workspaces/${wsA}/clients`, { token: app.token }));
        expectFailure(list.entry, list.response, { actor: actorOf(app), action: 'client.list', target: {}, status: 403, errorCode: 'forbidden', environmentId: null });
        const staging = await recorded(wsA, () => send('POST', `${envUrl(wsA, 'staging')}/encrypt`, { token: app.token, payload: { scope: { type: 'job', id: 'j' }, plaintext: '' } }));
        expectFailure(staging.entry, staging.response, { actor: actorOf(app), action: 'data.encrypt', target: { environment: 'staging' }, status: 403, errorCode: 'forbidden', environmentId: stagingA });
        const read = await recorded(wsA, () => send('GET', `/v1/workspaces/${wsA}/audit`, { token: app.token }));
        expectFailure(read.entry, read.response, { actor: actorOf(app), action: 'audit.read', target: {}, status: 403, errorCode: 'forbidden', environmentId: null });
        const decrypt = await recorded(wsA, () => send('POST', `${envUrl(wsA)}/decrypt`, { token: auditor.token, payload: { ciphertext: 'ks1:x' } }));
        expectFailure(decrypt.entry, decrypt.response, { actor: actorOf(auditor), action: 'data.decrypt', target: { environment: 'production' }, status: 403, errorCode: 'forbidden', environmentId: prodA });
        const createWs = await recorded(wsA, () => send('POST', '/v1/workspaces', { token: admin.token, payload: { name: 'not-allowed' } }));
        expectFailure(createWs.entry, createWs.response, { actor: actorOf(admin), action: 'workspace.create', target: {}, status: 403, errorCode: 'forbidden', environmentId: null });
      });

      it("probing another workspace: a 404 recorded in the client's OWN workspace, naming the probed one; nothing in the probed workspace", async () => {
        const beforeB = await headSeq(wsB);
        const ip = '203.0.113.66';
        const probes: [Method, string, string, Record<string, string>, unknown][] = [
          ['POST', `${envUrl(wsB)}/encrypt`, 'data.encrypt', { workspace: wsB, environment: 'production' }, { scope: { type: 'job', id: 'j' }, plaintext: '' }],
          ['GET', `/v1/workspaces/${wsB}/audit`, 'audit.read', { workspace: wsB }, undefined],
          ['GET', `/v1/workspaces/${wsB}/clients/${appB.id}`, 'client.read', { workspace: wsB, id: appB.id }, undefined],
          ['GET', `${envUrl(wsB)}/objects`, 'object.list', { workspace: wsB, environment: 'production' }, undefined],
        ];
        for (const [method, url, action, target, payload] of probes) {
          const probe = await recorded(wsA, () => send(method, url, { token: admin.token, ip, payload }));
          expectFailure(probe.entry, probe.response, { actor: actorOf(admin), action, target, ip, status: 404, errorCode: 'workspace_not_found', environmentId: null });
        }
        // The other direction too: B's client probing A is on B's record.
        const beforeA = await headSeq(wsA);
        const back = await recorded(wsB, () => send('GET', `${envUrl(wsA)}/keys`, { token: appB.token, ip }));
        expect(back.entry).toMatchObject({ actor: actorOf(appB), outcome: 'failure', status: 404, errorCode: 'workspace_not_found', target: { workspace: wsA } });
        expect(await headSeq(wsA)).toBe(beforeA);
        // B's chain has only B's own entry, nothing of A's probes.
        const bEntries = await entriesAfter(wsB, beforeB);
        expect(bEntries.map((e) => e.actor)).toEqual([actorOf(appB)]);
      });

      it('a client from a network outside its allowlist: a failure entry against that client, with the address', async () => {
        const fenced = await createClient(wsA, { name: 'fenced', role: 'auditor', allowedCidrs: ['10.0.0.0/8'] });
        const denied = await recorded(wsA, () => send('GET', `/v1/workspaces/${wsA}`, { token: fenced.token, ip: '203.0.113.50' }));
        expectFailure(denied.entry, denied.response, { actor: actorOf(fenced), action: 'workspace.read', target: {}, ip: '203.0.113.50', status: 403, errorCode: 'ip_not_allowed', environmentId: null });
        const allowed = await recorded(wsA, () => sendOk('GET', `/v1/workspaces/${wsA}`, { token: fenced.token, ip: '10.1.2.3' }));
        expectSuccess(allowed.entry, allowed.response, { actor: actorOf(fenced), action: 'workspace.read', target: {}, ip: '10.1.2.3', environmentId: null });
      });

      it('requests without a valid credential belong to no workspace: no entry', async () => {
        const before = await headSeq(wsA);
        for (const token of ['not-a-token', `ks_${'x'.repeat(40)}`, TEST_ADMIN_TOKEN.replace(/a$/, 'b')]) {
          expectError(await send('GET', `/v1/workspaces/${wsA}/audit`, { token }), 401, 'unauthorized');
        }
        expectError((await t.app.inject({ method: 'GET', url: `/v1/workspaces/${wsA}` })) as unknown as InjectResult, 401, 'unauthorized');
        expect(await headSeq(wsA)).toBe(before);
      });
    });

    describe('what entries never contain', () => {
      it('no plaintext, object value, ciphertext, API token, JWT or admin token — in the listed JSON or in the raw audit rows', async () => {
        const plaintextCanary = `PLAINTEXT-CANARY-${randomUUID()}`;
        const valueCanary = `VALUE-CANARY-${randomUUID()}`;
        const valueCanary2 = `VALUE2-CANARY-${randomUUID()}`;
        const ws = (await createWorkspace(t, 'canaries')).id;
        const client = await createClient(ws, { name: 'canary-app', role: 'admin' });
        const rotated = (await ok(t, 'POST', `/v1/workspaces/${ws}/clients/${client.id}/tokens`, {}, 201)).token as string;
        const jwt = (await sendOk('POST', '/v1/auth/token', { token: rotated, payload: {} })).json().token as string;
        const enc = (await sendOk('POST', `${envUrl(ws)}/encrypt`, { token: jwt, payload: { scope: { type: 'event', id: 'e1' }, plaintext: Buffer.from(plaintextCanary).toString('base64') } })).json();
        const dec = (await sendOk('POST', `${envUrl(ws)}/decrypt`, { token: client.token, payload: { ciphertext: enc.ciphertext } })).json();
        expect(Buffer.from(dec.plaintext, 'base64').toString()).toBe(plaintextCanary);
        const object = (await sendOk('POST', `${envUrl(ws)}/objects`, { token: jwt, payload: { name: 'canary-object', value: valueCanary, context: { k: 'v' } } }, 201)).json();
        await sendOk('PUT', `${envUrl(ws)}/objects/${object.id}`, { token: jwt, payload: { value: valueCanary2, expectedVersion: 1 } });
        const read = (await sendOk('GET', `${envUrl(ws)}/objects/${object.id}/versions/1`, { token: jwt })).json();
        expect(read.value).toBe(valueCanary);
        await send('POST', `${envUrl(ws)}/decrypt`, { token: jwt, payload: { ciphertext: enc.ciphertext.slice(0, -4) + 'AAAA' } });

        const listed = (await sendOk('GET', `/v1/workspaces/${ws}/audit?limit=1000`, { token: client.token })).body;
        const rows = (await dumpTables(t.handle))
          .split('\n')
          .filter((line) => line.startsWith('audit_'))
          .join('\n');
        expect(listed).toContain('data.decrypt'); // the listing is decrypted, so the check means something
        const secrets: [string, string][] = [
          ['plaintext', plaintextCanary],
          ['object value', valueCanary],
          ['object value v2', valueCanary2],
          ['API token', client.token],
          ['rotated API token', rotated],
          ['JWT', jwt],
          ['JWT signature', jwt.split('.')[2]!],
          ['admin token', TEST_ADMIN_TOKEN],
          ['ciphertext', enc.ciphertext],
          ['ciphertext body', enc.ciphertext.slice(4, 40)],
        ];
        for (const [what, secret] of secrets) {
          for (const encoding of encodingsOf(secret)) {
            expect(listed.includes(encoding), `${what} in the listed entries`).toBe(false);
            expect(rows.includes(encoding), `${what} in the raw audit rows`).toBe(false);
          }
        }
        // And the raw rows are not readable JSON bodies either.
        expect(rows).not.toMatch(/data\.decrypt|canary-app|"actor"/);
        expect(rows).not.toContain(Buffer.from('canary-app').toString('hex'));
      });
    });

    describe('reading the log', () => {
      it('pages in seq order: limit, cursor, nextCursor; null at the end', async () => {
        const ws = (await createWorkspace(t, 'paging')).id;
        for (let i = 0; i < 7; i++) await ok(t, 'GET', `/v1/workspaces/${ws}`, undefined);
        const before = await headSeq(ws);
        expect(before).toBe(8);

        const seen: number[] = [];
        let cursor: string | null = null;
        let last: InjectResult | undefined;
        let pages = 0;
        do {
          last = await sendOk('GET', `/v1/workspaces/${ws}/audit?limit=3${cursor === null ? '' : `&cursor=${cursor}`}`);
          const page = last.json();
          pages++;
          expect(page.items.length).toBeLessThanOrEqual(3);
          seen.push(...page.items.map((e: Body) => e.seq));
          if (page.items.length === 3) expect(page.nextCursor).toBe(String(page.items[2].seq));
          else expect(page.nextCursor).toBeNull();
          cursor = page.nextCursor;
          expect(pages).toBeLessThan(20);
        } while (cursor !== null);

        // Every entry once, in order — including the audit.read entries of the earlier pages, which
        // were appended while paging; the last page's own entry comes after it.
        const head = await headSeq(ws);
        expect(head).toBe(before + pages);
        expect(seen).toEqual(Array.from({ length: head - 1 }, (_, i) => i + 1));
        const [own] = await entriesAfter(ws, head - 1);
        expect(own).toMatchObject({ seq: head, action: 'audit.read', requestId: last.headers['x-request-id'] });

        // One page of everything (default and maximum limit) equals the pages.
        const whole = (await sendOk('GET', `/v1/workspaces/${ws}/audit?limit=1000`)).json();
        expect(whole.items.map((e: Body) => e.seq)).toEqual(Array.from({ length: head }, (_, i) => i + 1));
        expect(whole.nextCursor).toBeNull();
        const byDefault = (await sendOk('GET', `/v1/workspaces/${ws}/audit`)).json();
        expect(byDefault.items).toHaveLength(head + 1);

        // A full last page has a cursor; the page after it is empty with null.
        const n = await headSeq(ws);
        const full = await t.ks.audit.list(ws, { afterSeq: n - 2, limit: 2 });
        expect(full.nextCursor).toBe(String(n));
        expect(await t.ks.audit.list(ws, { afterSeq: n, limit: 2 })).toEqual({ items: [], nextCursor: null });
        const beyond = (await sendOk('GET', `/v1/workspaces/${ws}/audit?cursor=999999`)).json();
        expect(beyond).toEqual({ items: [], nextCursor: null });
      });

      it('bad paging parameters are 400 invalid_request (and recorded as failures)', async () => {
        for (const query of ['limit=0', 'limit=1001', 'limit=x', 'cursor=-1', 'cursor=abc', 'cursor=1.5', 'other=1']) {
          const bad = await recorded(wsA, () => send('GET', `/v1/workspaces/${wsA}/audit?${query}`, { token: auditor.token }));
          expectFailure(bad.entry, bad.response, { actor: actorOf(auditor), action: 'audit.read', target: {}, status: 400, errorCode: 'invalid_request', environmentId: null });
        }
      });
    });

    describe('same transaction as the change', () => {
      it('a duplicate object name (409): only the failure entry, no success entry', async () => {
        const objects = `${envUrl(wsA)}/objects`;
        await sendOk('POST', objects, { token: app.token, payload: { name: 'unique-name', value: 'a', context: { a: '1' } } }, 201);
        const dup = await recorded(wsA, () => send('POST', objects, { token: app.token, payload: { name: 'unique-name', value: 'b', context: { a: '1' } } }));
        expectFailure(dup.entry, dup.response, { actor: actorOf(app), action: 'object.create', target: { environment: 'production' }, status: 409, errorCode: 'already_exists', environmentId: prodA });
      });

      it('a duplicate client name (409): only the failure entry', async () => {
        const dup = await recorded(wsA, () => send('POST', `/v1/workspaces/${wsA}/clients`, { payload: { name: app.name, role: 'app' } }));
        expectFailure(dup.entry, dup.response, { actor: ADMIN_ACTOR, action: 'client.create', target: {}, status: 409, errorCode: 'already_exists', environmentId: null });
      });

      it('a compare-and-set lost in the store (concurrent updates): the losers drafted entries are never written', async () => {
        const objects = `${envUrl(wsA)}/objects`;
        const id = (await sendOk('POST', objects, { token: app.token, payload: { name: 'contended', value: 'v1', context: { a: '1' } } }, 201)).json().id as string;
        const writers = 6;
        // Hold every update at the store until all of them got there: each has passed the service's
        // version check and carries its success entry, so the store's CAS is what decides.
        const original = t.ks.store.addObjectVersion;
        const arrivals: { withAudit: boolean; result?: unknown }[] = [];
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        const fallback = setTimeout(release, 5000);
        t.ks.store.addObjectVersion = async (...args: Parameters<typeof original>) => {
          const arrival: { withAudit: boolean; result?: unknown } = { withAudit: (args[5] as AuditAppend | undefined) !== undefined };
          arrivals.push(arrival);
          if (arrivals.length === writers) release();
          await gate;
          arrival.result = await original.apply(t.ks.store, args);
          return arrival.result as Awaited<ReturnType<typeof original>>;
        };
        const before = await headSeq(wsA);
        let responses: InjectResult[];
        try {
          responses = await Promise.all(
            Array.from({ length: writers }, (_, i) => send('PUT', `${objects}/${id}`, { token: app.token, payload: { value: `w${i}`, expectedVersion: 1 } })),
          );
        } finally {
          clearTimeout(fallback);
          t.ks.store.addObjectVersion = original;
        }
        expect(arrivals).toHaveLength(writers);
        expect(arrivals.every((a) => a.withAudit)).toBe(true);
        expect(arrivals.filter((a) => a.result === undefined)).toHaveLength(writers - 1);

        const winners = responses.filter((r) => r.statusCode === 200);
        const losers = responses.filter((r) => r.statusCode !== 200);
        expect(winners).toHaveLength(1);
        for (const loser of losers) expectError(loser, 409, 'version_conflict');

        const added = await entriesAfter(wsA, before);
        expect(added).toHaveLength(writers);
        const successes = added.filter((e) => e.outcome === 'success');
        expect(successes).toHaveLength(1);
        expect(successes[0]).toMatchObject({ action: 'object.update', requestId: winners[0]!.headers['x-request-id'], target: { objectId: id, version: '2' } });
        const failures = added.filter((e) => e.outcome === 'failure');
        expect(failures.map((e) => e.requestId).sort()).toEqual(losers.map((r) => r.headers['x-request-id']).sort());
        expect(failures.every((e) => e.errorCode === 'version_conflict' && e.status === 409 && e.action === 'object.update')).toBe(true);
        // Every entry belongs to exactly one response.
        expect(new Set(added.map((e) => e.requestId)).size).toBe(writers);
      });

      it('a successful change has its entry committed with it — exactly one, not another from the response path', async () => {
        // Count the group-commit appends while changes are made: they must not add entries.
        const original = t.ks.store.appendAudit;
        let groupCommits = 0;
        t.ks.store.appendAudit = async (append) => {
          groupCommits += append.entries.length;
          return original.call(t.ks.store, append);
        };
        try {
          const objects = `${envUrl(wsA)}/objects`;
          const create = await recorded(wsA, () => sendOk('POST', objects, { token: app.token, payload: { name: `once-${randomUUID()}`, value: 'v', context: { a: '1' } } }, 201));
          const id = create.response.json().id;
          await recorded(wsA, () => sendOk('PUT', `${objects}/${id}`, { token: app.token, payload: { value: 'v2', expectedVersion: 1 } }));
          await recorded(wsA, () => sendOk('DELETE', `${objects}/${id}`, { token: app.token }, 204));
          const client = await recorded(wsA, () => sendOk('POST', `/v1/workspaces/${wsA}/clients`, { payload: { name: `once-${Date.now()}`, role: 'app' } }, 201));
          await recorded(wsA, () => sendOk('DELETE', `/v1/workspaces/${wsA}/clients/${client.response.json().client.id}`, {}, 204));
          await recorded(wsA, () => sendOk('POST', `/v1/workspaces/${wsA}/environments`, { payload: { name: 'once' } }, 201));
          expect(groupCommits).toBe(0);
        } finally {
          t.ks.store.appendAudit = original;
        }
      });
    });

    describe('fail closed', () => {
      it('when the entry cannot be written: 503 store_unavailable, and nothing the request produced', async () => {
        const plaintextCanary = `FAIL-CLOSED-${randomUUID()}`;
        const valueCanary = `FAIL-CLOSED-VALUE-${randomUUID()}`;
        const { ciphertext } = (await sendOk('POST', `${envUrl(wsA)}/encrypt`, { token: app.token, payload: { scope: { type: 'job', id: 'fc' }, plaintext: Buffer.from(plaintextCanary).toString('base64') } })).json();
        const object = (await sendOk('POST', `${envUrl(wsA)}/objects`, { token: app.token, payload: { name: `fc-${randomUUID()}`, value: valueCanary, context: { a: '1' } } }, 201)).json();

        const original = t.ks.store.appendAudit;
        let attempts = 0;
        t.ks.store.appendAudit = async () => {
          attempts++;
          throw new Error('simulated: the audit table is not writable');
        };
        const before = await headSeq(wsA);
        try {
          const requests: [string, () => Promise<InjectResult>, string[]][] = [
            ['decrypt', () => send('POST', `${envUrl(wsA)}/decrypt`, { token: app.token, payload: { ciphertext } }), encodingsOf(plaintextCanary)],
            ['object read', () => send('GET', `${envUrl(wsA)}/objects/${object.id}`, { token: app.token }), encodingsOf(valueCanary)],
            ['object read by name', () => send('GET', `${envUrl(wsA)}/objects?name=${object.name}`, { token: app.token }), encodingsOf(valueCanary)],
            ['object version', () => send('GET', `${envUrl(wsA)}/objects/${object.id}/versions/1`, { token: app.token }), encodingsOf(valueCanary)],
            ['encrypt', () => send('POST', `${envUrl(wsA)}/encrypt`, { token: app.token, payload: { scope: { type: 'job', id: 'fc' }, plaintext: Buffer.from(plaintextCanary).toString('base64') } }), ['ks1:', ...encodingsOf(plaintextCanary)]],
            ['a failure (404)', () => send('GET', `${envUrl(wsA)}/objects/${randomUUID()}`, { token: app.token }), []],
            ['audit read', () => send('GET', `/v1/workspaces/${wsA}/audit`, { token: auditor.token }), ['"items"']],
            ['JWT issue', () => send('POST', '/v1/auth/token', { token: app.token, payload: {} }), ['"token"', 'eyJ']],
          ];
          for (const [what, request, forbidden] of requests) {
            const response = await request();
            const error = expectError(response, 503, 'store_unavailable');
            expect(error.requestId, what).toBe(response.headers['x-request-id']);
            expect(response.headers['retry-after'], what).toBe('1');
            for (const needle of forbidden) expect(response.body.includes(needle), `${what}: ${needle} in ${response.body}`).toBe(false);
          }
          expect(attempts).toBeGreaterThanOrEqual(8);
        } finally {
          t.ks.store.appendAudit = original;
        }
        // Nothing was recorded meanwhile, and the log resumes (and verifies) afterwards.
        expect(await headSeq(wsA)).toBe(before);
        const decrypt = await recorded(wsA, () => sendOk('POST', `${envUrl(wsA)}/decrypt`, { token: app.token, payload: { ciphertext } }));
        expect(Buffer.from(decrypt.response.json().plaintext, 'base64').toString()).toBe(plaintextCanary);
        expect(await t.ks.audit.verify(wsA)).toMatchObject({ ok: true });
      });

      it('with the store closed under it: a decrypt that could be answered from caches is refused (503), no plaintext', async () => {
        const own = await openTestKeystrata({ store });
        try {
          const ws = (await createWorkspace(own, 'closing')).id;
          const canary = `CLOSED-STORE-${randomUUID()}`;
          const { ciphertext } = await ok(own, 'POST', `${envUrl(ws)}/encrypt`, { scope: { type: 'job', id: 'c' }, plaintext: Buffer.from(canary).toString('base64') });
          // Warm every cache the decrypt needs, then pull the store away.
          await ok(own, 'POST', `${envUrl(ws)}/decrypt`, { ciphertext });
          await own.ks.store.close();
          const response = (await own.app.inject({ method: 'POST', url: `${envUrl(ws)}/decrypt`, headers: own.auth, payload: { ciphertext } })) as unknown as InjectResult;
          expect(response.statusCode, response.body).toBe(503);
          for (const encoding of encodingsOf(canary)) expect(response.body).not.toContain(encoding);
          expect(response.body).not.toContain('"plaintext"');
        } finally {
          await own.app.close().catch(() => undefined);
          await own.ks.close().catch(() => undefined);
          await own.handle.destroy();
        }
      });
    });

    describe('entry bodies are sealed', () => {
      it("environment entries under the environment's log key, workspace-level entries under the workspace key (raw rows)", async () => {
        const ws = (await createWorkspace(t, 'sealing')).id;
        const env = (await ok(t, 'POST', `/v1/workspaces/${ws}/environments`, { name: 'dev' }, 201)).id as string;
        await ok(t, 'POST', `${envUrl(ws, 'dev')}/encrypt`, { scope: { type: 'log', id: 'l' }, plaintext: '' });
        await ok(t, 'GET', `${envUrl(ws)}/keys`, undefined);
        await ok(t, 'POST', `${envUrl(ws)}/objects`, { name: 'o', value: 'v', context: { a: '1' } }, 201);
        await ok(t, 'POST', `/v1/workspaces/${ws}/clients`, { name: 'c', role: 'auditor' }, 201);
        await ok(t, 'GET', `/v1/workspaces/${ws}/audit`, undefined);

        const listed = await entriesAfter(ws, 0);
        const rows = await withRawAudit(t.handle, (db) => db.rows(ws));
        expect(rows.map((r) => r.seq)).toEqual(listed.map((e) => e.seq));
        const sealing = listed.map((e, i) => [e.action, rows[i]!.environmentId, rows[i]!.sealing]);
        const production = (await ok(t, 'GET', `/v1/workspaces/${ws}`, undefined)).environments.find((e: Body) => e.name === 'production').id;
        expect(sealing).toEqual([
          ['workspace.create', null, 'workspace-key'],
          // The new environment's id is in clear, but it has no log key yet when its entry is sealed.
          ['environment.create', env, 'workspace-key'],
          ['data.encrypt', env, 'log-key'],
          ['keys.status', production, 'log-key'],
          ['object.create', production, 'log-key'],
          ['client.create', null, 'workspace-key'],
          ['audit.read', null, 'workspace-key'],
        ]);
        for (const row of rows) {
          // Encrypted: no JSON, no action name, in the stored bytes.
          expect(row.body.includes('"action"')).toBe(false);
          expect(row.body.includes('workspace.create')).toBe(false);
          expect(row.body.includes('audit.read')).toBe(false);
        }
      });
    });

    describe('under concurrency', () => {
      it('200 concurrent encrypts: 200 entries, contiguous seqs, one per request, group-committed, and the chain verifies', async () => {
        const ws = (await createWorkspace(t, 'concurrent')).id;
        const fast = await createClient(ws, { name: 'fast', role: 'app', rateLimitPerSecond: 100_000 });
        const before = await headSeq(ws);
        const original = t.ks.store.appendAudit;
        let commits = 0;
        t.ks.store.appendAudit = async (append) => {
          commits++;
          return original.call(t.ks.store, append);
        };
        let responses: InjectResult[];
        try {
          responses = await Promise.all(
            Array.from({ length: 200 }, (_, i) =>
              send('POST', `${envUrl(ws)}/encrypt`, { token: fast.token, ip: `198.51.100.${i % 250}`, payload: { scope: { type: 'job', id: `job-${i}` }, plaintext: Buffer.from(`p${i}`).toString('base64') } }),
            ),
          );
        } finally {
          t.ks.store.appendAudit = original;
        }
        expect(responses.map((r) => r.statusCode)).toEqual(Array(200).fill(200));
        const added = await entriesAfter(ws, before);
        expect(added.map((e) => e.seq)).toEqual(Array.from({ length: 200 }, (_, i) => before + 1 + i));
        const byRequest = new Map(added.map((e) => [e.requestId, e]));
        expect(byRequest.size).toBe(200);
        responses.forEach((response, i) => {
          const entry = byRequest.get(response.headers['x-request-id'] as string);
          expect(entry, `entry of request ${i}`).toMatchObject({
            action: 'data.encrypt',
            outcome: 'success',
            actor: actorOf(fast),
            sourceIp: `198.51.100.${i % 250}`,
            target: { scopeType: 'job', scopeId: `job-${i}`, keyId: response.json().keyId },
          });
        });
        // Group commit: concurrent requests shared transactions.
        expect(commits).toBeGreaterThan(0);
        expect(commits).toBeLessThan(50);
        const verify = (await sendOk('GET', `/v1/workspaces/${ws}/audit/verify`)).json();
        expect(verify).toMatchObject({ ok: true, checked: before + 200, head: { seq: before + 200 } });
      });
    });
  });
}
