import type { Command } from 'commander';
import { loadConfig, type Config } from '../../config.js';
import type { CliIo } from '../io.js';
import { examples, integerFrom } from '../options.js';

/** Flags of `serve` and `init` that stand for configuration variables. */
export interface ServerFlags {
  readonly host?: string;
  readonly port?: number;
  readonly dataDir?: string;
}

/**
 * Configuration from the environment with the flags laid over it. Flags are applied by setting the
 * matching variables on a copy, so that loadConfig stays the one place that validates configuration.
 */
export function configFrom(io: CliIo, flags: ServerFlags): Config {
  const env: Record<string, string | undefined> = { ...io.env };
  if (flags.host !== undefined) env.KEYSTRATA_HOST = flags.host;
  if (flags.port !== undefined) env.PORT = String(flags.port);
  if (flags.dataDir !== undefined) env.KEYSTRATA_DATA_DIR = flags.dataDir;
  return loadConfig(env);
}

/** `keystrata serve`. */
export function registerServeCommand(program: Command, io: CliIo): void {
  program
    .command('serve')
    .description('run the keystrata server (HTTP API) until SIGINT or SIGTERM')
    .option('--host <host>', 'interface to listen on (env KEYSTRATA_HOST; default 127.0.0.1)')
    .option('--port <port>', 'TCP port, 0 for any free one (env PORT; default 8200)', integerFrom(0))
    .option('--data-dir <dir>', 'where the database and root key live (env KEYSTRATA_DATA_DIR; default ./data)')
    .addHelpText(
      'after',
      `${examples('keystrata serve', 'keystrata serve --host 0.0.0.0 --port 8200 --data-dir /var/lib/keystrata', 'KEYSTRATA_DATABASE_URL=postgres://… keystrata serve')}
Other settings come from the environment (KEYSTRATA_DATABASE_URL, KEYSTRATA_ROOT_KEY,
KEYSTRATA_ROOT_KEY_FILE, KEYSTRATA_ADMIN_TOKEN, KEYSTRATA_LOG_LEVEL, …); every variable, its
default and its range are in the configuration table of README.md ("Configuration").
`,
    )
    .action(async (flags: ServerFlags) => {
      const config = configFrom(io, flags);
      // Loaded here, not at the top: the server pulls in fastify and the database drivers, which
      // the client verbs should not pay for at every start.
      const { startServer } = await import('../../server.js');
      const shutdown = waitForShutdownSignal();
      try {
        // The server announces its address (and a first-run admin token) itself, through io.
        const server = await startServer(config, { announce: (message) => io.stdout(`${message}\n`) });
        const signal = await shutdown.signal;
        io.stderr(`${signal} received, shutting down\n`);
        await server.close();
      } finally {
        shutdown.dispose();
      }
    });
}

/**
 * Resolves on the first SIGINT or SIGTERM. The handlers are removed as soon as one arrives, so a
 * second Ctrl-C during a slow shutdown falls back to Node's default and ends the process at once.
 */
function waitForShutdownSignal(): { signal: Promise<NodeJS.Signals>; dispose: () => void } {
  let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const dispose = (): void => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (received) => {
      dispose();
      resolve(received);
    };
  });
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return { signal, dispose };
}
