import { open, rm } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import type { AuditEntry, AuditVerifyResponse, KeystrataClient } from '../../../sdk/index.js';
import { CHECK_FAILED_EXIT_CODE, CheckFailed, CliError } from '../errors.js';
import type { CliIo } from '../io.js';
import { MAX_PAGE_LIMIT, connect, examples, integerFrom, withConnection, type ConnectionOptions, type FormatOptions } from '../options.js';
import { writeFields, writeJson, writeNextCursor, writeTable } from '../output.js';

type Options = ConnectionOptions & FormatOptions;

/** Export output is written in chunks of about this many characters: memory stays bounded. */
const EXPORT_CHUNK = 64 * 1024;

/** `keystrata audit list|verify|export`: the workspace's hash-chained audit log. */
export function registerAuditCommands(program: Command, io: CliIo): void {
  const audit = program.command('audit').description("read, verify and export a workspace's audit log (a hash chain)");

  withConnection(audit.command('list <workspace>'), 'json')
    .description('list audit entries in seq order, one page at a time')
    .option('--limit <n>', `largest number of entries to return, 1–${MAX_PAGE_LIMIT} (server default 100)`, integerFrom(1, MAX_PAGE_LIMIT))
    .option('--cursor <seq>', 'where to continue (the nextCursor of the previous page: the last seq seen)', auditCursor)
    .addHelpText('after', examples('keystrata audit list $WS --output text', 'keystrata audit list $WS --limit 1000 --cursor 4000'))
    .action(async (workspace: string, options: Options & { limit?: number; cursor?: string }) => {
      const page = await connect(options, io).listAuditEntries(workspace, { limit: options.limit, cursor: options.cursor });
      if (options.output === 'json') return writeJson(io, page);
      writeTable(io, ['SEQ', 'AT', 'ACTOR', 'ACTION', 'OUTCOME', 'SOURCE', 'TARGET'], page.items.map(auditRow));
      writeNextCursor(io, page.nextCursor);
    });

  withConnection(audit.command('verify <workspace>'), 'text')
    .description(`check the whole hash chain on the server; exit status ${CHECK_FAILED_EXIT_CODE} when it does not verify`)
    .addHelpText(
      'after',
      `${examples('keystrata audit verify $WS', 'keystrata audit verify $WS -o json > verify.json; [ $? -eq 3 ] && echo "the audit log of $WS was altered"')}
Exit status: 0 the chain verifies; ${CHECK_FAILED_EXIT_CODE} it does not (an entry is missing, edited, reordered
or inserted: the first bad entry and the reason are printed); 1 the check could not be made.
`,
    )
    .action(async (workspace: string, options: Options) => {
      const result = await connect(options, io).verifyAudit(workspace);
      if (options.output === 'json') writeJson(io, result);
      else writeVerification(io, result);
      if (!result.ok) {
        const where = result.firstBadEntry === undefined ? '' : ` at seq ${result.firstBadEntry}`;
        throw new CheckFailed('audit_chain_broken', `the audit log of ${workspace} does not verify${where}: ${result.reason ?? 'no reason given'}`);
      }
    });

  withConnection(audit.command('export <workspace>'))
    .description('write the whole audit log as JSON lines (one entry per line, in seq order), page by page')
    .option('--file <path>', 'write to this new file (created with mode 0600; an existing file is not overwritten) instead of standard output')
    .addHelpText(
      'after',
      `${examples(
        'keystrata audit export $WS > audit.jsonl',
        'keystrata audit export $WS --file /secure/audit-$(date +%F).jsonl',
        'keystrata audit export $WS | jq -c \'select(.outcome == "failure")\'',
      )}
If the export fails part-way (exit status 1), the --file it was writing is removed; standard
output ends after the last complete entry received.
`,
    )
    .action(async (workspace: string, options: ConnectionOptions & { file?: string }) => {
      const client = connect(options, io);
      const count = await exportAudit(client, workspace, options.file === undefined ? stdoutSink(io) : await fileSink(options.file));
      io.stderr(`exported ${count} audit ${count === 1 ? 'entry' : 'entries'}${options.file === undefined ? '' : ` to ${options.file}`}\n`);
    });
}

