import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RepackInfo } from '../../sdk/index.js';
import { openTestKeystrata, type TestKeystrata } from '../support/test-keystrata.js';
import { run } from './run.js';

// Environment key rotation from the CLI against the real app on a real socket. Repacks run only
// when the test says so (ks.runRepacks()), so the running state can be seen before it is done.

let t: TestKeystrata;
let admin: { env: Record<string, string> };

beforeAll(async () => {
  t = await openTestKeystrata({ store: 'sqlite', repacks: 'manual' });
  const url = await t.app.listen({ host: '127.0.0.1', port: 0 });
  admin = { env: { KEYSTRATA_URL: url, KEYSTRATA_TOKEN: t.token } };
});
afterAll(async () => {
  await t?.destroy();
});

async function repackJson(ws: string): Promise<RepackInfo | null> {
  const result = await run(['repack', 'status', ws, 'production', '-o', 'json'], admin);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as RepackInfo | null;
}

describe('keystrata keys cmk-set --rotate-environment-key / repack status against a real server', () => {
  it('an environment key never rotated: repack status says so and exits 0', async () => {
    const ws = JSON.parse((await run(['workspace', 'create', 'cli-repack-none'], admin)).stdout) as { id: string };
    const text = await run(['repack', 'status', ws.id, 'production'], admin);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^no repack: the environment key of production has never been rotated/);
    expect(await repackJson(ws.id)).toBeNull();
    expect((await run(['repack', 'status', ws.id, 'production', '--watch', '--interval', '0.1'], admin)).code).toBe(0);
  });

  it('rotates: running 0/N until the repack runs, a second CMK change is refused, then done; old data still decrypts', async () => {
    const ws = JSON.parse((await run(['workspace', 'create', 'cli-repack'], admin)).stdout) as { id: string };
    const sealed: string[] = [];
    for (const id of ['conn_1', 'conn_2', 'conn_3']) {
      const encrypted = await run(['encrypt', ws.id, 'production', '--scope', `connection:${id}`, '--text', `secret of ${id}`], admin);
      expect(encrypted.code, encrypted.stderr).toBe(0);
      sealed.push(encrypted.stdout.trim());
    }
    const before = JSON.parse((await run(['keys', 'cmk', ws.id, 'production'], admin)).stdout) as { id: string };

    // A platform CMK takes no config: --provider platform alone makes a new one.
    const set = await run(['keys', 'cmk-set', ws.id, 'production', '--provider', 'platform', '--rotate-environment-key'], admin);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/^provider: +platform$/m);
    expect(set.stdout).toMatch(/^repack: +running 0\/\d+ \(0\.0%\), id [0-9a-f-]{36} — see: keystrata repack status$/m);

    const running = await repackJson(ws.id);
    expect(running).toMatchObject({ state: 'running', done: 0, fromCmkId: before.id, finishedAt: null });
    // The three connection keys hang under the old environment key (with the log key of the audit).
    expect(running!.total).toBeGreaterThanOrEqual(3);
    const status = await run(['repack', 'status', ws.id, 'production'], admin);
    expect(status.stdout).toMatch(/^state: +running$/m);
    expect(status.stdout).toMatch(/^progress: +\[\.{20}\] 0\.0%$/m);
    expect(status.stdout).toContain(`cmk:      ${before.id} → ${running!.toCmkId}`);

    // Both CMKs are needed until it is done: no other CMK change meanwhile.
    const again = await run(['keys', 'cmk-set', ws.id, 'production', '--provider', 'platform'], admin);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^error: repack_in_progress: /);

    await t.ks.runRepacks();

    const done = await repackJson(ws.id);
    expect(done).toMatchObject({ id: running!.id, state: 'done', done: running!.total, total: running!.total, etaSeconds: 0 });
    expect(done!.finishedAt).not.toBeNull();
    const finished = await run(['repack', 'status', ws.id, 'production'], admin);
    expect(finished.stdout).toMatch(/^state: +done$/m);
    expect(finished.stdout).toMatch(/^progress: +\[#{20}\] 100\.0%$/m);
    const watched = await run(['repack', 'status', ws.id, 'production', '--watch', '--interval', '0.1'], admin);
    expect(watched.code, watched.stderr).toBe(0);
    expect(watched.stdout.trim().split('\n').at(-1)).toMatch(/^done +\[#{20}\] 100\.0% +\d+\/\d+ keys +finished /);

    for (const [i, ciphertext] of sealed.entries()) {
      const opened = await run(['decrypt', ws.id, 'production', ciphertext], admin);
      expect(opened.code, opened.stderr).toBe(0);
      expect(opened.bytes.toString()).toBe(`secret of conn_${i + 1}`);
    }
  });

  it('repack status --watch follows a running repack and exits 0 once it is done', async () => {
    const ws = JSON.parse((await run(['workspace', 'create', 'cli-repack-watch'], admin)).stdout) as { id: string };
    await run(['encrypt', ws.id, 'production', '--scope', 'connection:c1', '--text', 'x'], admin);
    expect((await run(['keys', 'cmk-set', ws.id, 'production', '--provider', 'platform', '--rotate-environment-key'], admin)).code).toBe(0);

    const watching = run(['repack', 'status', ws.id, 'production', '--watch', '--interval', '0.1'], admin);
    await sleep(250);
    await t.ks.runRepacks();
    const watched = await watching;
    expect(watched.code, watched.stderr).toBe(0);
    const lines = watched.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^repack [0-9a-f-]{36}: cmk \S+ → \S+, ek \S+ → \S+$/);
    expect(lines[1]).toMatch(/^running +\[\.{20}\] 0\.0% +0\/\d+ keys/);
    expect(lines.at(-1)).toMatch(/^done +\[#{20}\] 100\.0%/);
  });
});
