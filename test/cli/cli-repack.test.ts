import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CmkInfo, RepackInfo } from '../../sdk/index.js';
import { errorReply, startFakeApi, type FakeApi } from '../support/fake-api-server.js';
import { run, type RunOptions } from './run.js';

// `repack status` and `keys cmk-set --rotate-environment-key` against a fake API: every output
// mode, including --watch on a terminal and into a pipe, with answers the test scripts poll by poll.

const TOKEN = 'ks_cli_token_0123456789abcdef0123';
const WS = '0b6c7a52-3f4e-4c1a-9d7e-2f0a1b2c3d4e';
const CMK_PATH = `/v1/workspaces/${WS}/environments/production/cmk`;

const RUNNING: RepackInfo = {
  id: 'r1',
  state: 'running',
  done: 0,
  total: 4,
  ratePerSecond: null,
  etaSeconds: null,
  startedAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: null,
  pausedReason: null,
  fromCmkId: 'cmk-old',
  toCmkId: 'cmk-new',
  fromEkId: 'ek-old',
  toEkId: 'ek-new',
};
const HALF: RepackInfo = { ...RUNNING, done: 2, ratePerSecond: 2, etaSeconds: 1, updatedAt: '2026-01-01T00:00:01.000Z' };
const PAUSED: RepackInfo = { ...HALF, state: 'paused', etaSeconds: null, pausedReason: 'The new environment key (through the new CMK) cannot be used.' };
const DONE: RepackInfo = { ...HALF, state: 'done', done: 4, etaSeconds: 0, finishedAt: '2026-01-01T00:00:02.000Z' };

function cmk(repack: RepackInfo | null): CmkInfo {
  return { id: 'cmk-new', provider: 'platform', state: 'active', createdAt: 't', config: {}, secretFields: [], keyVersion: '1', health: null, repack };
}

let api: FakeApi;

beforeAll(async () => {
  api = await startFakeApi();
});
afterAll(async () => {
  await api.close();
});
beforeEach(() => {
  api.requests.length = 0;
  api.reply(() => ({ status: 500 }));
});

function cli(argv: string[], options: RunOptions = {}) {
  return run(argv, { ...options, env: { KEYSTRATA_URL: api.url, KEYSTRATA_TOKEN: TOKEN } });
}

/** GET …/cmk answers these repacks one poll after another (the last one for every later poll). */
function polls(...answers: (RepackInfo | null)[]): void {
  let i = 0;
  api.reply((req) => {
    if (req.method !== 'GET' || req.rawPath !== CMK_PATH) return errorReply(404, 'route_not_found', `no fake for ${req.method} ${req.rawPath}`);
    const answer = answers[Math.min(i++, answers.length - 1)] ?? null;
    return { status: 200, body: cmk(answer) };
  });
}