/** `--cursor` of the audit log: a seq, as the server's nextCursor gives it. */
function auditCursor(value: string): string {
  if (!/^[0-9]{1,15}$/.test(value)) throw new InvalidArgumentError('expected the nextCursor of a previous page (a seq: digits only).');
  return value;
}

function auditRow(entry: AuditEntry): string[] {
  const { actor } = entry;
  const who = actor === undefined ? '-' : actor.type === 'admin' ? 'admin' : `${actor.name ?? actor.id ?? '?'} (${actor.role ?? '?'})`;
  const action = entry.unreadable !== undefined ? `(unreadable: ${entry.unreadable})` : (entry.action ?? '-');
  const outcome =
    entry.outcome === undefined ? '-' : [entry.outcome, entry.status === undefined ? '' : String(entry.status), entry.errorCode ?? ''].filter((s) => s !== '').join(' ');
  const target = Object.entries(entry.target ?? {}).map(([k, v]) => `${k}=${v}`).join(' ');
  return [String(entry.seq), entry.at, who, action, outcome, entry.sourceIp ?? '-', target || '-'];
}

function writeVerification(io: CliIo, result: AuditVerifyResponse): void {
  writeFields(io, [
    ['ok', result.ok ? 'yes' : 'no'],
    ['checked', `${result.checked} entries`],
    ...(result.firstBadEntry === undefined ? [] : [['first bad entry', `seq ${result.firstBadEntry}`] as const]),
    ...(result.reason === undefined ? [] : [['reason', result.reason] as const]),
    ['head', `seq ${result.head.seq}, link ${result.head.link}`],
  ]);
}

/** Where an export goes: written chunk by chunk, then closed, or aborted on failure. */
interface ExportSink {
  write(chunk: string): Promise<void>;
  close(): Promise<void>;
  /** `pending`: the complete lines received but not yet written. */
  abort(pending: string): Promise<void>;
}

function stdoutSink(io: CliIo): ExportSink {
  // process.stdout writes to files and pipes synchronously on Linux, so nothing piles up in memory.
  const write = (chunk: string): Promise<void> => Promise.resolve(io.stdout(chunk));
  // What was written cannot be taken back: end on the last complete entry received, so the
  // reader gets an exact prefix of the log (and exit status 1).
  return { write, close: () => Promise.resolve(), abort: write };
}

async function fileSink(path: string): Promise<ExportSink> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    // 'wx': a new file only, so an earlier export is never truncated and a planted symlink is not followed.
    handle = await open(path, 'wx', 0o600);
  } catch (err) {
    const reason = err instanceof Error && 'code' in err ? String(err.code) : 'unwritable';
    if (reason === 'EEXIST') throw new CliError('file_exists', `${path} already exists; remove it or choose another --file`);
    throw new CliError('file_unwritable', `cannot create ${path} (${reason})`);
  }
  const file = handle;
  return {
    // writeFile on a handle writes from the current position, all of it.
    write: (chunk) => file.writeFile(chunk, 'utf8'),
    close: () => file.close(),
    // A partial file could pass for a complete export: remove it (it is ours: created with 'wx').
    abort: async () => {
      await file.close().catch(() => undefined);
      await rm(path, { force: true });
    },
  };
}

/** Streams every entry into `sink` as one JSON line each; resolves to the number written. */
async function exportAudit(client: KeystrataClient, workspace: string, sink: ExportSink): Promise<number> {
  let count = 0;
  let chunk = '';
  try {
    for await (const entry of client.auditEntries(workspace, { limit: MAX_PAGE_LIMIT })) {
      chunk += `${JSON.stringify(entry)}\n`;
      count += 1;
      if (chunk.length >= EXPORT_CHUNK) {
        await sink.write(chunk);
        chunk = '';
      }
    }
    if (chunk !== '') await sink.write(chunk);
    await sink.close();
  } catch (err) {
    await sink.abort(chunk);
    throw err;
  }
  return count;
}
