import { Option, type Command } from 'commander';
import type { Scope } from '../../../sdk/index.js';
import { UsageError } from '../errors.js';
import { readInputFile, readStdin } from '../input.js';
import type { CliIo } from '../io.js';
import { collectContext, connect, examples, parseScope, withConnection, type ConnectionOptions, type FormatOptions } from '../options.js';
import { writeJson } from '../output.js';

interface EncryptOptions extends ConnectionOptions, FormatOptions {
  readonly scope: Scope;
  readonly context?: Record<string, string>;
  readonly text?: string;
  readonly file?: string;
}

/** `keystrata encrypt`: prints the ks1 ciphertext (text output is the default: it is one line). */
export function registerEncryptCommand(program: Command, io: CliIo): void {
  withConnection(program.command('encrypt <workspace> <env>'), 'text')
    .description('encrypt data under a scope; prints the ks1: ciphertext')
    .addOption(
      new Option('--scope <type:id>', 'what the data belongs to: job|event|connection|log, then its id')
        .argParser(parseScope)
        .makeOptionMandatory(),
    )
    .option('--context <key=value>', 'bind a key context (repeat for several); decrypt must then give the same', collectContext)
    .option('--text <utf8>', 'the plaintext, as text (otherwise --file, otherwise standard input)')
    .option('--file <path>', 'read the plaintext bytes from a file')
    .addHelpText(
      'after',
      examples(
        'keystrata encrypt $WS production --scope job:job_42 --text \'{"card":"…"}\'',
        'keystrata encrypt $WS production --scope connection:conn_7 --file creds.json',
        'tar c data | keystrata encrypt $WS production --scope event:evt_1 > event.ks1',
        'keystrata encrypt $WS production --scope log:l1 --text hi --output json   # with keyId',
      ),
    )
    .action(async (workspace: string, env: string, options: EncryptOptions) => {
      if (options.text !== undefined && options.file !== undefined) {
        throw new UsageError('give the plaintext with --text or with --file, not both');
      }
      const plaintext =
        options.text ?? (options.file !== undefined ? await readInputFile(options.file) : await readStdin(io, 'plaintext'));
      const result = await connect(options, io).encrypt(workspace, env, { scope: options.scope, plaintext, ...(options.context ? { context: options.context } : {}) });
      if (options.output === 'json') writeJson(io, result);
      else io.stdout(`${result.ciphertext}\n`);
    });
}