describe('keystrata repack status', () => {
  it('prints state, progress bar, keys, rate, eta, started/finished and from → to ids', async () => {
    polls(HALF);
    const result = await cli(['repack', 'status', WS, 'production']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^state: +running$/m);
    expect(result.stdout).toMatch(/^progress: +\[##########\.{10}\] 50\.0%$/m);
    expect(result.stdout).toMatch(/^keys: +2\/4$/m);
    expect(result.stdout).toMatch(/^rate: +2\.0 keys\/s$/m);
    expect(result.stdout).toMatch(/^eta: +1s$/m);
    expect(result.stdout).toMatch(/^started: +2026-01-01T00:00:00\.000Z$/m);
    expect(result.stdout).toMatch(/^finished: +-$/m);
    expect(result.stdout).toMatch(/^cmk: +cmk-old → cmk-new$/m);
    expect(result.stdout).toMatch(/^ek: +ek-old → ek-new$/m);
    expect(result.stdout).not.toMatch(/^paused:/m);
  });

  it('shows why a paused repack waits', async () => {
    polls(PAUSED);
    const result = await cli(['repack', 'status', WS, 'production']);
    expect(result.stdout).toMatch(/^state: +paused$/m);
    expect(result.stdout).toContain(`paused:   ${PAUSED.pausedReason}`);
    expect(result.stdout).toMatch(/^eta: +- \(paused\)$/m);
  });

  it('-o json prints the repack object exactly as the server sends it', async () => {
    polls(HALF);
    const result = await cli(['repack', 'status', WS, 'production', '-o', 'json']);
    expect(JSON.parse(result.stdout)).toEqual(HALF);
  });

  it('an environment key never rotated: says so, exit 0 (JSON: null)', async () => {
    polls(null);
    const text = await cli(['repack', 'status', WS, 'production']);
    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(text.stdout).toMatch(/^no repack: the environment key of production has never been rotated/);
    const json = await cli(['repack', 'status', WS, 'production', '--output', 'json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toBeNull();
    const watched = await cli(['repack', 'status', WS, 'production', '--watch', '--interval', '0.1']);
    expect(watched.code).toBe(0);
    expect(watched.stdout).toMatch(/^no repack:/);
    expect(api.requests).toHaveLength(3);
  });

  it('--watch into a pipe: one line per poll, the pause reason once, exit 0 when done', async () => {
    polls(RUNNING, HALF, PAUSED, PAUSED, DONE);
    const result = await cli(['repack', 'status', WS, 'production', '--watch', '--interval', '0.1'], {});
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).not.toContain('\r');
    expect(result.stdout).not.toContain('\x1b');
    expect(result.stdout.split('\n')).toEqual([
      'repack r1: cmk cmk-old → cmk-new, ek ek-old → ek-new',
      'running  [....................] 0.0%  0/4 keys  rate unknown  eta unknown',
      'running  [##########..........] 50.0%  2/4 keys  2.0 keys/s  eta 1s',
      `paused: ${PAUSED.pausedReason}`,
      'paused   [##########..........] 50.0%  2/4 keys  paused, resumes by itself',
      'paused   [##########..........] 50.0%  2/4 keys  paused, resumes by itself',
      'done     [####################] 100.0%  4/4 keys  finished 2026-01-01T00:00:02.000Z',
      '',
    ]);
    expect(api.requests).toHaveLength(5);
  });

  it('--watch on a terminal redraws one line in place and ends it with a newline when done', async () => {
    polls(RUNNING, HALF, DONE);
    const result = await cli(['repack', 'status', WS, 'production', '--watch', '--interval', '0.1'], { terminalColumns: 120 });
    expect(result.code, result.stderr).toBe(0);
    const clear = '\r\x1b[2K';
    expect(result.stdout).toBe(
      `${clear}repack r1: cmk cmk-old → cmk-new, ek ek-old → ek-new\n` +
        `${clear}running  [....................] 0.0%  0/4 keys  rate unknown  eta unknown` +
        `${clear}running  [##########..........] 50.0%  2/4 keys  2.0 keys/s  eta 1s` +
        `${clear}done     [####################] 100.0%  4/4 keys  finished 2026-01-01T00:00:02.000Z\n`,
    );
  });

  it('--watch on a narrow terminal cuts a line that will be redrawn to one row, not the last one', async () => {
    polls(HALF, DONE);
    const result = await cli(['repack', 'status', WS, 'production', '--watch', '--interval', '0.1'], { terminalColumns: 40 });
    expect(result.code).toBe(0);
    const redrawn = result.stdout.split('\r\x1b[2K').filter((row) => row.startsWith('running') || row.startsWith('done'));
    expect(redrawn).toEqual([
      'running  [##########..........] 50.0% …',
      // The last line stays: nothing is redrawn over it.
      'done     [####################] 100.0%  4/4 keys  finished 2026-01-01T00:00:02.000Z\n',
    ]);
  });

  it('--watch -o json: one JSON object per poll, one per line', async () => {
    polls(HALF, DONE);
    const result = await cli(['repack', 'status', WS, 'production', '--watch', '--interval', '0.1', '-o', 'json'], { terminalColumns: 120 });
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split('\n').map((line) => JSON.parse(line) as unknown)).toEqual([HALF, DONE]);
  });

  it('--watch that loses the server ends the line on a terminal and exits 1', async () => {
    let i = 0;
    api.reply(() => (i++ === 0 ? { status: 200, body: cmk(HALF) } : errorReply(503, 'store_unavailable', 'The store is unavailable.')));
    const result = await cli(['repack', 'status', WS, 'production', '--watch', '--interval', '0.1'], { terminalColumns: 120 });
    expect(result.code).toBe(1);
    expect(result.stdout.endsWith('eta 1s\n')).toBe(true);
    expect(result.stderr).toMatch(/^error: store_unavailable:/);
  });

});

describe('keystrata keys cmk-set --rotate-environment-key', () => {
  it('sends rotateEnvironmentKey: true, and shows the repack it started', async () => {
    api.reply(() => ({ status: 200, body: cmk(RUNNING) }));
    const result = await cli(['keys', 'cmk-set', WS, 'production', '--provider', 'platform', '--rotate-environment-key']);
    expect(result.code, result.stderr).toBe(0);
    expect(api.requests[0]).toMatchObject({ method: 'PUT', rawPath: CMK_PATH, json: { provider: 'platform', rotateEnvironmentKey: true } });
    expect(result.stdout).toMatch(/^repack: +running 0\/4 \(0\.0%\), id r1 — see: keystrata repack status$/m);
  });

  it('without the flag sends no rotateEnvironmentKey', async () => {
    api.reply(() => ({ status: 200, body: cmk(null) }));
    const result = await cli(['keys', 'cmk-set', WS, 'production', '--provider', 'platform']);
    expect(result.code, result.stderr).toBe(0);
    expect(api.requests[0]?.json).toEqual({ provider: 'platform' });
    expect(result.stdout).toMatch(/^repack: +-$/m);
  });

  it('a CMK change during a repack: repack_in_progress with its details, exit 1', async () => {
    api.reply(() =>
      errorReply(409, 'repack_in_progress', 'The environment key is being rotated (repack r1, running, 2 of 4 keys); the CMK can be changed again when it is done.', {
        details: { repackId: 'r1', state: 'running', done: 2, total: 4 },
      }),
    );
    const result = await cli(['keys', 'cmk-set', WS, 'production', '--provider', 'platform', '--rotate-environment-key']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: repack_in_progress: The environment key is being rotated/);
    expect(result.stderr).toContain('details: {"repackId":"r1","state":"running","done":2,"total":4}');
  });
});
