import { describe, expect, it } from 'vitest';
import type { RepackInfo } from '../../sdk/index.js';
import { repackEta, repackFields, repackLine, repackSummary } from '../../src/cli/commands/repack-output.js';
import { fitToRow, formatDuration, formatPercent, formatRate, progressBar, progressFraction } from '../../src/cli/progress.js';

describe('progress bar', () => {
  it('fills in proportion, rounded down, with the percentage', () => {
    expect(progressBar(523, 1000)).toBe('[##########..........] 52.3%');
    expect(progressBar(0, 1000)).toBe('[....................] 0.0%');
    expect(progressBar(1000, 1000)).toBe('[####################] 100.0%');
    expect(progressBar(1, 3, 10)).toBe('[###.......] 33.3%');
  });

  it('shows nothing to do (total 0) as complete', () => {
    expect(progressFraction(0, 0)).toBe(1);
    expect(progressBar(0, 0)).toBe('[####################] 100.0%');
  });

  it('shows done past total (keys found after the count) as complete, never more', () => {
    expect(progressFraction(1200, 1000)).toBe(1);
    expect(progressBar(1200, 1000)).toBe('[####################] 100.0%');
    expect(progressFraction(5, 0)).toBe(1);
  });

  it('does not read as finished before it is (rounded down)', () => {
    expect(formatPercent(9999 / 10000)).toBe('99.9%');
    expect(progressBar(9999, 10000)).toBe('[###################.] 99.9%');
  });

  it('treats nonsense as nothing done', () => {
    expect(progressFraction(Number.NaN, 10)).toBe(0);
    expect(progressFraction(-3, 10)).toBe(0);
    expect(formatPercent(Number.NaN)).toBe('0.0%');
    expect(progressBar(1, 2, 0)).toBe('[.] 50.0%');
  });
});

describe('durations and rates', () => {
  it.each([
    [0, '0s'],
    [0.2, '1s'],
    [45, '45s'],
    [60, '1m'],
    [200, '3m 20s'],
    [3600, '1h'],
    [7500, '2h 5m'],
    [7559, '2h 5m'],
    [86_400 * 3 + 3600 * 4 + 59, '3d 4h'],
  ])('%s seconds reads %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });

  it('an unknown duration (eta null) reads unknown', () => {
    expect(formatDuration(null)).toBe('unknown');
    expect(formatDuration(Number.POSITIVE_INFINITY)).toBe('unknown');
    expect(formatDuration(-1)).toBe('unknown');
  });

  it('rates: one decimal below 100, whole numbers with separators above', () => {
    expect(formatRate(41.23, 'keys')).toBe('41.2 keys/s');
    expect(formatRate(0, 'keys')).toBe('0.0 keys/s');
    expect(formatRate(12_345.6, 'keys')).toBe('12,346 keys/s');
    expect(formatRate(null, 'keys')).toBe('unknown');
  });
});

describe('a redrawn line fits one terminal row', () => {
  it('is left alone when it fits, cut with … when it does not (never to less than 10)', () => {
    expect(fitToRow('short', 80)).toBe('short');
    expect(fitToRow('x'.repeat(79), 80)).toBe('x'.repeat(79));
    expect(fitToRow('x'.repeat(80), 80)).toBe(`${'x'.repeat(78)}…`);
    expect(fitToRow('x'.repeat(30), 0)).toBe(`${'x'.repeat(9)}…`);
  });
});

const RUNNING: RepackInfo = {
  id: 'r1',
  state: 'running',
  done: 523,
  total: 1000,
  ratePerSecond: 41.2,
  etaSeconds: 12,
  startedAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:12.000Z',
  finishedAt: null,
  pausedReason: null,
  fromCmkId: 'cmk-old',
  toCmkId: 'cmk-new',
  fromEkId: 'ek-old',
  toEkId: 'ek-new',
};
const PAUSED: RepackInfo = { ...RUNNING, state: 'paused', etaSeconds: null, pausedReason: 'The new CMK cannot be used: it is disabled.' };
const DONE: RepackInfo = { ...RUNNING, state: 'done', done: 1000, etaSeconds: 0, finishedAt: '2026-01-01T00:00:30.000Z' };

describe('repack text', () => {
  it('fields of a running repack: bar, keys, rate, eta, from → to', () => {
    expect(Object.fromEntries(repackFields(RUNNING))).toEqual({
      repack: 'r1',
      state: 'running',
      progress: '[##########..........] 52.3%',
      keys: '523/1000',
      rate: '41.2 keys/s',
      eta: '12s',
      started: '2026-01-01T00:00:00.000Z',
      finished: '-',
      cmk: 'cmk-old → cmk-new',
      ek: 'ek-old → ek-new',
    });
  });

  it('the line --watch redraws while running', () => {
    expect(repackLine(RUNNING)).toBe('running  [##########..........] 52.3%  523/1000 keys  41.2 keys/s  eta 12s');
  });

  it('a paused repack shows why, and no time left', () => {
    const fields = Object.fromEntries(repackFields(PAUSED));
    expect(fields.paused).toBe(PAUSED.pausedReason);
    expect(fields.eta).toBe('- (paused)');
    expect(repackLine(PAUSED)).toBe('paused   [##########..........] 52.3%  523/1000 keys  paused, resumes by itself');
    // The reason can be long: the redrawn line never holds it.
    expect(repackLine(PAUSED)).not.toContain('disabled');
  });

  it('a running repack before its first batch: rate and eta unknown (eta null)', () => {
    const fresh: RepackInfo = { ...RUNNING, done: 0, ratePerSecond: null, etaSeconds: null };
    expect(repackEta(fresh)).toBe('unknown');
    expect(repackLine(fresh)).toBe('running  [....................] 0.0%  0/1000 keys  rate unknown  eta unknown');
  });

  it('a finished repack: complete bar, when it finished, no paused line', () => {
    expect(repackLine(DONE)).toBe('done     [####################] 100.0%  1000/1000 keys  finished 2026-01-01T00:00:30.000Z');
    const fields = Object.fromEntries(repackFields(DONE));
    expect(fields).toMatchObject({ eta: '-', finished: DONE.finishedAt });
    expect(fields.paused).toBeUndefined();
  });

  it('an environment with nothing under its old key (total 0) is complete', () => {
    expect(repackLine({ ...DONE, done: 0, total: 0 })).toMatch(/^done +\[#{20}\] 100\.0%  0\/0 keys/);
  });

  it('the summary of keys cmk', () => {
    expect(repackSummary(null)).toBe('-');
    expect(repackSummary(undefined)).toBe('-');
    expect(repackSummary(RUNNING)).toBe('running 523/1000 (52.3%), id r1 — see: keystrata repack status');
    expect(repackSummary(DONE)).toBe('done 1000/1000 (100.0%), id r1');
  });
});
