import type { Command } from 'commander';
import type { CliIo } from '../io.js';
import { MAX_PAGE_LIMIT, connect, examples, integerFrom, withConnection, type ConnectionOptions, type FormatOptions } from '../options.js';
import { writeJson, writeNextCursor, writeTable } from '../output.js';
import { registerSecretPutCommand } from './secret-put.js';
import { isObjectId, resolveObjectId } from './secret-ref.js';

type Options = ConnectionOptions & FormatOptions;

/** `keystrata secret put|get|list|delete|versions`: the encrypted key-value store. */
export function registerSecretCommands(program: Command, io: CliIo): void {
  const secret = program
    .command('secret')
    .description('store and read secrets (vault objects); <name-or-id> is an id if it is a UUID, else a name');

  registerSecretPutCommand(secret, io);

  withConnection(secret.command('get <workspace> <env> <name-or-id>'))
    .description('print the value of a secret, exactly as stored (no newline added)')
    .option('--version <n>', 'an earlier version instead of the current one', integerFrom(1))
    .option('--json', 'print the whole object (value, version, context, metadata) as JSON')
    .addHelpText(
      'after',
      examples('keystrata secret get $WS production db-password', 'keystrata secret get $WS production db-password --version 2 --json'),
    )
    .action(async (ws: string, env: string, ref: string, options: ConnectionOptions & { version?: number; json?: boolean }) => {
      const client = connect(options, io);
      const object =
        options.version !== undefined
          ? await client.getObjectVersion(ws, env, await resolveObjectId(client, ws, env, ref), options.version)
          : isObjectId(ref)
            ? await client.getObject(ws, env, ref)
            : await client.getObjectByName(ws, env, ref);
      if (options.json === true) writeJson(io, object);
      else io.stdout(object.value);
    });

  withConnection(secret.command('list <workspace> <env>'), 'json')
    .description('list secrets (names and versions, never values), one page at a time')
    .option('--limit <n>', `largest number of secrets to return, 1–${MAX_PAGE_LIMIT} (server default 100)`, integerFrom(1, MAX_PAGE_LIMIT))
    .option('--cursor <cursor>', 'where to continue (the nextCursor of the previous page)')
    .addHelpText('after', examples('keystrata secret list $WS production --output text', 'keystrata secret list $WS production --limit 100 --cursor <nextCursor>'))
    .action(async (ws: string, env: string, options: Options & { limit?: number; cursor?: string }) => {
      const page = await connect(options, io).listObjects(ws, env, { limit: options.limit, cursor: options.cursor });
      if (options.output === 'json') return writeJson(io, page);
      writeTable(io, ['NAME', 'VERSION', 'ID', 'UPDATED'], page.items.map((o) => [o.name, String(o.version), o.id, o.updatedAt]));
      writeNextCursor(io, page.nextCursor);
    });

  withConnection(secret.command('delete <workspace> <env> <name-or-id>'), 'json')
    .description('delete a secret and all its versions')
    .addHelpText('after', examples('keystrata secret delete $WS production db-password'))
    .action(async (ws: string, env: string, ref: string, options: Options) => {
      const client = connect(options, io);
      const id = await resolveObjectId(client, ws, env, ref);
      await client.deleteObject(ws, env, id);
      if (options.output === 'json') writeJson(io, { deleted: true, id });
      else io.stdout(`deleted ${ref}${ref === id ? '' : ` (${id})`}\n`);
    });

  withConnection(secret.command('versions <workspace> <env> <name-or-id>'), 'json')
    .description('list the versions of a secret, newest first')
    .addHelpText('after', examples('keystrata secret versions $WS production db-password --output text'))
    .action(async (ws: string, env: string, ref: string, options: Options) => {
      const client = connect(options, io);
      const versions = await client.listObjectVersions(ws, env, await resolveObjectId(client, ws, env, ref));
      if (options.output === 'json') writeJson(io, versions);
      else writeTable(io, ['VERSION', 'CREATED'], versions.items.map((v) => [String(v.version), v.createdAt]));
    });
}
