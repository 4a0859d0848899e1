import type { Command } from 'commander';
import type { Scope } from '../../../sdk/index.js';
import { CliError, UsageError } from '../errors.js';
import { readStdin, utf8Text } from '../input.js';
import type { CliIo } from '../io.js';
import { collectContext, connect, examples, parseScope, withConnection, type ConnectionOptions } from '../options.js';

interface DecryptOptions extends ConnectionOptions {
  readonly scope?: Scope;
  readonly context?: Record<string, string>;
  readonly base64?: boolean;
}

/** `keystrata decrypt`: writes the plaintext bytes exactly, with nothing added. */
export function registerDecryptCommand(program: Command, io: CliIo): void {
  withConnection(program.command('decrypt <workspace> <env> [ciphertext]'))
    .description('decrypt a ks1: ciphertext (argument or standard input); writes the raw plaintext')
    .option('--scope <type:id>', 'also check that the ciphertext belongs to this scope', parseScope)
    .option('--context <key=value>', 'the key context given at encryption, if any (repeat for several)', collectContext)
    .option('--base64', 'write the plaintext as base64 (for binary data on a terminal)')
    .addHelpText(
      'after',
      examples(
        'keystrata decrypt $WS production ks1:AAEC… --scope job:job_42',
        'keystrata decrypt $WS production < event.ks1 > event.tar',
        'keystrata decrypt $WS production "$CT" --base64',
      ),
    )
    .action(async (workspace: string, env: string, argument: string | undefined, options: DecryptOptions) => {
      const ciphertext = (argument ?? utf8Text(await readStdin(io, 'ciphertext'), 'the ciphertext')).trim();
      if (ciphertext === '') throw new UsageError('the ciphertext is empty');
      const { plaintext } = await connect(options, io).decrypt(workspace, env, {
        ciphertext,
        ...(options.scope ? { scope: options.scope } : {}),
        ...(options.context ? { context: options.context } : {}),
      });
      if (options.base64 === true) io.stdout(`${Buffer.from(plaintext).toString('base64')}\n`);
      else writeBytes(io, plaintext);
    });
}

function writeBytes(io: CliIo, bytes: Uint8Array): void {
  if (io.stdoutBytes !== undefined) return io.stdoutBytes(bytes);
  try {
    io.stdout(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new CliError('binary_output', 'the plaintext is not UTF-8 text and this output takes only text: use --base64');
  }
}
