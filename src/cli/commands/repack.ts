import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import type { KeystrataClient, RepackInfo } from '../../../sdk/index.js';
import { UsageError } from '../errors.js';
import type { CliIo } from '../io.js';
import { connect, examples, numberFrom, withConnection, type ConnectionOptions, type FormatOptions } from '../options.js';
import { writeFields, writeJson } from '../output.js';
import { fitToRow } from '../progress.js';
import { repackFields, repackHeading, repackLine } from './repack-output.js';

type StatusOptions = ConnectionOptions & FormatOptions & { readonly watch?: boolean; readonly interval?: number };

const DEFAULT_INTERVAL_SECONDS = 2;
/** Return to the start of the line and erase it (ANSI EL 2): the progress line is redrawn in place. */
const CLEAR_LINE = '\r\x1b[2K';

/** `keystrata repack status`: progress of an environment key rotation. */
export function registerRepackCommands(program: Command, io: CliIo): void {
  const repack = program
    .command('repack')
    .description('follow environment key rotations (keys cmk-set --rotate-environment-key): every key re-wrapped in the background');

  withConnection(repack.command('status <workspace> <env>'), 'text')
    .description("show the environment's unfinished repack, else its last one: state, progress, rate, time left, CMKs and keys")
    .option('--watch', 'poll until the repack is done, redrawing the progress line (one line per poll when not on a terminal)')
    .option('--interval <seconds>', `seconds between polls with --watch, 0.1–3600 (default ${DEFAULT_INTERVAL_SECONDS})`, numberFrom(0.1, 3600))
    .addHelpText(
      'after',
      `${examples(
        'keystrata repack status $WS production',
        'keystrata repack status $WS production --watch --interval 5',
        "keystrata repack status $WS production -o json | jq '.done / .total'",
      )}
Both CMKs stay required until the state is done; until then the CMK cannot be changed again
(repack_in_progress). A paused repack waits for a key store and resumes by itself.
With --watch the command exits 0 once the repack is done; with -o json it prints one JSON object
per poll, one per line. If the environment key was never rotated it says so and exits 0 (JSON: null).
`,
    )
    .action(async (workspace: string, env: string, options: StatusOptions) => {
      if (options.interval !== undefined && options.watch !== true) throw new UsageError('--interval applies only with --watch');
      const client = connect(options, io);
      if (options.watch === true) return watch(client, workspace, env, options, io);
      const found = await readRepack(client, workspace, env);
      if (options.output === 'json') writeJson(io, found);
      else if (found === null) io.stdout(neverRotated(env));
      else writeFields(io, repackFields(found));
    });
}

async function readRepack(client: KeystrataClient, workspace: string, env: string): Promise<RepackInfo | null> {
  // `?? null`: a server from before environment key rotation does not send the member at all.
  return (await client.getCmk(workspace, env)).repack ?? null;
}

function neverRotated(env: string): string {
  return `no repack: the environment key of ${env} has never been rotated (keystrata keys cmk-set … --rotate-environment-key starts one)\n`;
}

/** Polls until the repack is done (or there is none); an API or network failure ends it (exit 1). */
async function watch(client: KeystrataClient, workspace: string, env: string, options: StatusOptions, io: CliIo): Promise<void> {
  const text = options.output === 'text';
  const terminal = text ? io.terminal : undefined;
  const clear = terminal ? CLEAR_LINE : '';
  let headingOf: string | undefined;
  let pausedFor: string | null = null;
  let lineOpen = false;
  try {
    for (;;) {
      const repack = await readRepack(client, workspace, env);
      if (!text) {
        io.stdout(`${JSON.stringify(repack)}\n`);
      } else if (repack === null) {
        io.stdout(`${clear}${neverRotated(env)}`);
      } else {
        if (repack.id !== headingOf) {
          io.stdout(`${clear}${repackHeading(repack)}\n`);
          headingOf = repack.id;
        }
        // The reason goes on a line of its own, once per change: the redrawn line must stay one row.
        const reason = repack.state === 'paused' ? (repack.pausedReason ?? '(no reason given)') : null;
        if (reason !== null && reason !== pausedFor) io.stdout(`${clear}paused: ${reason}\n`);
        pausedFor = reason;
        const last = repack.state === 'done';
        // The last line is not redrawn: it may wrap, and is printed whole.
        if (terminal) io.stdout(`${CLEAR_LINE}${last ? `${repackLine(repack)}\n` : fitToRow(repackLine(repack), terminal.columns())}`);
        else io.stdout(`${repackLine(repack)}\n`);
        lineOpen = terminal !== undefined && !last;
      }
      if (repack === null || repack.state === 'done') return;
      await sleep((options.interval ?? DEFAULT_INTERVAL_SECONDS) * 1000);
    }
  } finally {
    // Whatever comes next (an error on stderr, the shell prompt) starts on a fresh line.
    if (lineOpen) io.stdout('\n');
  }
}
