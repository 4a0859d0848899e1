import type { Config } from './config.js';
import { buildApp } from './http/app.js';
import { openKeystrata, type OpenOptions } from './service/keystrata.js';

/** A running keystrata server. */
export interface RunningServer {
  /** e.g. http://127.0.0.1:8200 */
  readonly url: string;
  close(): Promise<void>;
}

export interface StartOptions extends OpenOptions {
  /** Where to print the one-time first-run message (admin token). Defaults to process.stdout. */
  readonly announce?: (message: string) => void;
}

function firstRunMessage(url: string, token: string): string {
  return [
    '',
    'keystrata: first start — an admin token was created. It is shown ONCE; store it somewhere safe.',
    '',
    `  export KEYSTRATA_URL=${url}`,
    `  export KEYSTRATA_TOKEN=${token}`,
    '',
    '  curl -s -H "Authorization: Bearer $KEYSTRATA_TOKEN" -H "content-type: application/json" \\',
    '       -d \'{"name":"acme"}\' $KEYSTRATA_URL/v1/workspaces',
    '',
    '  (or: npx keystrata workspace create acme)',
    '',
  ].join('\n');
}

/** Initialise the data directory / root key / admin token if needed, open the store, and listen. */
export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const ks = await openKeystrata(config, options);
  let app;
  try {
    app = await buildApp(ks, config);
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await app?.close();
    await ks.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  const announce = options.announce ?? ((message: string) => process.stdout.write(message + '\n'));
  if (ks.generatedAdminToken !== undefined) announce(firstRunMessage(url, ks.generatedAdminToken));
  announce(`keystrata listening on ${url} (store: ${ks.store.kind}, data: ${config.databaseUrl === undefined ? config.dataDir : 'postgres'})`);
  let closing: Promise<void> | undefined;
  return {
    url,
    close() {
      closing ??= (async () => {
        await app.close();
        await ks.close();
      })();
      return closing;
    },
  };
}
