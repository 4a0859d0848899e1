import type { RepackInfo } from '../../../sdk/index.js';
import { formatDuration, formatPercent, formatRate, progressBar, progressFraction } from '../progress.js';

/**
 * How a repack (an environment key rotation, `repack` of `GET …/cmk`) reads in text: the fields of
 * `repack status`, the one line that `--watch` redraws, and the summary `keys cmk` shows.
 */

/** Time left as a person reads it: `-` once done, `- (paused)` while paused, `unknown` before the first batch. */
export function repackEta(repack: RepackInfo): string {
  if (repack.state === 'done') return '-';
  if (repack.state === 'paused') return '- (paused)';
  return formatDuration(repack.etaSeconds);
}

/** `label: value` pairs for writeFields. */
export function repackFields(repack: RepackInfo): [string, string][] {
  return [
    ['repack', repack.id],
    ['state', repack.state],
    ['progress', progressBar(repack.done, repack.total)],
    ['keys', `${repack.done}/${repack.total}`],
    ['rate', formatRate(repack.ratePerSecond, 'keys')],
    ['eta', repackEta(repack)],
    ['started', repack.startedAt],
    ['finished', repack.finishedAt ?? '-'],
    ...(repack.state === 'paused' ? [['paused', repack.pausedReason ?? '(no reason given)'] as [string, string]] : []),
    ['cmk', `${repack.fromCmkId} → ${repack.toCmkId}`],
    ['ek', `${repack.fromEkId} → ${repack.toEkId}`],
  ];
}

/**
 * One line of progress, e.g. `running  [##########..........] 52.3%  523/1000 keys  41.2 keys/s  eta 12s`.
 * It never holds the pause reason (which can be long): a redrawn line must fit on one terminal row.
 */
export function repackLine(repack: RepackInfo): string {
  const head = `${repack.state.padEnd(7)}  ${progressBar(repack.done, repack.total)}  ${repack.done}/${repack.total} keys`;
  if (repack.state === 'done') return `${head}  finished ${repack.finishedAt ?? '-'}`;
  if (repack.state === 'paused') return `${head}  paused, resumes by itself`;
  const rate = repack.ratePerSecond === null ? 'rate unknown' : formatRate(repack.ratePerSecond, 'keys');
  return `${head}  ${rate}  eta ${repackEta(repack)}`;
}

/** What `--watch` prints once, before the progress lines. */
export function repackHeading(repack: RepackInfo): string {
  return `repack ${repack.id}: cmk ${repack.fromCmkId} → ${repack.toCmkId}, ek ${repack.fromEkId} → ${repack.toEkId}`;
}

/** The `repack` field of `keys cmk`: state and progress, or `-` when the environment key was never rotated. */
export function repackSummary(repack: RepackInfo | null | undefined): string {
  // undefined: a server from before environment key rotation, which does not send the member.
  if (repack === null || repack === undefined) return '-';
  const shown = `${repack.state} ${repack.done}/${repack.total} (${formatPercent(progressFraction(repack.done, repack.total))}), id ${repack.id}`;
  return repack.state === 'done' ? shown : `${shown} — see: keystrata repack status`;
}
