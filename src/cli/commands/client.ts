import { Option, type Command } from 'commander';
import type { ApiClient, ClientRole, CreateClientRequest, UpdateClientRequest } from '../../../sdk/index.js';
import { UsageError } from '../errors.js';
import type { CliIo } from '../io.js';
import {
  ACCESS_LIMITS,
  MAX_PAGE_LIMIT,
  accessInteger,
  collectList,
  connect,
  examples,
  integerFrom,
  withConnection,
  type ConnectionOptions,
  type FormatOptions,
} from '../options.js';
import { writeFields, writeIssuedToken, writeJson, writeNextCursor, writeTable } from '../output.js';

type Options = ConnectionOptions & FormatOptions;

const ROLES: readonly ClientRole[] = ['admin', 'operator', 'app', 'auditor'];

/** The client settings shared by create and update, as commander parses them. */
interface SettingsOptions {
  readonly name?: string;
  readonly role?: ClientRole;
  readonly env?: string[];
  readonly cidr?: string[];
  readonly tokenTtl?: number;
  /** "default" from `update --rate-limit default`. */
  readonly rateLimit?: number | 'default';
}

interface CreateOptions extends Options, SettingsOptions {
  /** Mandatory options: commander refuses the command without them. */
  readonly name: string;
  readonly role: ClientRole;
}

interface UpdateOptions extends Options, SettingsOptions {
  readonly disable?: boolean;
  readonly enable?: boolean;
}

const ENV_HELP = 'an environment the client may use, or "*" for every one; repeat for several';
const CIDR_HELP = 'an IPv4/IPv6 CIDR its requests must come from, e.g. 10.0.0.0/8; repeat for several';
const TTL_HELP = `lifetime of each API token, ${ACCESS_LIMITS.tokenTtlSeconds.min}–${ACCESS_LIMITS.tokenTtlSeconds.max} seconds`;

/** `keystrata client create|list|show|update|delete|rotate-token`: API clients and their tokens. */
export function registerClientCommands(program: Command, io: CliIo): void {
  const client = program
    .command('client')
    .description('manage the API clients of a workspace (who may call the API, with which role, from where)');

  withConnection(client.command('create <workspace>'), 'text')
    .description('create an API client; prints it and its first API token (shown this once)')
    .requiredOption('--name <name>', 'the client name, unique in the workspace')
    .addOption(new Option('--role <role>', 'what the client may do').choices(ROLES).makeOptionMandatory())
    .option('--env <name>', `${ENV_HELP} (default: *)`, collectList)
    .option('--cidr <cidr>', `${CIDR_HELP} (default: any address)`, collectList)
    .option('--token-ttl <seconds>', `${TTL_HELP} (default: server setting)`, accessInteger('tokenTtlSeconds'))
    .option('--rate-limit <n>', 'requests per second, bursts of twice that (default: server setting)', accessInteger('rateLimitPerSecond'))
    .addHelpText(
      'after',
      `${examples(
        'keystrata client create $WS --name billing --role app --env production',
        'keystrata client create $WS --name ci --role operator --env staging --env production --cidr 10.0.0.0/8 --token-ttl 86400',
        'keystrata client create $WS --name billing --role app -o json | jq -r .token > billing.token',
      )}
The API token is printed on a line of its own and is not shown again: the server keeps only a hash.
Roles: admin (everything in the workspace, clients included), operator (environments, key
status), app (encrypt, decrypt, secrets), auditor (read-only: workspace, keys, clients, audit
log); docs/access.md has the full table.
`,
    )
    .action(async (workspace: string, options: CreateOptions) => {
      const request: CreateClientRequest = { name: options.name, role: options.role, ...settings(options) };
      const created = await connect(options, io).createClient(workspace, request);
      if (options.output === 'json') {
        writeJson(io, created);
        io.stderr('note: the API token above ("token") is not shown again; store it now\n');
        return;
      }
      writeClient(io, created.client);
      io.stdout('\n');
      writeIssuedToken(io, { ...created, label: `API token of client "${created.client.name}"` });
    });

  withConnection(client.command('list <workspace>'), 'json')
    .description('list the API clients of a workspace, one page at a time')
    .option('--limit <n>', `largest number of clients to return, 1–${MAX_PAGE_LIMIT} (server default 100)`, integerFrom(1, MAX_PAGE_LIMIT))
    .option('--cursor <cursor>', 'where to continue (the nextCursor of the previous page)')
    .addHelpText('after', examples('keystrata client list $WS --output text', 'keystrata client list $WS --limit 50 --cursor <nextCursor>'))
    .action(async (workspace: string, options: Options & { limit?: number; cursor?: string }) => {
      const page = await connect(options, io).listClients(workspace, { limit: options.limit, cursor: options.cursor });
      if (options.output === 'json') return writeJson(io, page);
      writeTable(
        io,
        ['ID', 'NAME', 'ROLE', 'ENVIRONMENTS', 'STATUS', 'REQUESTS', 'LAST USED'],
        page.items.map((c) => [c.id, c.name, c.role, c.environments.join(','), status(c), String(c.usage.requests), c.usage.lastUsedAt ?? 'never']),
      );
      writeNextCursor(io, page.nextCursor);
    });

  withConnection(client.command('show <workspace> <client-id>'), 'json')
    .description('show an API client: settings, usage (requests, failures, last use) and its working tokens')
    .addHelpText('after', examples('keystrata client show $WS c1a2b3c4-0000-4000-8000-000000000001 --output text'))
    .action(async (workspace: string, id: string, options: Options) => {
      const found = await connect(options, io).getClient(workspace, id);
      if (options.output === 'json') writeJson(io, found);
      else writeClient(io, found);
    });

  withConnection(client.command('update <workspace> <client-id>'), 'json')
    .description('change an API client; only what is given changes (--env and --cidr replace the whole list)')
    .option('--name <name>', 'a new name')
    .addOption(new Option('--role <role>', 'a new role').choices(ROLES))
    .option('--env <name>', ENV_HELP, collectList)
    .option('--cidr <cidr>', CIDR_HELP, collectList)
    .option('--token-ttl <seconds>', `${TTL_HELP} (for tokens issued from now on)`, accessInteger('tokenTtlSeconds'))
    .option('--rate-limit <n|default>', 'requests per second, or "default" for the server setting', rateLimitOrDefault)
    .addOption(new Option('--disable', 'refuse the client\'s tokens and JWTs until it is enabled again').conflicts('enable'))
    .addOption(new Option('--enable', 'accept the client\'s tokens again'))
    .addHelpText(
      'after',
      examples(
        'keystrata client update $WS $CLIENT --disable',
        'keystrata client update $WS $CLIENT --role operator --env staging --env production',
        'keystrata client update $WS $CLIENT --rate-limit default --output text',
      ),
    )
    .action(async (workspace: string, id: string, options: UpdateOptions) => {
      const request: UpdateClientRequest = {
        ...(options.name !== undefined ? { name: options.name } : {}),
        ...(options.role !== undefined ? { role: options.role } : {}),
        ...settings(options),
        ...(options.disable === true ? { disabled: true } : options.enable === true ? { disabled: false } : {}),
      };
      if (Object.keys(request).length === 0) {
        throw new UsageError('nothing to update: give at least one of --name, --role, --env, --cidr, --token-ttl, --rate-limit, --disable, --enable');
      }
      const updated = await connect(options, io).updateClient(workspace, id, request);
      if (options.output === 'json') writeJson(io, updated);
      else writeClient(io, updated);
    });

  withConnection(client.command('delete <workspace> <client-id>'), 'json')
    .description('delete an API client; its tokens and JWTs stop working at once')
    .addHelpText('after', examples('keystrata client delete $WS c1a2b3c4-0000-4000-8000-000000000001'))
    .action(async (workspace: string, id: string, options: Options) => {
      await connect(options, io).deleteClient(workspace, id);
      if (options.output === 'json') writeJson(io, { deleted: true, id });
      else io.stdout(`deleted client ${id}\n`);
    });

  const grace = ACCESS_LIMITS.graceSeconds;
  withConnection(client.command('rotate-token <workspace> <client-id>'), 'text')
    .description("issue a new API token for a client (shown this once); the client's previous tokens stop after a grace period")
    .option('--grace <seconds>', `how long the previous tokens keep working, ${grace.min}–${grace.max} seconds (default: server setting)`, accessInteger('graceSeconds'))
    .addHelpText(
      'after',
      examples(
        'keystrata client rotate-token $WS $CLIENT',
        'keystrata client rotate-token $WS $CLIENT --grace 0        # old tokens stop now',
        'keystrata client rotate-token $WS $CLIENT -o json | jq -r .token',
      ),
    )
    .action(async (workspace: string, id: string, options: Options & { grace?: number }) => {
      const rotated = await connect(options, io).rotateClientToken(workspace, id, options.grace === undefined ? {} : { graceSeconds: options.grace });
      if (options.output === 'json') {
        writeJson(io, rotated);
        io.stderr('note: the API token above ("token") is not shown again; store it now\n');
        return;
      }
      writeIssuedToken(io, {
        ...rotated,
        label: `New API token of client ${id}`,
        after: `The previous tokens stop working at ${rotated.previousTokensExpireBy}.`,
      });
    });
}

