import type { Command } from 'commander';
import type { Workspace } from '../../../sdk/index.js';
import type { CliIo } from '../io.js';
import { MAX_PAGE_LIMIT, connect, examples, integerFrom, withConnection, type ConnectionOptions, type FormatOptions } from '../options.js';
import { writeFields, writeJson, writeNextCursor, writeTable } from '../output.js';

type Options = ConnectionOptions & FormatOptions;

/** `keystrata workspace create|get|list`. */
export function registerWorkspaceCommands(program: Command, io: CliIo): void {
  const workspace = program.command('workspace').description('create, show and list workspaces (tenants)');

  withConnection(workspace.command('create <name>'), 'json')
    .description('create a workspace (it starts with one environment, "production")')
    .addHelpText('after', examples('keystrata workspace create acme', 'keystrata workspace create acme --output text'))
    .action(async (name: string, options: Options) => {
      const created = await connect(options, io).createWorkspace({ name });
      if (options.output === 'json') writeJson(io, created);
      else writeWorkspace(io, created);
    });

  withConnection(workspace.command('get <workspace-id>'), 'json')
    .description('show a workspace and its environments')
    .addHelpText('after', examples('keystrata workspace get 0b6c7a52-3f4e-4c1a-9d7e-2f0a1b2c3d4e --output text'))
    .action(async (id: string, options: Options) => {
      const found = await connect(options, io).getWorkspace(id);
      if (options.output === 'json') writeJson(io, found);
      else writeWorkspace(io, found);
    });

  withConnection(workspace.command('list'), 'json')
    .description('list workspaces, one page at a time')
    .option('--limit <n>', `largest number of workspaces to return, 1–${MAX_PAGE_LIMIT} (server default 100)`, integerFrom(1, MAX_PAGE_LIMIT))
    .option('--cursor <cursor>', 'where to continue (the nextCursor of the previous page)')
    .addHelpText('after', examples('keystrata workspace list --output text', 'keystrata workspace list --limit 50 --cursor <nextCursor>'))
    .action(async (options: Options & { limit?: number; cursor?: string }) => {
      const page = await connect(options, io).listWorkspaces({ limit: options.limit, cursor: options.cursor });
      if (options.output === 'json') return writeJson(io, page);
      writeTable(io, ['ID', 'NAME', 'CREATED'], page.items.map((w) => [w.id, w.name, w.createdAt]));
      writeNextCursor(io, page.nextCursor);
    });
}

function writeWorkspace(io: CliIo, workspace: Workspace): void {
  writeFields(io, [
    ['id', workspace.id],
    ['name', workspace.name],
    ['created', workspace.createdAt],
    ['environments', workspace.environments.map((e) => `${e.name} (${e.id})`).join(', ') || '(none)'],
  ]);
}
