import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqlitePath } from '../../src/service/keystrata.js';
import { openTestKeystrata, type TestKeystrata } from '../support/test-keystrata.js';
import { run } from './run.js';

// The access verbs (client, jwt, audit) against the real app on a real socket: a client is made
// with the admin token, works through its token and a JWT, and the audit it leaves verifies,
// exports, and stops verifying (exit 3) once a row is edited in the database.

let t: TestKeystrata;
let url: string;
let dir: string;

beforeAll(async () => {
  t = await openTestKeystrata({ store: 'sqlite' });
  url = await t.app.listen({ host: '127.0.0.1', port: 0 });
  dir = await mkdtemp(join(tmpdir(), 'keystrata-cli-access-'));
});
afterAll(async () => {
  await t?.destroy();
  await rm(dir, { recursive: true, force: true });
});

const as = (token: string) => ({ env: { KEYSTRATA_URL: url, KEYSTRATA_TOKEN: token } });

describe('keystrata client / jwt / audit against a real server', () => {
  it('creates an app client whose token and JWT work; audit verifies, exports, and catches an edited row', async () => {
    const admin = as(t.token);
    const ws = JSON.parse((await run(['workspace', 'create', 'cli-access'], admin)).stdout) as { id: string };

    const created = await run(['client', 'create', ws.id, '--name', 'worker', '--role', 'app', '--env', 'production', '--cidr', '127.0.0.1/32'], admin);
    expect(created.code, created.stderr).toBe(0);
    const token = /^(kst_[A-Za-z0-9_-]{43})$/m.exec(created.stdout)?.[1];
    expect(token).toBeDefined();
    expect(created.stdout + created.stderr).toMatch(/not shown again/i);

    // The token works for the data plane, not for managing clients.
    const encrypted = await run(['encrypt', ws.id, 'production', '--scope', 'job:j1', '--text', 'hello'], as(token!));
    expect(encrypted.code, encrypted.stderr).toBe(0);
    const denied = await run(['client', 'list', ws.id], as(token!));
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/forbidden/);

    const jwt = await run(['jwt'], as(token!));
    expect(jwt.code, jwt.stderr).toBe(0);
    expect(jwt.stdout.trim()).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
    const viaJwt = await run(['decrypt', ws.id, 'production', encrypted.stdout.trim()], as(jwt.stdout.trim()));
    expect(viaJwt.code, viaJwt.stderr).toBe(0);
    expect(viaJwt.bytes.toString()).toBe('hello');

    const verified = await run(['audit', 'verify', ws.id], admin);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);

    const file = join(dir, 'audit.jsonl');
    const exported = await run(['audit', 'export', ws.id, '--file', file], admin);
    expect(exported.code, exported.stderr).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { seq: number; action: string; actor: { type: string } });
    expect(lines.map((e) => e.seq)).toEqual(lines.map((_, i) => i + 1));
    expect(lines.map((e) => e.action)).toEqual(
      expect.arrayContaining(['workspace.create', 'client.create', 'data.encrypt', 'client.list', 'auth.jwt', 'data.decrypt', 'audit.verify']),
    );
    // Neither the token nor the JWT nor the plaintext is in the export.
    const raw = readFileSync(file, 'utf8');
    for (const secret of [token!, jwt.stdout.trim(), 'hello']) expect(raw).not.toContain(secret);

    // Edit one entry's time directly in the database: verify names it and exits 3.
    const db = new Database(sqlitePath(t.config));
    try {
      db.prepare('UPDATE audit_entries SET at = at + 1 WHERE workspace_id = ? AND seq = 3').run(ws.id);
    } finally {
      db.close();
    }
    const broken = await run(['audit', 'verify', ws.id], admin);
    expect(broken.code).toBe(3);
    expect(broken.stdout).toMatch(/^first bad entry: seq 3$/m);
    expect(broken.stdout).toMatch(/^ok: +no$/m);
  });

  it('keys cmk-set moves an environment to an uploaded key (config from stdin, never shown back), and back to platform', async () => {
    const admin = as(t.token);
    const ws = JSON.parse((await run(['workspace', 'create', 'cli-cmk'], admin)).stdout) as { id: string };
    const sealed = (await run(['encrypt', ws.id, 'production', '--scope', 'job:j', '--text', 'kept'], admin)).stdout.trim();
    const keyMaterial = Buffer.alloc(32, 7).toString('base64');
    const set = await run(['keys', 'cmk-set', ws.id, 'production', '--provider', 'uploaded', '--config-file', '-'], {
      ...admin,
      stdin: JSON.stringify({ keyMaterial }),
    });
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/^provider: +uploaded$/m);
    expect(set.stdout).toMatch(/^secret fields: +keyMaterial \(set; never shown\)$/m);
    expect(set.stdout + set.stderr).not.toContain(keyMaterial);
    const opened = await run(['decrypt', ws.id, 'production', sealed], admin);
    expect(opened.bytes.toString()).toBe('kept');

    const bad = await run(['keys', 'cmk-set', ws.id, 'production', '--provider', 'uploaded', '--config-file', '-'], { ...admin, stdin: '{"keyMaterial":"nope"}' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/invalid_request.*config\.keyMaterial/);
    expect((await run(['keys', 'cmk-set', ws.id, 'production', '--provider', 'uploaded'], admin)).code).toBe(2);

    const back = await run(['keys', 'cmk-set', ws.id, 'production', '--provider', 'platform'], admin);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).toMatch(/^provider: +platform$/m);
    expect((await run(['decrypt', ws.id, 'production', sealed], admin)).bytes.toString()).toBe('kept');
  });
});
