import { Command } from 'commander';
import { registerAuditCommands } from './commands/audit.js';
import { registerClientCommands } from './commands/client.js';
import { registerDecryptCommand } from './commands/decrypt.js';
import { registerEncryptCommand } from './commands/encrypt.js';
import { registerEnvCommands } from './commands/env.js';
import { registerInitCommand } from './commands/init.js';
import { registerJwtCommand } from './commands/jwt.js';
import { registerKeysCommands } from './commands/keys.js';
import { registerRepackCommands } from './commands/repack.js';
import { registerSecretCommands } from './commands/secret.js';
import { registerServeCommand } from './commands/serve.js';
import { registerWorkspaceCommands } from './commands/workspace.js';
import type { CliIo } from './io.js';
import { packageVersion } from './version.js';

/**
 * The whole `keystrata` command tree, built fresh for every run. Commander is told to throw instead
 * of calling process.exit and to write through `io`, so a run can happen inside a test.
 */
export function buildProgram(io: CliIo): Command {
  const program = new Command('keystrata')
    .description('keystrata: multi-tenant key management service and encrypted secret store')
    .version(packageVersion(), '-V, --version')
    // Root options only before the subcommand: `secret get … --version 2` means the secret's version.
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      `
Client commands talk to a running server: set KEYSTRATA_URL (default http://127.0.0.1:8200)
and KEYSTRATA_TOKEN (the admin token, an API client's token or a JWT), or pass --url and --token.
Exit codes: 0 ok, 1 failed, 2 usage error, 3 a check did not pass (audit verify).`,
    );
  // Subcommands inherit exitOverride, output and error-help settings from here, so register after.
  registerServeCommand(program, io);
  registerInitCommand(program, io);
  registerWorkspaceCommands(program, io);
  registerEnvCommands(program, io);
  registerKeysCommands(program, io);
  registerRepackCommands(program, io);
  registerEncryptCommand(program, io);
  registerDecryptCommand(program, io);
  registerSecretCommands(program, io);
  registerClientCommands(program, io);
  registerJwtCommand(program, io);
  registerAuditCommands(program, io);
  return program;
}
