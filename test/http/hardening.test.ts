import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqlitePath } from '../../src/service/keystrata.js';
import { call, createWorkspace, encrypt, envUrl, expectError, ok } from '../support/http-helpers.js';
import { TEST_DATABASE_URL, openTestKeystrata, testStores, type StoreKind, type TestKeystrata, type TestStoreHandle } from '../support/test-keystrata.js';

/** Run one SQL statement directly against a test store, behind keystrata's back. */
async function tamper(handle: TestStoreHandle, sql: string): Promise<void> {
  if (handle.kind === 'sqlite') {
    const db = new Database(sqlitePath({ dataDir: handle.dataDir }));
    try {
      db.exec(sql);
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL, options: `-c search_path=${handle.schema}` });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

describe('request hardening (sqlite)', () => {
  let t: TestKeystrata;
  let ws: string;
  beforeAll(async () => {
    t = await openTestKeystrata();
    ws = (await createWorkspace(t)).id;
  });
  afterAll(() => t.destroy());

  it('a DELETE with content-type: application/json and no body works', async () => {
    const object = await ok<{ id: string }>(t, 'POST', `${envUrl(ws)}/objects`, { name: 'to-delete', value: 'v', context: { org: 'o' } }, 201);
    const response = await t.app.inject({
      method: 'DELETE',
      url: `${envUrl(ws)}/objects/${object.id}`,
      headers: { ...t.auth, 'content-type': 'application/json' },
    });
    expect(response.statusCode, response.body).toBe(204);
  });

  it('a POST with an empty JSON body is a clear invalid_request', async () => {
    const response = await t.app.inject({ method: 'POST', url: '/v1/workspaces', headers: { ...t.auth, 'content-type': 'application/json' }, payload: '' });
    expectError(response, 400, 'invalid_request');
  });

  it('key context keys outside the allowed pattern, or non-string values, are refused with the field named', async () => {
    for (const context of [{ 'a b': 'x' }, { ok: 'x', 'bad key!': 'y' }, { org: { nested: [1] } }, { org: 1 }, {}]) {
      const response = await call(t, 'POST', `${envUrl(ws)}/objects`, { name: 'ctx-test', value: 'v', context });
      const error = expectError(response, 400, 'invalid_request');
      expect(error.field ?? '').toMatch(/^context/);
    }
    // And listing still works afterwards (nothing malformed was stored).
    await ok(t, 'GET', `${envUrl(ws)}/objects`, undefined);
  });

  it('pagination works through objects with the longest allowed multi-byte names', async () => {
    const names = ['ä', 'é', 'ö', 'ü'].map((c) => c.repeat(256));
    for (const name of names) await ok(t, 'POST', `${envUrl(ws)}/objects`, { name, value: 'v', context: { org: 'long' } }, 201);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? '?limit=1' : `?limit=1&cursor=${encodeURIComponent(cursor)}`;
      const page = await ok<{ items: { name: string }[]; nextCursor: string | null }>(t, 'GET', `${envUrl(ws)}/objects${query}`, undefined);
      seen.push(...page.items.map((i) => i.name));
      cursor = page.nextCursor;
    } while (cursor !== null);
    for (const name of names) expect(seen.filter((n) => n === name)).toHaveLength(1);
  });

  it('a malformed URL (bad percent-encoding) is invalid_request in the usual error body', async () => {
    const response = await t.app.inject({ method: 'GET', url: `/v1/workspaces/${ws}/environments/%zz/keys`, headers: t.auth });
    expectError(response, 400, 'invalid_request');
  });

  it('metadata nested deeper than 32 levels is invalid_request, not a stack overflow', async () => {
    // Built as text: JSON.stringify itself would overflow on 6,000 levels.
    const payload = `{"name":"deep","value":"v","context":{"org":"o"},"metadata":{"deep":${'['.repeat(6000)}"leaf"${']'.repeat(6000)}}}`;
    const response = await t.app.inject({ method: 'POST', url: `${envUrl(ws)}/objects`, headers: { ...t.auth, 'content-type': 'application/json' }, payload });
    expect(expectError(response, 400, 'invalid_request').field).toBe('metadata');
    let fine: unknown = 'leaf';
    for (let i = 0; i < 30; i++) fine = [fine];
    await ok(t, 'POST', `${envUrl(ws)}/objects`, { name: 'fine', value: 'v', context: { org: 'o' }, metadata: { fine } }, 201);
  });

  it('limit must be 1–1000', async () => {
    for (const limit of ['0', '1001', '-1', 'abc', '01']) {
      const error = expectError(await call(t, 'GET', `${envUrl(ws)}/objects?limit=${limit}`), 400, 'invalid_request');
      expect(error.field).toBe('limit');
    }
    await ok(t, 'GET', `${envUrl(ws)}/objects?limit=1000`, undefined);
  });

  it('reading an old version reports when that version was written', async () => {
    const object = await ok<{ id: string }>(t, 'POST', `${envUrl(ws)}/objects`, { name: 'versioned', value: 'one', context: { org: 'o' } }, 201);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const updated = await ok<{ updatedAt: string }>(t, 'PUT', `${envUrl(ws)}/objects/${object.id}`, { value: 'two', expectedVersion: 1 });
    const first = await ok<{ value: string; version: number; updatedAt: string }>(t, 'GET', `${envUrl(ws)}/objects/${object.id}/versions/1`, undefined);
    expect(first).toMatchObject({ value: 'one', version: 1 });
    expect(Date.parse(first.updatedAt)).toBeLessThan(Date.parse(updated.updatedAt));
  });
});

