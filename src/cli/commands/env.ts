import type { Command } from 'commander';
import type { CliIo } from '../io.js';
import { connect, examples, withConnection, type ConnectionOptions, type FormatOptions } from '../options.js';
import { writeFields, writeJson } from '../output.js';

/** `keystrata env create`. */
export function registerEnvCommands(program: Command, io: CliIo): void {
  const env = program.command('env').description('manage the environments of a workspace');

  withConnection(env.command('create <workspace> <name>'), 'json')
    .description('create an environment (its own keys; nothing crosses environments)')
    .addHelpText('after', examples('keystrata env create 0b6c7a52-3f4e-4c1a-9d7e-2f0a1b2c3d4e staging'))
    .action(async (workspace: string, name: string, options: ConnectionOptions & FormatOptions) => {
      const created = await connect(options, io).createEnvironment(workspace, { name });
      if (options.output === 'json') writeJson(io, created);
      else writeFields(io, [['id', created.id], ['name', created.name], ['created', created.createdAt]]);
    });
}
