import type { Command } from 'commander';
import type { CmkInfo, HourlyKeyInfo, KeyStatus } from '../../../sdk/index.js';
import { UsageError } from '../errors.js';
import { readInputFile, readStdin, utf8Text } from '../input.js';
import type { CliIo } from '../io.js';
import { connect, examples, withConnection, type ConnectionOptions, type FormatOptions } from '../options.js';
import { writeFields, writeJson } from '../output.js';
import { repackSummary } from './repack-output.js';

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
      else writeCmk(io, cmk);
    });

  withConnection(keys.command('cmk-set <workspace> <env>'), 'text')
    .description(
      "test-and-save the environment's CMK: the key store must wrap and unwrap live first, then the environment key is re-wrapped under it (docs/byok.md)",
    )
    .requiredOption('--provider <name>', 'platform, uploaded, pkcs11, kmip, aws-kms, gcp-kms, azure-keyvault or vault-transit')
    .option('--config-file <path>', "the provider config as JSON (it holds credentials: read from a file, or standard input with '-', never from an argument)")
    .option(
      '--rotate-environment-key',
      'also replace the environment key: a new one under the new CMK, every key re-wrapped in the background (follow it with keystrata repack status); both CMKs stay required until it is done',
    )
    .addHelpText(
      'after',
      examples(
        'keystrata keys cmk-set $WS production --provider vault-transit --config-file vault-cmk.json',
        `printf '{"keyMaterial":"%s"}' "$(openssl rand -base64 32)" | keystrata keys cmk-set $WS production --provider uploaded --config-file -`,
        'keystrata keys cmk-set $WS production --provider platform',
        'keystrata keys cmk-set $WS production --provider platform --rotate-environment-key && keystrata repack status $WS production --watch',
      ),
    )
    .action(async (workspace: string, env: string, options: Options & { provider: string; configFile?: string; rotateEnvironmentKey?: boolean }) => {
      let config: Record<string, unknown> | undefined;
      if (options.configFile !== undefined) {
        const raw = options.configFile === '-' ? await readStdin(io, 'CMK config') : await readInputFile(options.configFile);
        const text = utf8Text(raw, 'the CMK config');
        raw.fill(0);
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          throw new UsageError('the CMK config is not valid JSON');
        }
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError('the CMK config must be a JSON object');
        config = parsed as Record<string, unknown>;
      } else if (options.provider !== 'platform') {
        throw new UsageError(`--config-file is required for provider ${options.provider}`);
      }
      const cmk = await connect(options, io).putCmk(workspace, env, {
        provider: options.provider,
        ...(config === undefined ? {} : { config }),
        ...(options.rotateEnvironmentKey === true ? { rotateEnvironmentKey: true } : {}),
      });
      if (options.output === 'json') writeJson(io, cmk);
      else writeCmk(io, cmk);
    });
}

function writeCmk(io: CliIo, cmk: CmkInfo): void {
  const health = cmk.health;
  writeFields(io, [
    ['id', cmk.id],
    ['provider', cmk.provider],
    ['state', cmk.state],
    ['created', cmk.createdAt],
    ['key version', cmk.keyVersion ?? '-'],
    ['config', JSON.stringify(cmk.config)],
    ['secret fields', cmk.secretFields.length === 0 ? '-' : `${cmk.secretFields.join(', ')} (set; never shown)`],
    ['health', health === null ? '- (platform-managed: not probed)' : `${health.state} since ${health.since} (checked ${health.checkedAt})${health.detail ? ` — ${health.detail}` : ''}`],
    ['repack', repackSummary(cmk.repack)],
  ]);
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