/** SQL that overwrites the wrapped bytes of every key of `kind` with random bytes of the same length. */
function randomizeWrapped(store: StoreKind, kind: 'ek' | 'job'): string {
  return store === 'sqlite'
    ? `UPDATE keys SET wrapped = randomblob(length(wrapped)) WHERE kind = '${kind}'`
    : `UPDATE keys SET wrapped = decode(md5(random()::text) || md5(random()::text), 'hex') || substring(wrapped from 33) WHERE kind = '${kind}'`;
}

/**
 * Write a job ciphertext, close, alter the stored rows with `sql` behind keystrata's back, reopen,
 * and hand the reopened instance, the workspace id and the ciphertext to `check`.
 */
async function afterTampering(
  store: StoreKind,
  sql: string,
  check: (t: TestKeystrata, ws: string, ciphertext: string) => Promise<void>,
): Promise<void> {
  const t = await openTestKeystrata({ store });
  try {
    const ws = (await createWorkspace(t)).id;
    const { ciphertext } = await encrypt(t, ws, { type: 'job', id: 'j1' }, Buffer.from('data'));
    await t.close();
    await tamper(t.handle, sql);
    const reopened = await openTestKeystrata({ store, handle: t.handle });
    try {
      await check(reopened, ws, ciphertext);
    } finally {
      await reopened.close();
    }
  } finally {
    await t.destroy();
  }
}

for (const store of testStores()) {
  describe(`stored keys that fail their integrity check (${store})`, () => {
    it('an altered environment key is integrity_check_failed (500) on encrypt AND decrypt, not decryption_failed', () =>
      afterTampering(store, randomizeWrapped(store, 'ek'), async (t, ws, ciphertext) => {
        expectError(await call(t, 'POST', `${envUrl(ws)}/decrypt`, { ciphertext }), 500, 'integrity_check_failed');
        expectError(await call(t, 'POST', `${envUrl(ws)}/encrypt`, { scope: { type: 'job', id: 'j2' }, plaintext: 'AA==' }), 500, 'integrity_check_failed');
      }));

    it('an altered platform CMK row is integrity_check_failed', () => {
      const other = Buffer.alloc(61, 7).toString('base64');
      const sql =
        store === 'sqlite'
          ? `UPDATE cmks SET config = json_set(config, '$.wrappedMaterial', '${other}')`
          : `UPDATE cmks SET config = jsonb_set(config, '{wrappedMaterial}', '"${other}"')`;
      return afterTampering(store, sql, async (t, ws, ciphertext) => {
        expectError(await call(t, 'POST', `${envUrl(ws)}/decrypt`, { ciphertext }), 500, 'integrity_check_failed');
      });
    });

    it('an altered job key is integrity_check_failed on decrypt', () =>
      afterTampering(store, randomizeWrapped(store, 'job'), async (t, ws, ciphertext) => {
        expectError(await call(t, 'POST', `${envUrl(ws)}/decrypt`, { ciphertext }), 500, 'integrity_check_failed');
      }));
  });

  describe(`text both stores must keep exactly (${store})`, () => {
    it('is refused the same way on each (400, field named)', async () => {
      const t = await openTestKeystrata({ store });
      try {
        const ws = (await createWorkspace(t)).id;
        const objects = `${envUrl(ws)}/objects`;
        const context = { org: 'o' };
        const cases: [unknown, string][] = [
          [{ name: 'm1', value: 'v', context, metadata: { note: 'nul\u0000inside' } }, 'metadata'],
          [{ name: 'm2', value: 'v', context, metadata: { ['k\u0000']: 'x' } }, 'metadata'],
          [{ name: 'm3', value: 'v', context, metadata: { deep: [{ x: 'lone \ud800' }] } }, 'metadata'],
          [{ name: 'v1', value: 'lone \udc00 surrogate', context }, 'value'],
        ];
        for (const [body, field] of cases) {
          const error = expectError(await call(t, 'POST', objects, body), 400, 'invalid_request');
          expect(error.field).toBe(field);
        }
        const created = await ok<{ id: string }>(t, 'POST', objects, { name: 'ok', value: 'astral \ud83d\udd11 is fine', context, metadata: { emoji: '\ud83d\udd11' } }, 201);
        const error = expectError(await call(t, 'PUT', `${objects}/${created.id}`, { value: '\ud800', expectedVersion: 1 }), 400, 'invalid_request');
        expect(error.field).toBe('value');
        expect((await ok<{ value: string }>(t, 'GET', `${objects}/${created.id}`, undefined)).value).toBe('astral \ud83d\udd11 is fine');
      } finally {
        await t.destroy();
      }
    });
  });
}
