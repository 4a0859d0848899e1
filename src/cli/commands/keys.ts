import type { Command } from 'commander';
import type { HourlyKeyInfo, KeyStatus } from '../../../sdk/index.js';
import type { CliIo } from '../io.js';
import { connect, examples, withConnection, type ConnectionOptions, type FormatOptions } from '../options.js';
import { writeFields, writeJson } from '../output.js';

type Options = ConnectionOptions & FormatOptions;

/** `keystrata keys status|cmk`. */
export function registerKeysCommands(program: Command, io: CliIo): void {
  const keys = program.command('keys').description("inspect an environment's key hierarchy");

  withConnection(keys.command('status <workspace> <env>'), 'json')
    .description('show the CMK, environment key, current and latest hourly keys, and key counts')
    .addHelpText('after', examples('keystrata keys status 0b6c7a52-3f4e-4c1a-9d7e-2f0a1b2c3d4e production --output text'))
    .action(async (workspace: string, env: string, options: Options) => {
      const status = await connect(options, io).keyStatus(workspace, env);
      if (options.output === 'json') writeJson(io, status);
      else writeKeyStatus(io, status);
    });

  withConnection(keys.command('cmk <workspace> <env>'), 'json')
    .description("show the environment's customer main key (provider and state, never secrets)")
    .addHelpText('after', examples('keystrata keys cmk 0b6c7a52-3f4e-4c1a-9d7e-2f0a1b2c3d4e production'))
    .action(async (workspace: string, env: string, options: Options) => {
      const cmk = await connect(options, io).getCmk(workspace, env);
      if (options.output === 'json') writeJson(io, cmk);
      else writeFields(io, [['id', cmk.id], ['provider', cmk.provider], ['state', cmk.state], ['created', cmk.createdAt]]);
    });
}

function writeKeyStatus(io: CliIo, s: KeyStatus): void {
  const hourlyKey = (key: HourlyKeyInfo | null, none: string): string =>
    key === null ? none : `${key.id} ${key.state} from ${key.hourStart}`;
  writeFields(io, [
    ['environment', `${s.environment.name} (${s.environment.id})`],
    ['cmk', `${s.cmk.id} ${s.cmk.provider} ${s.cmk.state}`],
    ['ek', `${s.ek.id} ${s.ek.state} (created ${s.ek.createdAt})`],
    ['hourly key', hourlyKey(s.hourly.current, '(none in this period yet)')],
    ['latest hourly', hourlyKey(s.hourly.latest, '(none yet)')],
    ['hourly period', `${s.hourly.periodSeconds}s`],
    ['key counts', Object.entries(s.counts).map(([kind, n]) => `${kind}=${n}`).join(' ')],
  ]);
}
