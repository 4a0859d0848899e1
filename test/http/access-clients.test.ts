import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/service/clock.js';
import { as, asOk, clientsUrl, createClient, rotateToken, type ClientView, type CreatedClient } from '../support/access-helpers.js';
import { createWorkspace, expectError, ok, type InjectResult } from '../support/http-helpers.js';
import { openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

/**
 * API clients managed over HTTP: creation and validation, the token shown once, rotation with an
 * overlap window, token expiry, disable / delete taking effect on the next request, and the rules
 * that keep a client from granting more than it has or locking itself out.
 */
for (const store of testStores()) {
  describe(`API clients over HTTP (${store})`, () => {
    let t: TestKeystrata;
    let clock: ManualClock;
    let ws: string;
    const TOKEN_SHAPE = /^kst_[A-Za-z0-9_-]{43}$/;

    beforeAll(async () => {
      clock = new ManualClock(Date.UTC(2026, 0, 1));
      t = await openTestKeystrata({ store, clock });
      ws = (await createWorkspace(t, 'clients')).id;
      await ok(t, 'POST', `/v1/workspaces/${ws}/environments`, { name: 'staging' }, 201);
    });
    afterAll(async () => {
      await t?.destroy();
    });

    /** A read every auditor (and admin) client may do: 200 while its credential is good. */
    const probe = (token: string): Promise<InjectResult> => as(t, token, 'GET', `/v1/workspaces/${ws}`);
    const expectWorks = async (token: string) => expect((await probe(token)).statusCode).toBe(200);
    const expectRefused = async (token: string) => expectError(await probe(token), 401, 'unauthorized');
    const getClient = (id: string) => asOk<ClientView>(t, t.token, 'GET', clientsUrl(ws, id));

    it('creates a client and returns its token once, with canonical settings', async () => {
      const created = await createClient(t, ws, {
        name: 'ci-deployer',
        role: 'app',
        environments: ['staging', 'production'],
        allowedCidrs: ['10.1.2.3/8', '2001:DB8:0::1/32', '10.0.0.0/8'],
        tokenTtlSeconds: 3600,
        rateLimitPerSecond: 50,
      });
      expect(created.token).toMatch(TOKEN_SHAPE);
      expect(created.tokenId).toMatch(/^[0-9a-f-]{36}$/);
      expect(created.expiresAt).toBe(new Date(clock.now() + 3600_000).toISOString());
      expect(created.client).toMatchObject({
        workspaceId: ws,
        name: 'ci-deployer',
        role: 'app',
        environments: ['production', 'staging'],
        // Host bits cleared, IPv6 in RFC 5952 form, duplicates dropped.
        allowedCidrs: ['10.0.0.0/8', '2001:db8::/32'],
        tokenTtlSeconds: 3600,
        rateLimitPerSecond: 50,
        disabled: false,
        usage: { requests: 0, failures: 0, lastUsedAt: null, lastUsedIp: null },
      });
      expect(created.client.tokens).toEqual([{ id: created.tokenId, createdAt: new Date(clock.now()).toISOString(), expiresAt: created.expiresAt }]);
    });

    it('defaults: every environment, any address, the server token lifetime, the server rate', async () => {
      const created = await createClient(t, ws, { name: 'defaults', role: 'auditor' });
      expect(created.client).toMatchObject({
        environments: ['*'],
        allowedCidrs: ['0.0.0.0/0', '::/0'],
        tokenTtlSeconds: t.config.tokenTtlSeconds,
        rateLimitPerSecond: null,
      });
      expect(created.expiresAt).toBe(new Date(clock.now() + t.config.tokenTtlSeconds * 1000).toISOString());
      await expectWorks(created.token);
    });

    it('the token is shown only in the creation response: GET and list never show it', async () => {
      const created = await createClient(t, ws, { role: 'auditor' });
      const secretPart = created.token.slice('kst_'.length);
      const one = await as(t, t.token, 'GET', clientsUrl(ws, created.client.id));
      const list = await as(t, t.token, 'GET', clientsUrl(ws));
      // The client itself reading its own entry, too.
      const self = await as(t, created.token, 'GET', clientsUrl(ws, created.client.id));
      for (const response of [one, list, self]) {
        expect(response.statusCode).toBe(200);
        expect(response.body).not.toContain(secretPart);
        expect(JSON.stringify(response.headers)).not.toContain(secretPart);
      }
      expect(one.json<ClientView>().tokens).toEqual([expect.objectContaining({ id: created.tokenId })]);
      expect(Object.keys(one.json<ClientView>().tokens[0]!).sort()).toEqual(['createdAt', 'expiresAt', 'id']);
      expect(list.json<{ items: ClientView[] }>().items.map((c) => c.id)).toContain(created.client.id);
    });

    describe('validation names the field at fault, and creates nothing', () => {
      const cases: [string, Record<string, unknown>, string | undefined][] = [
        ['a CIDR with a prefix over 32', { role: 'app', allowedCidrs: ['10.0.0.0/8', '10.0.0.0/33'] }, 'allowedCidrs.1'],
        ['a CIDR with leading zeros', { role: 'app', allowedCidrs: ['010.0.0.0/8'] }, 'allowedCidrs.0'],
        ['an IPv6 CIDR with a prefix over 128', { role: 'app', allowedCidrs: ['2001:db8::/129'] }, 'allowedCidrs.0'],
        ['a CIDR that is not an address', { role: 'app', allowedCidrs: ['::1', 'example.com'] }, 'allowedCidrs.1'],
        ['a CIDR with a zone id', { role: 'app', allowedCidrs: ['fe80::1%eth0'] }, 'allowedCidrs.0'],
        ['an empty CIDR list', { role: 'app', allowedCidrs: [] }, 'allowedCidrs'],
        ['an unknown environment', { role: 'app', environments: ['production', 'prodution'] }, 'environments.1'],
        ['"*" mixed with names', { role: 'app', environments: ['*', 'production'] }, 'environments'],
        ['an environment name that is not a name', { role: 'app', environments: ['Prod Env'] }, 'environments.0'],
        ['an empty environment list', { role: 'app', environments: [] }, 'environments'],
        ['a repeated environment', { role: 'app', environments: ['staging', 'staging'] }, 'environments'],
        ['an unknown role', { role: 'root' }, 'role'],
        ['a missing role', {}, 'role'],
        ['a token lifetime under 5 minutes', { role: 'app', tokenTtlSeconds: 299 }, 'tokenTtlSeconds'],
        ['a token lifetime over 400 days', { role: 'app', tokenTtlSeconds: 400 * 86_400 + 1 }, 'tokenTtlSeconds'],
        ['a fractional token lifetime', { role: 'app', tokenTtlSeconds: 3600.5 }, 'tokenTtlSeconds'],
        ['a rate limit of 0', { role: 'app', rateLimitPerSecond: 0 }, 'rateLimitPerSecond'],
        ['a rate limit as a string', { role: 'app', rateLimitPerSecond: '5' }, 'rateLimitPerSecond'],
        ['an unknown field', { role: 'app', owner: 'me' }, 'owner'],
        ['a token supplied by the caller', { role: 'app', token: 'kst_' + 'a'.repeat(43) }, 'token'],
        ['a disabled flag on create', { role: 'app', disabled: true }, 'disabled'],
      ];
      it.each(cases)('create: 400 for %s', async (_why, input, field) => {
        const name = `invalid-${randomUUID().slice(0, 8)}`;
        const error = expectError(await as(t, t.token, 'POST', clientsUrl(ws), { name, ...input }), 400, 'invalid_request');
        expect(error.field).toBe(field);
        const list = await asOk<{ items: ClientView[] }>(t, t.token, 'GET', `${clientsUrl(ws)}?limit=1000`);
        expect(list.items.map((c) => c.name)).not.toContain(name);
      });

      it('create: 400 for a missing or malformed name', async () => {
        for (const name of [undefined, '', 'x'.repeat(300), 5]) {
          const error = expectError(await as(t, t.token, 'POST', clientsUrl(ws), { role: 'app', ...(name === undefined ? {} : { name }) }), 400, 'invalid_request');
          expect(error.field).toBe('name');
        }
      });

      const patchCases: [string, Record<string, unknown>, string | undefined][] = [
        ['a bad CIDR', { allowedCidrs: ['1.2.3.4/40'] }, 'allowedCidrs.0'],
        ['an unknown environment', { environments: ['ghost'] }, 'environments.0'],
        ['"*" mixed with names', { environments: ['staging', '*'] }, 'environments'],
        ['a non-boolean disabled', { disabled: 'yes' }, 'disabled'],
        ['an unknown field', { bogus: 1 }, 'bogus'],
        ['an attempt to move the client to another workspace', { workspaceId: randomUUID() }, 'workspaceId'],
        ['an unknown role', { role: 'superuser' }, 'role'],
      ];
      it.each(patchCases)('patch: 400 for %s, and the client is unchanged', async (_why, patch, field) => {
        const created = await createClient(t, ws, { role: 'auditor', environments: ['staging'] });
        const error = expectError(await as(t, t.token, 'PATCH', clientsUrl(ws, created.client.id), patch), 400, 'invalid_request');
        expect(error.field).toBe(field);
        const after = await getClient(created.client.id);
        expect(after).toMatchObject({ role: 'auditor', environments: ['staging'], allowedCidrs: ['0.0.0.0/0', '::/0'], disabled: false });
      });

      it('patch: 400 for an empty patch', async () => {
        const created = await createClient(t, ws, { role: 'auditor' });
        const error = expectError(await as(t, t.token, 'PATCH', clientsUrl(ws, created.client.id), {}), 400, 'invalid_request');
        expect(error.message).toMatch(/fewer than 1 propert/);
      });

      it('rotate: 400 for a bad graceSeconds or an unknown field', async () => {
        const created = await createClient(t, ws, { role: 'auditor' });
        for (const [body, field] of [
          [{ graceSeconds: -1 }, 'graceSeconds'],
          [{ graceSeconds: 1.5 }, 'graceSeconds'],
          [{ graceSeconds: 7 * 86_400 + 1 }, 'graceSeconds'],
          [{ graceSeconds: '60' }, 'graceSeconds'],
          [{ ttl: 60 }, 'ttl'],
        ] as const) {
          const error = expectError(await as(t, t.token, 'POST', `${clientsUrl(ws, created.client.id)}/tokens`, body), 400, 'invalid_request');
          expect(error.field).toBe(field);
        }
        // Nothing was rotated: the one token still works and is still the only one.
        await expectWorks(created.token);
        expect((await getClient(created.client.id)).tokens.map((tk) => tk.id)).toEqual([created.tokenId]);
      });
    });

    it('409 already_exists for a duplicate name, on create and on rename; other workspaces are separate', async () => {
      await createClient(t, ws, { name: 'dup', role: 'app' });
      expectError(await as(t, t.token, 'POST', clientsUrl(ws), { name: 'dup', role: 'auditor' }), 409, 'already_exists');
      const other = await createClient(t, ws, { name: 'not-dup', role: 'app' });
      expectError(await as(t, t.token, 'PATCH', clientsUrl(ws, other.client.id), { name: 'dup' }), 409, 'already_exists');
      expect((await getClient(other.client.id)).name).toBe('not-dup');
      const ws2 = (await createWorkspace(t, 'clients-2')).id;
      await createClient(t, ws2, { name: 'dup', role: 'app' });
    });

    it('404 client_not_found for an unknown client id, workspace_not_found for an unknown workspace', async () => {
      const id = randomUUID();
      for (const [method, url, body] of [
        ['GET', clientsUrl(ws, id), undefined],
        ['PATCH', clientsUrl(ws, id), { disabled: true }],
        ['DELETE', clientsUrl(ws, id), undefined],
        ['POST', `${clientsUrl(ws, id)}/tokens`, {}],
      ] as const) {
        expectError(await as(t, t.token, method, url, body), 404, 'client_not_found');
        expectError(await as(t, t.token, method, url.replace(ws, randomUUID()), body), 404, 'workspace_not_found');
      }
      expectError(await as(t, t.token, 'POST', clientsUrl(randomUUID()), { name: 'x', role: 'app' }), 404, 'workspace_not_found');
      expectError(await as(t, t.token, 'GET', clientsUrl(randomUUID())), 404, 'workspace_not_found');
    });

    describe('rotation', () => {
      it('a bare POST (no body, no content-type) rotates with the default grace, and gets a JWT with the default lifetime', async () => {
        const created = await createClient(t, ws, { role: 'app' });
        const start = clock.now();
        const rotated = await t.app.inject({ method: 'POST', url: `${clientsUrl(ws, created.client.id)}/tokens`, headers: t.auth });
        expect(rotated.statusCode, rotated.body).toBe(201);
        expect(rotated.json().previousTokensExpireBy).toBe(new Date(start + t.config.tokenRotationGraceSeconds * 1000).toISOString());
        const jwt = await t.app.inject({ method: 'POST', url: '/v1/auth/token', headers: { authorization: `Bearer ${rotated.json().token}` } });
        expect(jwt.statusCode, jwt.body).toBe(200);
        expect(Date.parse(jwt.json().expiresAt)).toBe(Math.floor(start / 1000) * 1000 + t.config.jwtTtlSeconds * 1000);
      });

      it('the previous token keeps working for graceSeconds, then is refused; the new one works', async () => {
        const created = await createClient(t, ws, { role: 'auditor' });
        const start = clock.now();
        const rotated = await rotateToken(t, ws, created.client.id, 60);
        expect(rotated.token).toMatch(TOKEN_SHAPE);
        expect(rotated.token).not.toBe(created.token);
        expect(rotated.tokenId).not.toBe(created.tokenId);
        expect(rotated.previousTokensExpireBy).toBe(new Date(start + 60_000).toISOString());
        expect(rotated.expiresAt).toBe(new Date(start + t.config.tokenTtlSeconds * 1000).toISOString());
        await expectWorks(created.token);
        await expectWorks(rotated.token);
        expect((await getClient(created.client.id)).tokens.map((tk) => tk.id).sort()).toEqual([created.tokenId, rotated.tokenId].sort());

        clock.advance(59_999);
        await expectWorks(created.token);
        clock.advance(1);
        await expectRefused(created.token);
        await expectWorks(rotated.token);
        expect((await getClient(created.client.id)).tokens.map((tk) => tk.id)).toEqual([rotated.tokenId]);
      });

      it('graceSeconds 0 ends the previous token at once', async () => {
        const created = await createClient(t, ws, { role: 'auditor' });
        await expectWorks(created.token);
        const rotated = await rotateToken(t, ws, created.client.id, 0);
        expect(rotated.previousTokensExpireBy).toBe(new Date(clock.now()).toISOString());
        await expectRefused(created.token);
        await expectWorks(rotated.token);
      });

      it('without graceSeconds the server default applies', async () => {
        const created = await createClient(t, ws, { role: 'auditor' });
        const rotated = await rotateToken(t, ws, created.client.id);
        const grace = t.config.tokenRotationGraceSeconds;
        expect(rotated.previousTokensExpireBy).toBe(new Date(clock.now() + grace * 1000).toISOString());
        clock.advance(grace * 1000 - 1);
        await expectWorks(created.token);
        clock.advance(1);
        await expectRefused(created.token);
      });

      it('a later rotation with a longer grace does not bring an ended token back, nor extend one in its grace', async () => {
        const created = await createClient(t, ws, { role: 'auditor' });
        const second = await rotateToken(t, ws, created.client.id, 0);
        await expectRefused(created.token);
        const third = await rotateToken(t, ws, created.client.id, 600);
        await expectRefused(created.token);
        await expectWorks(second.token);
        // second is now in its 600 s grace; a new rotation with a longer grace must not extend it.
        clock.advance(300_000);
        await rotateToken(t, ws, created.client.id, 3600);
        clock.advance(300_000);
        await expectRefused(second.token);
        await expectWorks(third.token);
      });
    });

    it('a token stops working after the client’s tokenTtlSeconds, and rotated tokens get the same lifetime', async () => {
      const created = await createClient(t, ws, { role: 'auditor', tokenTtlSeconds: 300 });
      expect(created.expiresAt).toBe(new Date(clock.now() + 300_000).toISOString());
      clock.advance(299_999);
      await expectWorks(created.token);
      clock.advance(1);
      await expectRefused(created.token);
      expect((await getClient(created.client.id)).tokens).toEqual([]);
      const rotated = await rotateToken(t, ws, created.client.id, 0);
      expect(rotated.expiresAt).toBe(new Date(clock.now() + 300_000).toISOString());
      await expectWorks(rotated.token);
      clock.advance(300_000);
      await expectRefused(rotated.token);
    });

    it('disable: the very next request is 401; re-enabling lets the same token in again', async () => {
      const created = await createClient(t, ws, { role: 'auditor' });
      await expectWorks(created.token);
      const disabled = await asOk<ClientView>(t, t.token, 'PATCH', clientsUrl(ws, created.client.id), { disabled: true });
      expect(disabled.disabled).toBe(true);
      // No clock movement: the change must not wait for any cache to expire.
      await expectRefused(created.token);
      expectError(await as(t, created.token, 'POST', '/v1/auth/token', {}), 401, 'unauthorized');
      const enabled = await asOk<ClientView>(t, t.token, 'PATCH', clientsUrl(ws, created.client.id), { disabled: false });
      expect(enabled.disabled).toBe(false);
      await expectWorks(created.token);
    });

    it('delete: the very next request is 401, and the client is gone', async () => {
      const created = await createClient(t, ws, { role: 'auditor' });
      await expectWorks(created.token);
      const response = await as(t, t.token, 'DELETE', clientsUrl(ws, created.client.id));
      expect(response.statusCode).toBe(204);
      expect(response.body).toBe('');
      await expectRefused(created.token);
      expectError(await as(t, t.token, 'GET', clientsUrl(ws, created.client.id)), 404, 'client_not_found');
      expectError(await as(t, t.token, 'DELETE', clientsUrl(ws, created.client.id)), 404, 'client_not_found');
      // A client of the same name can be created again, with a new id and token.
      const again = await createClient(t, ws, { name: created.client.name, role: 'auditor' });
      expect(again.client.id).not.toBe(created.client.id);
      await expectRefused(created.token);
      await expectWorks(again.token);
    });

    it('a change made by a client (not only the admin token) takes effect at once', async () => {
      const admin = await createClient(t, ws, { role: 'admin' });
      const victim = await createClient(t, ws, { role: 'auditor' });
      await expectWorks(victim.token);
      await asOk(t, admin.token, 'PATCH', clientsUrl(ws, victim.client.id), { allowedCidrs: ['192.0.2.0/24'] });
      expectError(await probe(victim.token), 403, 'ip_not_allowed');
      await asOk(t, admin.token, 'PATCH', clientsUrl(ws, victim.client.id), { role: 'app' });
      expectError(await as(t, victim.token, 'GET', `/v1/workspaces/${ws}`, undefined, { remoteAddress: '192.0.2.1' }), 403, 'forbidden');
      await asOk(t, admin.token, 'DELETE', clientsUrl(ws, victim.client.id), undefined, 204);
      await expectRefused(victim.token);
    });

    describe('a client cannot grant what it does not have', () => {
      let stagingAdmin: CreatedClient;
      let wideClient: CreatedClient;
      beforeAll(async () => {
        stagingAdmin = await createClient(t, ws, { role: 'admin', environments: ['staging'] });
        wideClient = await createClient(t, ws, { role: 'app', environments: ['*'] });
      });

      it('creates clients for its own environment only', async () => {
        const own = await createClient(t, ws, { role: 'app', environments: ['staging'] }, stagingAdmin.token);
        expect(own.client.environments).toEqual(['staging']);
        for (const environments of [['production'], ['staging', 'production'], ['*'], undefined]) {
          const name = `grant-${randomUUID().slice(0, 8)}`;
          const response = await as(t, stagingAdmin.token, 'POST', clientsUrl(ws), { name, role: 'app', ...(environments ? { environments } : {}) });
          expectError(response, 403, 'forbidden');
          const list = await asOk<{ items: ClientView[] }>(t, t.token, 'GET', `${clientsUrl(ws)}?limit=1000`);
          expect(list.items.map((c) => c.name)).not.toContain(name);
        }
      });

      it('cannot widen a client’s environments beyond its own', async () => {
        const own = await createClient(t, ws, { role: 'app', environments: ['staging'] }, stagingAdmin.token);
        for (const environments of [['production'], ['*'], ['production', 'staging']]) {
          expectError(await as(t, stagingAdmin.token, 'PATCH', clientsUrl(ws, own.client.id), { environments }), 403, 'forbidden');
        }
        expect((await getClient(own.client.id)).environments).toEqual(['staging']);
        // Nor its own.
        expectError(await as(t, stagingAdmin.token, 'PATCH', clientsUrl(ws, stagingAdmin.client.id), { environments: ['*'] }), 403, 'forbidden');
        expect((await getClient(stagingAdmin.client.id)).environments).toEqual(['staging']);
      });

      it('cannot take over a client with wider access by rotating its token or editing it', async () => {
        // Rotating would hand the staging-only admin a token that works in production.
        const rotate = await as(t, stagingAdmin.token, 'POST', `${clientsUrl(ws, wideClient.client.id)}/tokens`, { graceSeconds: 0 });
        expectError(rotate, 403, 'forbidden');
        expect(rotate.body).not.toMatch(/kst_/);
        await expectWideClientUntouched();
        // Re-pointing its allowlist, role or name is managing access it does not have either.
        for (const patch of [{ allowedCidrs: ['192.0.2.0/24'] }, { role: 'admin' }, { disabled: true }, { rateLimitPerSecond: 1 }]) {
          expectError(await as(t, stagingAdmin.token, 'PATCH', clientsUrl(ws, wideClient.client.id), patch), 403, 'forbidden');
        }
        expectError(await as(t, stagingAdmin.token, 'DELETE', clientsUrl(ws, wideClient.client.id)), 403, 'forbidden');
        await expectWideClientUntouched();
      });

      async function expectWideClientUntouched(): Promise<void> {
        const view = await getClient(wideClient.client.id);
        expect(view).toMatchObject({ role: 'app', environments: ['*'], allowedCidrs: ['0.0.0.0/0', '::/0'], disabled: false, rateLimitPerSecond: null });
        expect(view.tokens.map((tk) => tk.id)).toEqual([wideClient.tokenId]);
        const encrypt = await as(t, wideClient.token, 'POST', `/v1/workspaces/${ws}/environments/production/encrypt`, { scope: { type: 'job', id: 'j' }, plaintext: '' });
        expect(encrypt.statusCode).toBe(200);
      }
    });

    it('a client cannot disable itself or drop its own admin role, but may change other things', async () => {
      const admin = await createClient(t, ws, { role: 'admin' });
      const self = clientsUrl(ws, admin.client.id);
      expectError(await as(t, admin.token, 'PATCH', self, { disabled: true }), 403, 'forbidden');
      for (const role of ['operator', 'app', 'auditor']) {
        expectError(await as(t, admin.token, 'PATCH', self, { role }), 403, 'forbidden');
      }
      expect(await getClient(admin.client.id)).toMatchObject({ role: 'admin', disabled: false });
      await expectWorks(admin.token);
      const renamed = await asOk<ClientView>(t, admin.token, 'PATCH', self, { name: `${admin.client.name}-renamed`, role: 'admin' });
      expect(renamed.name).toBe(`${admin.client.name}-renamed`);
      // Another admin client may disable it.
      const other = await createClient(t, ws, { role: 'admin' });
      await asOk(t, other.token, 'PATCH', self, { disabled: true });
      await expectRefused(admin.token);
    });
  });
}
