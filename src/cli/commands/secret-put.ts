import { Option, type Command } from 'commander';
import { isKeystrataApiError, type KeystrataClient, type VaultObject } from '../../../sdk/index.js';
import { CliError, UsageError } from '../errors.js';
import { readStdin, utf8Text } from '../input.js';
import type { CliIo } from '../io.js';
import {
  collectContext,
  connect,
  examples,
  parseJsonObject,
  withConnection,
  type ConnectionOptions,
  type FormatOptions,
} from '../options.js';
import { writeJson } from '../output.js';

interface PutOptions extends ConnectionOptions, FormatOptions {
  readonly context: Record<string, string>;
  readonly value?: string;
  readonly metadata?: Record<string, unknown>;
  readonly update?: boolean;
}

interface PutRequest {
  readonly ws: string;
  readonly env: string;
  readonly name: string;
  readonly value: string;
  readonly options: PutOptions;
}

/** `keystrata secret put`: create, or with --update replace the value of an existing secret. */
export function registerSecretPutCommand(secret: Command, io: CliIo): void {
  withConnection(secret.command('put <workspace> <env> <name>'), 'json')
    .description('store a secret under a key context (the value comes from --value or standard input)')
    .addOption(
      new Option('--context <key=value>', 'key context entry; repeat for several (required)')
        .argParser(collectContext)
        .makeOptionMandatory(),
    )
    .option('--value <value>', 'the value (prefer standard input: arguments end up in shell history and ps)')
    .option('--metadata <json>', 'non-secret metadata, a JSON object (only when the secret is created; not with --update)', parseJsonObject)
    .option('--update', 'if a secret with this name exists, store the value as its next version (the value only)')
    .addHelpText(
      'after',
      examples(
        'printf %s "$DB_PASSWORD" | keystrata secret put $WS production db-password --context organization_id=org_1',
        'keystrata secret put $WS production api-key --context organization_id=org_1 --context app=billing --value abc --metadata \'{"owner":"payments"}\'',
        'keystrata secret put $WS production db-password --context organization_id=org_1 --update < new-password.txt',
      ),
    )
    .action(async (ws: string, env: string, name: string, options: PutOptions) => {
      // The server's update takes only a value: checked before reading input or sending anything.
      if (options.update === true && options.metadata !== undefined) {
        throw new UsageError(
          '--metadata cannot be combined with --update: metadata can only be set when the secret is created (an update stores a new value only)',
        );
      }
      const value = options.value ?? utf8Text(await readStdin(io, 'value'), 'the value');
      const client = connect(options, io);
      const stored = await put(client, { ws, env, name, value, options });
      if (options.output === 'json') writeJson(io, stored);
      else io.stdout(`stored ${stored.name} version ${stored.version} (${stored.id})\n`);
    });
}

async function put(client: KeystrataClient, request: PutRequest): Promise<VaultObject> {
  const { ws, env, name, value, options } = request;
  try {
    return await client.createObject(ws, env, { name, value, context: options.context, metadata: options.metadata });
  } catch (err) {
    if (options.update !== true || !isKeystrataApiError(err) || err.code !== 'already_exists') throw err;
  }
  const current = await client.getObjectByName(ws, env, name);
  // An update keeps the object's key context; silently ignoring a different --context would leave
  // the value encrypted under a context the caller did not ask for.
  if (!sameContext(current.context, options.context)) {
    throw new CliError(
      'context_mismatch',
      `"${name}" exists with another key context (${JSON.stringify(current.context)}); an update cannot change it`,
    );
  }
  return client.updateObject(ws, env, current.id, { value, expectedVersion: current.version });
}

function sameContext(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}
