/**
 * Text for long-running work seen from the CLI: a progress bar, a percentage, a rate and a
 * humanised duration. Pure functions of numbers, so that any command can show progress the same way.
 */

/**
 * How far along `done` of `total` is, from 0 to 1. Nothing to do (total 0) is complete; done past
 * total (work found after the count was taken) is shown as complete, never as more.
 */
export function progressFraction(done: number, total: number): number {
  if (!Number.isFinite(done) || done <= 0) return total <= 0 ? 1 : 0;
  if (!Number.isFinite(total) || total <= 0 || done >= total) return 1;
  return done / total;
}

/**
 * A percentage with one decimal, rounded down: `52.3%`. 100.0% only when complete, so that
 * 9,999 of 10,000 does not read as finished.
 */
export function formatPercent(fraction: number): string {
  const clamped = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  return `${(Math.floor(clamped * 1000) / 10).toFixed(1)}%`;
}

/** `[##########..........] 52.3%`: `width` cells, filled in proportion (rounded down), then the percentage. */
export function progressBar(done: number, total: number, width = 20): string {
  const fraction = progressFraction(done, total);
  const cells = Math.max(1, Math.floor(width));
  const filled = Math.floor(fraction * cells);
  return `[${'#'.repeat(filled)}${'.'.repeat(cells - filled)}] ${formatPercent(fraction)}`;
}

/**
 * A duration as a person reads it, two units at most, rounded up (an estimate of time left is
 * better too long than too short): `0s`, `45s`, `3m 20s`, `2h 5m`, `3d 4h`. null (not known) → `unknown`.
 */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return 'unknown';
  const total = Math.ceil(seconds);
  const units: readonly (readonly [string, number])[] = [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ];
  const index = units.findIndex(([, size]) => total >= size);
  if (index < 0) return '0s';
  const [bigName, bigSize] = units[index]!;
  const big = Math.floor(total / bigSize);
  const next = units[index + 1];
  if (next === undefined) return `${big}${bigName}`;
  const small = Math.floor((total % bigSize) / next[1]);
  return small === 0 ? `${big}${bigName}` : `${big}${bigName} ${small}${next[0]}`;
}

/** A rate of work, e.g. `41.2 keys/s` (whole numbers from 100 up); null (not known yet) → `unknown`. */
export function formatRate(perSecond: number | null, unit: string): string {
  if (perSecond === null || !Number.isFinite(perSecond) || perSecond < 0) return 'unknown';
  const value = perSecond >= 100 ? Math.round(perSecond).toLocaleString('en-US') : perSecond.toFixed(1);
  return `${value} ${unit}/s`;
}

/**
 * A line cut to fit one terminal row of `columns` (at least 10), ending in `…` when cut: a line
 * redrawn in place must not wrap, since the clear-line reaches only the row the cursor is on.
 */
export function fitToRow(line: string, columns: number): string {
  const room = Math.max(10, Math.floor(columns) - 1);
  return line.length <= room ? line : `${line.slice(0, room - 1)}…`;
}
