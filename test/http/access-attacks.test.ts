import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/core/bytes.js';
import { buildApp } from '../../src/http/app.js';
import type { App } from '../../src/http/types.js';
import { ManualClock } from '../../src/service/clock.js';
import {
  as,
  asOk,
  clientsUrl,
  createClient,
  forgeJwt,
  issueJwt,
  jwtKeyOf,
  jwtPayload,
  responseText,
  rotateToken,
  type ClientView,
  type CreatedClient,
} from '../support/access-helpers.js';
import { createWorkspace, envUrl, expectError, type InjectResult, type Method } from '../support/http-helpers.js';
import { dumpTables, encodingsOf, rawDataDirBytes } from '../support/store-dump.js';
import { TEST_ADMIN_TOKEN, openTestKeystrata, testStores, type TestKeystrata } from '../support/test-keystrata.js';

/**
 * Attacks on authentication: malformed credentials, forged and replayed JWTs, address spoofing,
 * brute force, flooding, and secrets leaking into responses, logs, metrics or the database.
 */

const UNAUTHORIZED = 'unauthorized';

for (const store of testStores()) {
  describe(`access attacks (${store})`, () => {
    let t: TestKeystrata;
    let clock: ManualClock;
    let ws: string;
    /** An auditor client with every environment and any address: GET /v1/workspaces/:ws is 200 for it. */
    let good: CreatedClient;

    beforeAll(async () => {
      clock = new ManualClock(Date.UTC(2026, 0, 1));
      t = await openTestKeystrata({ store, clock });
      ws = (await createWorkspace(t, 'attacks')).id;
      good = await createClient(t, ws, { name: 'good', role: 'auditor' });
    });
    afterAll(async () => {
      await t?.destroy();
    });

    const wsUrl = () => `/v1/workspaces/${ws}`;
    const probe = (token: string | undefined, remoteAddress?: string) => as(t, token, 'GET', wsUrl(), undefined, remoteAddress === undefined ? {} : { remoteAddress });
    const withHeader = (authorization: string) => as(t, undefined, 'GET', wsUrl(), undefined, { headers: { authorization } });
    const nowSeconds = () => Math.floor(clock.now() / 1000);

    /** Every 401 looks the same: one code, one message, nothing echoed back. */
    const expectUnauthorized = (response: InjectResult, sent?: string) => {
      const error = expectError(response, 401, UNAUTHORIZED);
      expect(Object.keys(response.json<{ error: object }>().error).sort()).toEqual(['code', 'message', 'requestId']);
      if (sent !== undefined && sent.length > 8) {
        expect(response.body).not.toContain(sent);
        expect(JSON.stringify(response.headers)).not.toContain(sent);
      }
      return error.message;
    };

    describe('malformed credentials', () => {
      it('missing or garbled Authorization headers get the same opaque 401', async () => {
        const token = good.token;
        const headers: (string | undefined)[] = [
          undefined,
          '',
          'Bearer',
          'Bearer ',
          token,
          `Basic ${Buffer.from(`x:${token}`).toString('base64')}`,
          `Token ${token}`,
          `bearer ${token}`,
          `BEARER ${token}`,
          `Bearer  ${token}`,
          `Bearer\t${token}`,
          `Bearer ${token} ${token}`,
          `Bearer ${token}\u0001`,
          `Bearer ${token}\u007f`,
          `Bearer ${token.slice(0, 10)}\u0000${token.slice(10)}`,
          `Bearer "${token}"`,
          `Bearer ${'a'.repeat(5000)}`,
          `Bearer kst_${'A'.repeat(4996)}`,
          `Bearer ${token}x`,
          `Bearer ${token.slice(0, -1)}`,
        ];
        const messages = new Set<string>();
        for (const header of headers) {
          const response = header === undefined ? await probe(undefined) : await withHeader(header);
          messages.add(expectUnauthorized(response, header === undefined ? undefined : token));
        }
        expect(messages.size).toBe(1);
        // Control: the same token, well formed, works.
        expect((await probe(token)).statusCode).toBe(200);
      });

      it('an unknown kst_ token, or a real one with a character changed, is 401 with the same message', async () => {
        const unknown = `kst_${randomBytes(32).toString('base64url')}`;
        const flipped = good.token.slice(0, -1) + (good.token.endsWith('A') ? 'B' : 'A');
        const messages = new Set([expectUnauthorized(await probe(unknown), unknown), expectUnauthorized(await probe(flipped), flipped), expectUnauthorized(await probe(undefined))]);
        expect(messages.size).toBe(1);
      });

      it('the SHA-256 of a token (what the database holds) is not itself a credential', async () => {
        expectUnauthorized(await probe(sha256Hex(good.token)));
        expectUnauthorized(await probe(`kst_${Buffer.from(sha256Hex(good.token), 'hex').toString('base64url')}`));
      });
    });

    describe('JWTs', () => {
      let key: Buffer;
      const claims = (overrides: Record<string, unknown> = {}, client: CreatedClient = good) => ({
        iss: 'keystrata',
        aud: 'keystrata',
        sub: client.client.id,
        iat: nowSeconds(),
        exp: nowSeconds() + 600,
        jti: randomUUID(),
        tid: client.tokenId,
        ...overrides,
      });

      beforeAll(() => {
        key = jwtKeyOf(t);
      });

      it('(the test derives the server’s JWT key correctly, and a correctly forged token is accepted)', async () => {
        const issued = (await issueJwt(t, good.token)).token;
        const [header, payload, signature] = issued.split('.');
        expect(createHmac('sha256', key).update(`${header}.${payload}`).digest('base64url')).toBe(signature);
        expect((await probe(forgeJwt(key, claims()))).statusCode).toBe(200);
      });

      it('an issued JWT has the documented claims and lifetime, and works until exp + skew', async () => {
        const issuedAt = nowSeconds();
        const { token, tokenType, expiresAt } = await issueJwt(t, good.token);
        expect(tokenType).toBe('Bearer');
        const payload = jwtPayload(token);
        expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())).toEqual({ alg: 'HS256', typ: 'JWT' });
        expect(payload).toMatchObject({ iss: 'keystrata', aud: 'keystrata', sub: good.client.id, tid: good.tokenId, iat: issuedAt, exp: issuedAt + t.config.jwtTtlSeconds });
        expect(expiresAt).toBe(new Date((issuedAt + t.config.jwtTtlSeconds) * 1000).toISOString());
        expect((await probe(token)).statusCode).toBe(200);
        clock.advance((t.config.jwtTtlSeconds + t.config.jwtClockSkewSeconds) * 1000 - 1);
        expect((await probe(token)).statusCode).toBe(200);
        clock.advance(1);
        expectUnauthorized(await probe(token), token);
      });

      it('expired tokens are refused', async () => {
        expectUnauthorized(await probe(forgeJwt(key, claims({ iat: nowSeconds() - 1000, exp: nowSeconds() - 100 }))));
        expectUnauthorized(await probe(forgeJwt(key, claims({ iat: nowSeconds() - 600, exp: nowSeconds() - t.config.jwtClockSkewSeconds }))));
        // Inside the skew it is still accepted.
        expect((await probe(forgeJwt(key, claims({ iat: nowSeconds() - 600, exp: nowSeconds() - t.config.jwtClockSkewSeconds + 1 })))).statusCode).toBe(200);
      });

      it('not-yet-valid tokens (nbf or iat in the future beyond the skew) are refused; within the skew accepted', async () => {
        const skew = t.config.jwtClockSkewSeconds;
        const now = nowSeconds();
        expectUnauthorized(await probe(forgeJwt(key, claims({ nbf: now + skew + 1 }))));
        expectUnauthorized(await probe(forgeJwt(key, claims({ nbf: now + 3600 }))));
        expectUnauthorized(await probe(forgeJwt(key, claims({ iat: now + skew + 1, exp: now + skew + 601 }))));
        expect((await probe(forgeJwt(key, claims({ nbf: now + skew })))).statusCode).toBe(200);
        expect((await probe(forgeJwt(key, claims({ nbf: now + 30 })))).statusCode).toBe(200);
        expect((await probe(forgeJwt(key, claims({ iat: now + 30, exp: now + 630 })))).statusCode).toBe(200);
      });

      it('a wrong signature, or any change to a signed token, is refused', async () => {
        const issued = (await issueJwt(t, good.token)).token;
        const [header, payload, signature] = issued.split('.') as [string, string, string];
        expectUnauthorized(await probe(forgeJwt(randomBytes(32), claims())));
        expectUnauthorized(await probe(forgeJwt(Buffer.alloc(32), claims())));
        const otherChar = (c: string) => (c === 'A' ? 'B' : 'A');
        expectUnauthorized(await probe(`${header}.${payload}.${otherChar(signature[0]!)}${signature.slice(1)}`));
        expectUnauthorized(await probe(`${header}.${payload}.${signature.slice(0, -2)}`));
        expectUnauthorized(await probe(`${header}.${payload}.`));
        expectUnauthorized(await probe(`${header}.${payload}`));
        // Payload changed (a longer lifetime), old signature kept.
        const stretched = Buffer.from(JSON.stringify({ ...jwtPayload(issued), exp: nowSeconds() + 10 * 86_400 })).toString('base64url');
        expectUnauthorized(await probe(`${header}.${stretched}.${signature}`));
        expect((await probe(issued)).statusCode).toBe(200);
      });

      it('alg none, RS256 (HS/RS confusion), other algorithms and key-reference headers are refused', async () => {
        const payload = claims();
        const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
        expectUnauthorized(await probe(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`));
        expectUnauthorized(await probe(`${b64({ alg: 'none' })}.${b64(payload)}.${b64('x')}`));
        for (const header of [
          { alg: 'none', typ: 'JWT' },
          { alg: 'None', typ: 'JWT' },
          // An attacker's hope: we take the "RS256 public key" as the HMAC secret. The MAC below is
          // made with the real HS256 key, so only the header's alg can be the reason for refusal.
          { alg: 'RS256', typ: 'JWT' },
          { alg: 'ES256', typ: 'JWT' },
          { alg: 'HS512', typ: 'JWT' },
          { alg: 'hs256', typ: 'JWT' },
          { typ: 'JWT' },
          { alg: 'HS256', typ: 'JWT', jku: 'https://attacker.example/keys' },
          { alg: 'HS256', typ: 'JWT', jwk: { kty: 'oct', k: 'AAAA' } },
          { alg: 'HS256', typ: 'JWT', crit: ['exp'] },
          { alg: 'HS256', typ: 'JOSE+JSON' },
        ]) {
          expectUnauthorized(await probe(forgeJwt(key, payload, header)));
        }
        // Control: same payload, same key, plain header.
        expect((await probe(forgeJwt(key, payload))).statusCode).toBe(200);
      });

      it('a lifetime above the maximum is refused even when correctly signed and still valid', async () => {
        const max = t.config.jwtMaxLifetimeSeconds;
        expectUnauthorized(await probe(forgeJwt(key, claims({ exp: nowSeconds() + max + 1 }))));
        expectUnauthorized(await probe(forgeJwt(key, claims({ iat: nowSeconds() - 10, exp: nowSeconds() + 365 * 86_400 }))));
        expect((await probe(forgeJwt(key, claims({ exp: nowSeconds() + max })))).statusCode).toBe(200);
      });

      it('wrong issuer, audience, missing claims, or a token id of another client are refused', async () => {
        const other = await createClient(t, ws, { role: 'auditor' });
        for (const bad of [
          claims({ iss: 'someone-else' }),
          claims({ aud: 'someone-else' }),
          claims({ aud: ['keystrata'] }),
          claims({ exp: undefined }),
          claims({ tid: undefined }),
          claims({ sub: undefined }),
          claims({ exp: `${nowSeconds() + 600}` }),
          claims({ tid: randomUUID() }),
          claims({ sub: randomUUID() }),
          // Client `other`, but the API token id of `good`.
          claims({ sub: other.client.id }),
        ]) {
          expectUnauthorized(await probe(forgeJwt(key, bad)));
        }
      });

      it('a JWT dies with the API token it was exchanged for (rotation with grace 0), and at the end of a grace', async () => {
        const client = await createClient(t, ws, { role: 'auditor' });
        const jwt = (await issueJwt(t, client.token)).token;
        expect((await probe(jwt)).statusCode).toBe(200);
        const rotated = await rotateToken(t, ws, client.client.id, 0);
        expectUnauthorized(await probe(jwt), jwt);
        // A JWT of the new token works; with a 60 s grace the old one's JWT lives exactly 60 s.
        const jwt2 = (await issueJwt(t, rotated.token)).token;
        expect((await probe(jwt2)).statusCode).toBe(200);
        await rotateToken(t, ws, client.client.id, 60);
        clock.advance(59_999);
        expect((await probe(jwt2)).statusCode).toBe(200);
        clock.advance(1);
        expectUnauthorized(await probe(jwt2), jwt2);
      });

      it('a JWT of a disabled client is refused at once, of a re-enabled one accepted, of a deleted one refused', async () => {
        const client = await createClient(t, ws, { role: 'auditor' });
        const jwt = (await issueJwt(t, client.token)).token;
        await asOk(t, t.token, 'PATCH', clientsUrl(ws, client.client.id), { disabled: true });
        expectUnauthorized(await probe(jwt), jwt);
        await asOk(t, t.token, 'PATCH', clientsUrl(ws, client.client.id), { disabled: false });
        expect((await probe(jwt)).statusCode).toBe(200);
        await asOk(t, t.token, 'DELETE', clientsUrl(ws, client.client.id), undefined, 204);
        expectUnauthorized(await probe(jwt), jwt);
      });

      it('a JWT cannot mint another JWT, and the admin token cannot mint one (403)', async () => {
        const jwt = (await issueJwt(t, good.token)).token;
        const fromJwt = await as(t, jwt, 'POST', '/v1/auth/token', {});
        expectError(fromJwt, 403, 'forbidden');
        expect(fromJwt.body).not.toMatch(/eyJ/);
        const fromAdmin = await as(t, TEST_ADMIN_TOKEN, 'POST', '/v1/auth/token', {});
        expectError(fromAdmin, 403, 'forbidden');
        expect(fromAdmin.body).not.toMatch(/eyJ/);
        // Neither can someone without a credential.
        expectUnauthorized(await as(t, undefined, 'POST', '/v1/auth/token', {}));
      });

      it('a requested lifetime above the maximum is capped; below it is honoured; outside the schema 400', async () => {
        const max = t.config.jwtMaxLifetimeSeconds;
        expect(max).toBeLessThan(86_400);
        const capped = await issueJwt(t, good.token, 86_400);
        const cappedClaims = jwtPayload(capped.token) as { iat: number; exp: number };
        expect(cappedClaims.exp - cappedClaims.iat).toBe(max);
        expect(capped.expiresAt).toBe(new Date(cappedClaims.exp * 1000).toISOString());
        expect((await probe(capped.token)).statusCode).toBe(200);
        const short = jwtPayload((await issueJwt(t, good.token, 120)).token) as { iat: number; exp: number };
        expect(short.exp - short.iat).toBe(120);
        for (const ttlSeconds of [86_401, 59, 0, -5, 1.5, '600']) {
          const error = expectError(await as(t, good.token, 'POST', '/v1/auth/token', { ttlSeconds }), 400, 'invalid_request');
          expect(error.field).toBe('ttlSeconds');
        }
      });
    });

    describe('IP allowlists', () => {
      it('IPv4: the address and its IPv4-mapped form are allowed, others are 403 ip_not_allowed', async () => {
        const client = await createClient(t, ws, { role: 'auditor', allowedCidrs: ['10.0.0.0/24'] });
        for (const address of ['10.0.0.5', '::ffff:10.0.0.5', '10.0.0.255']) expect((await probe(client.token, address)).statusCode, address).toBe(200);
        for (const address of ['10.0.1.5', '::ffff:10.0.1.5', '2001:db8::1', '127.0.0.1', '::1', '::a00:5']) {
          expectError(await probe(client.token, address), 403, 'ip_not_allowed');
        }
      });

      it('IPv6: only the listed network; IPv4 peers are not inside an IPv6 network', async () => {
        const client = await createClient(t, ws, { role: 'auditor', allowedCidrs: ['2001:db8::/32'] });
        for (const address of ['2001:db8::1', '2001:db8:ffff::1', '2001:DB8::1']) expect((await probe(client.token, address)).statusCode, address).toBe(200);
        for (const address of ['2001:db9::1', '10.0.0.5', '::ffff:10.0.0.5', '::1']) {
          expectError(await probe(client.token, address), 403, 'ip_not_allowed');
        }
      });

      it('an IPv4-mapped CIDR means the IPv4 network it spells', async () => {
        const client = await createClient(t, ws, { role: 'auditor', allowedCidrs: ['::ffff:10.0.0.0/120'] });
        expect((await probe(client.token, '10.0.0.5')).statusCode).toBe(200);
        expect((await probe(client.token, '::ffff:10.0.0.5')).statusCode).toBe(200);
        expectError(await probe(client.token, '10.0.1.5'), 403, 'ip_not_allowed');
      });

      it('the allowlist applies to JWTs too, and to issuing them', async () => {
        const client = await createClient(t, ws, { role: 'auditor', allowedCidrs: ['10.0.0.0/24'] });
        const jwt = (await issueJwt(t, client.token, undefined, { remoteAddress: '10.0.0.7' })).token;
        expect((await probe(jwt, '10.0.0.8')).statusCode).toBe(200);
        expectError(await probe(jwt, '192.0.2.1'), 403, 'ip_not_allowed');
        expectError(await as(t, client.token, 'POST', '/v1/auth/token', {}, { remoteAddress: '192.0.2.1' }), 403, 'ip_not_allowed');
      });

      it('a wrong credential from outside the allowlist is a plain 401 (the allowlist is no oracle)', async () => {
        await createClient(t, ws, { role: 'auditor', allowedCidrs: ['10.0.0.0/24'] });
        expectUnauthorized(await probe(`kst_${randomBytes(32).toString('base64url')}`, '192.0.2.1'));
      });

      it('X-Forwarded-For from a peer that is not a trusted proxy is ignored', async () => {
        const client = await createClient(t, ws, { role: 'auditor', allowedCidrs: ['10.0.0.0/24'] });
        for (const forwarded of ['10.0.0.5', '10.0.0.5, 10.0.0.6', '192.0.2.1, 10.0.0.5']) {
          const response = await as(t, client.token, 'GET', wsUrl(), undefined, { remoteAddress: '192.0.2.1', headers: { 'x-forwarded-for': forwarded } });
          expectError(response, 403, 'ip_not_allowed');
        }
        const view = await asOk<ClientView>(t, t.token, 'GET', clientsUrl(ws, client.client.id));
        expect(view.usage.lastUsedIp).toBe('192.0.2.1');
      });

      describe('behind a trusted proxy', () => {
        let tp: TestKeystrata;
        let pws: string;
        let client: CreatedClient;
        beforeAll(async () => {
          tp = await openTestKeystrata({ store, env: { KEYSTRATA_TRUSTED_PROXIES: '192.0.2.10, 192.0.2.11' } });
          pws = (await createWorkspace(tp, 'proxied')).id;
          client = await createClient(tp, pws, { role: 'auditor', allowedCidrs: ['10.0.0.0/24'] });
        });
        afterAll(async () => {
          await tp?.destroy();
        });
        const via = (peer: string, forwarded?: string) =>
          as(tp, client.token, 'GET', `/v1/workspaces/${pws}`, undefined, { remoteAddress: peer, headers: forwarded === undefined ? {} : { 'x-forwarded-for': forwarded } });

        it('X-Forwarded-For from a trusted proxy gives the client address', async () => {
          expect((await via('192.0.2.10', '10.0.0.5')).statusCode).toBe(200);
          // Through two trusted proxies.
          expect((await via('192.0.2.10', '10.0.0.5, 192.0.2.11')).statusCode).toBe(200);
          expectError(await via('192.0.2.10', '198.51.100.9'), 403, 'ip_not_allowed');
          const view = await asOk<ClientView>(tp, tp.token, 'GET', clientsUrl(pws, client.client.id));
          expect(view.usage.lastUsedIp).toBe('198.51.100.9');
        });

        it('a value the client prepended is not believed: the nearest untrusted hop counts', async () => {
          // The proxy appends the real peer (198.51.100.9) after what the client sent.
          expectError(await via('192.0.2.10', '10.0.0.5, 198.51.100.9'), 403, 'ip_not_allowed');
        });

        it('an untrusted peer’s X-Forwarded-For is still ignored', async () => {
          expectError(await via('198.51.100.9', '10.0.0.5'), 403, 'ip_not_allowed');
          expectError(await via('192.0.2.12', '10.0.0.5'), 403, 'ip_not_allowed');
        });
      });
    });

    describe('brute force', () => {
      let tb: TestKeystrata;
      let bclock: ManualClock;
      let bws: string;
      let client: CreatedClient;
      beforeAll(async () => {
        bclock = new ManualClock(Date.UTC(2026, 0, 1));
        tb = await openTestKeystrata({ store, clock: bclock, env: { KEYSTRATA_AUTH_FAILURES_PER_MINUTE: '5' } });
        bws = (await createWorkspace(tb, 'brute')).id;
        client = await createClient(tb, bws, { role: 'auditor' });
      });
      afterAll(async () => {
        await tb?.destroy();
      });
      const attempt = (token: string | undefined, remoteAddress: string, headers: Record<string, string> = {}) =>
        as(tb, token, 'GET', `/v1/workspaces/${bws}`, undefined, { remoteAddress, headers });
      const guess = () => `kst_${randomBytes(32).toString('base64url')}`;

      it('after 5 failures an address gets 429 with Retry-After, even with a valid token, until time passes', async () => {
        const attacker = '198.51.100.1';
        for (let i = 0; i < 5; i++) expectUnauthorized(await attempt(guess(), attacker));
        const blocked = await attempt(guess(), attacker);
        const error = expectError(blocked, 429, 'rate_limited');
        const retryAfter = Number(blocked.headers['retry-after']);
        expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
        expect(error.details).toEqual({ retryAfterSeconds: retryAfter });
        // 5 per minute refills one attempt every 12 s.
        expect(retryAfter).toBe(12);

        // A valid API token, the admin token, no token, a spoofed X-Forwarded-For: all stopped.
        expectError(await attempt(client.token, attacker), 429, 'rate_limited');
        expectError(await attempt(tb.token, attacker), 429, 'rate_limited');
        expectError(await attempt(undefined, attacker), 429, 'rate_limited');
        expectError(await attempt(client.token, attacker, { 'x-forwarded-for': '203.0.113.5' }), 429, 'rate_limited');
        // The same address written as IPv4-mapped IPv6 is the same address.
        expectError(await attempt(client.token, `::ffff:${attacker}`), 429, 'rate_limited');

        // Other addresses are unaffected.
        expect((await attempt(client.token, '198.51.100.2')).statusCode).toBe(200);
        expectUnauthorized(await attempt(guess(), '198.51.100.2'));

        bclock.advance(retryAfter * 1000 - 1);
        expectError(await attempt(client.token, attacker), 429, 'rate_limited');
        bclock.advance(1);
        expect((await attempt(client.token, attacker)).statusCode).toBe(200);
        // One attempt earned back: a bad one spends it, the next is stopped again.
        expectUnauthorized(await attempt(guess(), attacker));
        expectError(await attempt(client.token, attacker), 429, 'rate_limited');
      });

      it('an IPv6 attacker is limited per /64 (one host usually owns a whole /64, so rotating addresses in it does not help)', async () => {
        const attacker = '2001:db8:bad::1';
        // Five guesses from five addresses of one /64 spend the one budget.
        for (let i = 1; i <= 5; i++) expectUnauthorized(await attempt(guess(), `2001:db8:bad:0:${i}::${i}`));
        expectError(await attempt(client.token, attacker), 429, 'rate_limited');
        expectError(await attempt(client.token, '2001:DB8:BAD:0::1'), 429, 'rate_limited');
        expectError(await attempt(client.token, '2001:db8:bad::ffff:2'), 429, 'rate_limited');
        // The next /64 is another network.
        expect((await attempt(client.token, '2001:db8:bad:1::2')).statusCode).toBe(200);
      });

      it('forbidden and ip_not_allowed answers do not count as failed authentication', async () => {
        const address = '198.51.100.3';
        const narrow = await createClient(tb, bws, { role: 'app', allowedCidrs: ['10.0.0.0/8'] });
        for (let i = 0; i < 10; i++) {
          expectError(await attempt(narrow.token, address), 403, 'ip_not_allowed');
        }
        const app = await createClient(tb, bws, { role: 'app' });
        for (let i = 0; i < 10; i++) expectError(await attempt(app.token, address), 403, 'forbidden');
        expect((await attempt(client.token, address)).statusCode).toBe(200);
      });
    });

    describe('per-client rate limit', () => {
      it('rateLimitPerSecond 2 (bursts of twice that): the request after the burst is 429 with Retry-After, and it recovers', async () => {
        const limited = await createClient(t, ws, { role: 'auditor', rateLimitPerSecond: 2 });
        const other = await createClient(t, ws, { role: 'auditor', rateLimitPerSecond: 2 });
        // The documented burst (access-schemas: "bursts of twice that"): 4 requests at one instant.
        for (let i = 0; i < 4; i++) expect((await probe(limited.token)).statusCode, `request ${i + 1}`).toBe(200);
        const refused = await probe(limited.token);
        const error = expectError(refused, 429, 'rate_limited');
        const retryAfter = Number(refused.headers['retry-after']);
        expect(retryAfter).toBeGreaterThanOrEqual(1);
        expect(error.details).toEqual({ retryAfterSeconds: retryAfter });

        // The limit is per client: its JWT shares it, another client does not.
        const jwt = forgeJwt(jwtKeyOf(t), { iss: 'keystrata', aud: 'keystrata', sub: limited.client.id, iat: nowSeconds(), exp: nowSeconds() + 600, jti: randomUUID(), tid: limited.tokenId });
        expectError(await probe(jwt), 429, 'rate_limited');
        expectError(await probe(limited.token, '203.0.113.77'), 429, 'rate_limited');
        expect((await probe(other.token)).statusCode).toBe(200);

        // A refusal costs nothing: after 500 ms (one token at 2/s) exactly one more goes through.
        clock.advance(500);
        expect((await probe(limited.token)).statusCode).toBe(200);
        expectError(await probe(limited.token), 429, 'rate_limited');
        clock.advance(retryAfter * 1000);
        expect((await probe(limited.token)).statusCode).toBe(200);
      });

      it('a changed limit applies at once', async () => {
        const client = await createClient(t, ws, { role: 'auditor', rateLimitPerSecond: 1 });
        for (let i = 0; i < 2; i++) expect((await probe(client.token)).statusCode).toBe(200);
        expectError(await probe(client.token), 429, 'rate_limited');
        await asOk(t, t.token, 'PATCH', clientsUrl(ws, client.client.id), { rateLimitPerSecond: 1000 });
        // The bucket keeps its level but refills at the new rate.
        clock.advance(10);
        expect((await probe(client.token)).statusCode).toBe(200);
      });
    });

    describe('secrets never leak', () => {
      let tl: TestKeystrata;
      let app: App;
      const logLines: string[] = [];
      const METRICS_TOKEN = 'metrics-token-' + 'm'.repeat(40);

      beforeAll(async () => {
        tl = await openTestKeystrata({ store, env: { KEYSTRATA_METRICS_TOKEN: METRICS_TOKEN } });
        // The same keystrata behind an app that logs everything, into a buffer.
        app = await buildApp(tl.ks, { ...tl.config, logLevel: 'trace', logStream: { write: (line: string) => void logLines.push(line) } });
        await app.ready();
      });
      afterAll(async () => {
        await app?.close();
        await tl?.destroy();
      });

      it('tokens and JWTs appear only in the response that hands them out: not in other responses, logs, metrics or the database', async () => {
        const responses: { label: string; text: string }[] = [];
        const send = async (label: string, token: string | undefined, method: Method, url: string, payload?: unknown, options: { remoteAddress?: string; headers?: Record<string, string> } = {}) => {
          const response = await as({ app }, token, method, url, payload, options);
          responses.push({ label, text: responseText(response) });
          return response;
        };
        const sendOk = async <T>(label: string, token: string, method: Method, url: string, payload: unknown, status: number) => {
          const response = await send(label, token, method, url, payload);
          expect(response.statusCode, `${label}: ${response.body}`).toBe(status);
          return (response.body === '' ? undefined : response.json()) as T;
        };
        /** secret → the label of the one response allowed to contain it. */
        const secrets = new Map<string, string | undefined>([
          [TEST_ADMIN_TOKEN, undefined],
          [METRICS_TOKEN, undefined],
        ]);

        const lws = (await sendOk<{ id: string }>('create workspace', TEST_ADMIN_TOKEN, 'POST', '/v1/workspaces', { name: 'leaks' }, 201)).id;
        const made: Record<string, CreatedClient> = {};
        for (const [name, body] of [
          ['owner', { role: 'admin' }],
          ['app', { role: 'app', allowedCidrs: ['10.0.0.0/8'] }],
          ['auditor', { role: 'auditor' }],
        ] as const) {
          made[name] = await sendOk<CreatedClient>(`create ${name}`, TEST_ADMIN_TOKEN, 'POST', clientsUrl(lws), { name, ...body }, 201);
          secrets.set(made[name].token, `create ${name}`);
        }
        const { owner, app: appClient, auditor } = made as Record<'owner' | 'app' | 'auditor', CreatedClient>;
        // A client created by a client.
        const child = await sendOk<CreatedClient>('create child', owner.token, 'POST', clientsUrl(lws), { name: 'child', role: 'app' }, 201);
        secrets.set(child.token, 'create child');

        const encryptBody = { scope: { type: 'job', id: 'j1' }, plaintext: 'aGVsbG8=' };
        await send('app encrypts', appClient.token, 'POST', `${envUrl(lws)}/encrypt`, encryptBody, { remoteAddress: '10.1.2.3' });
        await send('owner lists clients', owner.token, 'GET', clientsUrl(lws));
        await send('auditor reads audit', auditor.token, 'GET', `/v1/workspaces/${lws}/audit`);

        const ownerRotated = await sendOk<{ token: string }>('rotate owner', TEST_ADMIN_TOKEN, 'POST', `${clientsUrl(lws, owner.client.id)}/tokens`, { graceSeconds: 600 }, 201);
        secrets.set(ownerRotated.token, 'rotate owner');
        const auditorRotated = await sendOk<{ token: string }>('rotate auditor', owner.token, 'POST', `${clientsUrl(lws, auditor.client.id)}/tokens`, { graceSeconds: 0 }, 201);
        secrets.set(auditorRotated.token, 'rotate auditor');

        const ownerJwt = (await sendOk<{ token: string }>('jwt owner', ownerRotated.token, 'POST', '/v1/auth/token', {}, 200)).token;
        secrets.set(ownerJwt, 'jwt owner');
        const appJwtResponse = await send('jwt app', appClient.token, 'POST', '/v1/auth/token', { ttlSeconds: 300 }, { remoteAddress: '10.1.2.3' });
        const appJwt = appJwtResponse.json<{ token: string }>().token;
        secrets.set(appJwt, 'jwt app');
        await send('owner jwt reads', ownerJwt, 'GET', clientsUrl(lws, appClient.client.id));
        await send('app jwt encrypts', appJwt, 'POST', `${envUrl(lws)}/encrypt`, encryptBody, { remoteAddress: '10.1.2.3' });

        // Failures of every kind, several carrying a real secret.
        const failures: [string, string | undefined, Method, string, unknown, Record<string, string>?, string?][] = [
          ['app from outside its allowlist', appClient.token, 'GET', `${envUrl(lws)}/objects`, undefined, {}, '192.0.2.1'],
          ['app jwt from outside its allowlist', appJwt, 'GET', `${envUrl(lws)}/objects`, undefined, {}, '192.0.2.1'],
          ['rotated-away auditor token', auditor.token, 'GET', `/v1/workspaces/${lws}`, undefined],
          ['owner token with a character changed', `${owner.token.slice(0, -1)}${owner.token.endsWith('A') ? 'B' : 'A'}`, 'GET', `/v1/workspaces/${lws}`, undefined],
          ['owner jwt tampered', `${ownerJwt.slice(0, -1)}${ownerJwt.endsWith('A') ? 'B' : 'A'}`, 'GET', `/v1/workspaces/${lws}`, undefined],
          ['auditor forbidden route', auditorRotated.token, 'POST', clientsUrl(lws), { name: 'nope', role: 'app' }],
          ['jwt minting a jwt', ownerJwt, 'POST', '/v1/auth/token', {}],
          ['admin minting a jwt', TEST_ADMIN_TOKEN, 'POST', '/v1/auth/token', {}],
          ['client token for metrics', ownerRotated.token, 'GET', '/metrics', undefined],
          ['owner in another workspace', ownerRotated.token, 'GET', `/v1/workspaces/${randomUUID()}`, undefined],
          ['owner with a bad body', ownerRotated.token, 'POST', clientsUrl(lws), { name: 'x', role: 'app', token: 'kst_' }],
          ['basic auth', undefined, 'GET', `/v1/workspaces/${lws}`, undefined, { authorization: `Basic ${Buffer.from(`x:${owner.token}`).toString('base64')}` }],
          ['lowercase bearer', undefined, 'GET', `/v1/workspaces/${lws}`, undefined, { authorization: `bearer ${owner.token}` }],
          ['token in x-api-key', undefined, 'GET', `/v1/workspaces/${lws}`, undefined, { 'x-api-key': owner.token }],
          ['admin token with lowercase bearer', undefined, 'GET', '/v1/workspaces', undefined, { authorization: `bearer ${TEST_ADMIN_TOKEN}` }],
        ];
        for (const [label, token, method, url, payload, headers, remoteAddress] of failures) {
          const response = await send(label, token, method, url, payload, { headers: headers ?? {}, ...(remoteAddress ? { remoteAddress } : {}) });
          expect(response.statusCode, `${label}: ${response.body}`).toBeGreaterThanOrEqual(400);
        }
        await sendOk('disable app', owner.token, 'PATCH', clientsUrl(lws, appClient.client.id), { disabled: true }, 200);
        await send('disabled app jwt', appJwt, 'POST', `${envUrl(lws)}/encrypt`, encryptBody, { remoteAddress: '10.1.2.3' });
        await sendOk('delete child', TEST_ADMIN_TOKEN, 'DELETE', clientsUrl(lws, child.client.id), undefined, 204);
        await send('deleted child', child.token, 'POST', `${envUrl(lws)}/encrypt`, encryptBody);
        await sendOk('list clients', TEST_ADMIN_TOKEN, 'GET', `${clientsUrl(lws)}?limit=1000`, undefined, 200);
        for (const c of [owner, appClient, auditor]) await sendOk(`get ${c.client.name}`, TEST_ADMIN_TOKEN, 'GET', clientsUrl(lws, c.client.id), undefined, 200);
        await sendOk('read audit', TEST_ADMIN_TOKEN, 'GET', `/v1/workspaces/${lws}/audit?limit=1000`, undefined, 200);
        const metricsResponse = await send('metrics', METRICS_TOKEN, 'GET', '/metrics');
        expect(metricsResponse.statusCode).toBe(200);
        await tl.ks.usage.flush();
        await tl.ks.audit.flush();

        /** A secret and the forms it could take elsewhere: encodings, and a token's random part alone. */
        const formsOf = (secret: string): string[] => {
          const forms = encodingsOf(secret);
          if (secret.startsWith('kst_')) forms.push(...encodingsOf(secret.slice(4)));
          // A JWT's signature is the part that matters.
          if (secret.split('.').length === 3) forms.push(secret.split('.')[2]!);
          return forms;
        };

        // (a) Responses: each secret is in exactly the response that issued it.
        for (const [secret, issuedBy] of secrets) {
          const containing = responses.filter((r) => formsOf(secret).some((form) => r.text.includes(form))).map((r) => r.label);
          expect(containing, `${secret.slice(0, 12)}…`).toEqual(issuedBy === undefined ? [] : [issuedBy]);
        }

        // (b) The server log (trace level: every request, every failure).
        const log = logLines.join('');
        expect(log).toContain('authentication failed');
        expect(log).toContain(`/v1/workspaces/${lws}`);
        for (const secret of secrets.keys()) for (const form of formsOf(secret)) expect(log.includes(form), `log holds ${secret.slice(0, 12)}…`).toBe(false);

        // (c) Metrics.
        const metrics = metricsResponse.body;
        expect(metrics).toContain('keystrata_auth_failures_total');
        for (const secret of secrets.keys()) for (const form of formsOf(secret)) expect(metrics.includes(form)).toBe(false);

        // (d) The database: no secret in any form; the SHA-256 of the live tokens is there.
        const dump = await dumpTables(tl.handle);
        const raw = store === 'sqlite' ? rawDataDirBytes(tl.handle) : undefined;
        for (const secret of secrets.keys()) {
          for (const form of formsOf(secret)) {
            expect(dump.includes(form), `database holds ${secret.slice(0, 12)}…`).toBe(false);
            if (raw) expect(raw.includes(Buffer.from(form)), `database files hold ${secret.slice(0, 12)}…`).toBe(false);
          }
        }
        for (const live of [owner.token, ownerRotated.token, appClient.token, auditorRotated.token]) {
          expect(dump).toContain(sha256Hex(live));
          if (raw) expect(raw.includes(Buffer.from(sha256Hex(live)))).toBe(true);
        }
      });
    });
  });
}
