import type { Command } from 'commander';
import type { Config } from '../../config.js';
import type { CliIo } from '../io.js';
import { examples } from '../options.js';
import { configFrom } from './serve.js';

/** `keystrata init`: prepares the data directory, root key and admin token ahead of `serve`. */
export function registerInitCommand(program: Command, io: CliIo): void {
  program
    .command('init')
    .description('initialise the data directory (database, root key, admin token); safe to run again')
    .option('--data-dir <dir>', 'where the database and root key live (env KEYSTRATA_DATA_DIR; default ./data)')
    .addHelpText(
      'after',
      examples('keystrata init', 'keystrata init --data-dir /var/lib/keystrata', 'KEYSTRATA_ROOT_KEY=$(openssl rand -base64 32) keystrata init'),
    )
    .action(async (flags: { dataDir?: string }) => {
      const config = configFrom(io, flags);
      // Loaded lazily for the same reason as the server: only this command needs the store.
      const { initializeDataDir } = await import('../../service/bootstrap.js');
      const result = await initializeDataDir(config);
      if (!result.created) {
        io.stdout(`keystrata is already initialised in ${config.dataDir}; nothing was changed.\n`);
        return;
      }
      io.stdout(`Initialised keystrata:\n${describeSetup(config)}`);
      if (result.adminToken !== undefined) {
        io.stdout(
          `\nAdmin token (shown this once; it is stored only as a hash and cannot be shown again):\n\n  ${result.adminToken}\n\n` +
            'Store it in a password manager or secret store now. Anyone holding it has full control of keystrata.\n',
        );
      } else if (config.adminToken !== undefined) {
        io.stdout('\nAdmin token: the one given in KEYSTRATA_ADMIN_TOKEN.\n');
      }
    });
}

function describeSetup(config: Config): string {
  const lines = [
    `  data directory  ${config.dataDir}`,
    `  database        ${config.databaseUrl === undefined ? `SQLite, ${config.dataDir}/keystrata.db` : 'PostgreSQL (KEYSTRATA_DATABASE_URL)'}`,
    `  root key        ${config.rootKeyBase64 === undefined ? `${config.rootKeyFile} (mode 0600; back it up: without it nothing can be decrypted)` : 'from KEYSTRATA_ROOT_KEY'}`,
  ];
  return `${lines.join('\n')}\n`;
}
