import type { Command } from 'commander';
import type { CliIo } from '../io.js';
import { ACCESS_LIMITS, accessInteger, connect, examples, withConnection, type ConnectionOptions, type FormatOptions } from '../options.js';
import { writeJson } from '../output.js';

/** `keystrata jwt`: text output is the JWT alone, so that `TOKEN=$(keystrata jwt)` works. */
export function registerJwtCommand(program: Command, io: CliIo): void {
  const { min, max } = ACCESS_LIMITS.jwtTtlSeconds;
  withConnection(program.command('jwt'), 'text')
    .description("exchange the configured API client token for a short-lived JWT; prints only the JWT")
    .option('--ttl <seconds>', `lifetime of the JWT, ${min}–${max} seconds (default and maximum: server settings)`, accessInteger('jwtTtlSeconds'))
    .addHelpText(
      'after',
      `${examples(
        'export KEYSTRATA_TOKEN=$(keystrata jwt --ttl 900)   # with the client\'s API token in KEYSTRATA_TOKEN',
        'curl -H "Authorization: Bearer $(keystrata jwt)" $KEYSTRATA_URL/v1/workspaces/$WS',
        'keystrata jwt -o json   # with tokenType and expiresAt',
      )}
The JWT is accepted wherever the API token is, until it expires; the long-lived API token
then need not be handed to short-lived jobs. Only an API client's API token can be exchanged
(not the admin token, nor a JWT).
`,
    )
    .action(async (options: ConnectionOptions & FormatOptions & { ttl?: number }) => {
      const jwt = await connect(options, io).issueJwt(options.ttl === undefined ? {} : { ttlSeconds: options.ttl });
      if (options.output === 'json') writeJson(io, jwt);
      else io.stdout(`${jwt.token}\n`);
    });
}