/** The settings given, under their API names; absent options are left out. */
function settings(options: SettingsOptions): Omit<UpdateClientRequest, 'name' | 'role' | 'disabled'> {
  return {
    ...(options.env !== undefined ? { environments: options.env } : {}),
    ...(options.cidr !== undefined ? { allowedCidrs: options.cidr } : {}),
    ...(options.tokenTtl !== undefined ? { tokenTtlSeconds: options.tokenTtl } : {}),
    ...(options.rateLimit !== undefined ? { rateLimitPerSecond: options.rateLimit === 'default' ? null : options.rateLimit } : {}),
  };
}

/**
 * `--rate-limit`: a number of requests per second, or "default" (sent as null: the server's
 * setting). Not null here: commander replaces a parser's null with an empty string.
 */
function rateLimitOrDefault(value: string): number | 'default' {
  return value === 'default' ? value : accessInteger('rateLimitPerSecond')(value);
}

function status(client: ApiClient): string {
  return client.disabled ? 'disabled' : 'enabled';
}

function writeClient(io: CliIo, c: ApiClient): void {
  const { usage } = c;
  writeFields(io, [
    ['id', c.id],
    ['name', c.name],
    ['role', c.role],
    ['environments', c.environments.join(', ').replace(/^\*$/, '* (every environment)') || '(none)'],
    ['allowed cidrs', c.allowedCidrs.join(', ') || '(none)'],
    ['token ttl', `${c.tokenTtlSeconds}s`],
    ['rate limit', c.rateLimitPerSecond === null ? 'server default' : `${c.rateLimitPerSecond}/s`],
    ['status', status(c)],
    ['created', c.createdAt],
    ['updated', c.updatedAt],
    ['requests', String(usage.requests)],
    ['failures', String(usage.failures)],
    ['last used', usage.lastUsedAt === null ? 'never' : `${usage.lastUsedAt} from ${usage.lastUsedIp ?? 'an unknown address'}`],
    ...(c.tokens.length === 0
      ? [['tokens', '(none working)'] as const]
      : c.tokens.map((t) => ['token', `${t.id} expires ${t.expiresAt} (created ${t.createdAt})`] as const)),
  ]);
}
