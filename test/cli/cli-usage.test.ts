import { describe, expect, it } from 'vitest';
import { CreateClientBody, JwtRequestBody, RotateTokenBody, UpdateClientBody } from '../../src/http/access-schemas.js';
import { ACCESS_LIMITS } from '../../src/cli/options.js';
import { run } from './run.js';

const CLIENT_OPTIONS = ['--url', '--token'];

// Every command, with options its --help must mention.
const COMMANDS: [string[], string[]][] = [
  [[], ['serve', 'init', 'workspace', 'env', 'keys', 'repack', 'encrypt', 'decrypt', 'secret', 'client', 'jwt', 'audit', 'KEYSTRATA_TOKEN', '3 a check did not pass']],
  [['serve'], ['--host', '--port', '--data-dir', 'Examples:']],
  [['init'], ['--data-dir', 'Examples:']],
  [['workspace'], ['create', 'get', 'list']],
  [['workspace', 'create'], [...CLIENT_OPTIONS, '--output', 'Examples:']],
  [['workspace', 'get'], [...CLIENT_OPTIONS, '--output', 'Examples:']],
  [['workspace', 'list'], [...CLIENT_OPTIONS, '--limit', '--cursor', 'Examples:']],
  [['env'], ['create']],
  [['env', 'create'], [...CLIENT_OPTIONS, '--output', 'Examples:']],
  [['keys'], ['status', 'cmk']],
  [['keys', 'status'], [...CLIENT_OPTIONS, '--output', 'Examples:']],
  [['keys', 'cmk'], [...CLIENT_OPTIONS, '--output', 'Examples:']],
  [['keys', 'cmk-set'], [...CLIENT_OPTIONS, '--provider', '--config-file', '--rotate-environment-key', '--output', 'Examples:']],
  [['repack'], ['status']],
  [['repack', 'status'], [...CLIENT_OPTIONS, '--watch', '--interval', '--output', 'repack_in_progress', 'Examples:']],
  [['encrypt'], [...CLIENT_OPTIONS, '--scope', '--text', '--file', '--output', 'Examples:']],
  [['decrypt'], [...CLIENT_OPTIONS, '--scope', '--base64', 'Examples:']],
  [['secret'], ['put', 'get', 'list', 'delete', 'versions']],
  [['secret', 'put'], [...CLIENT_OPTIONS, '--context', '--value', '--metadata', '--update', 'Examples:']],
  [['secret', 'get'], [...CLIENT_OPTIONS, '--version', '--json', 'Examples:']],
  [['secret', 'list'], [...CLIENT_OPTIONS, '--limit', '--cursor', 'Examples:']],
  [['secret', 'delete'], [...CLIENT_OPTIONS, 'Examples:']],
  [['secret', 'versions'], [...CLIENT_OPTIONS, 'Examples:']],
  [['client'], ['create', 'list', 'show', 'update', 'delete', 'rotate-token']],
  [['client', 'create'], [...CLIENT_OPTIONS, '--name', '--role', '--env', '--cidr', '--token-ttl', '--rate-limit', '--output', 'not shown again', 'Examples:']],
  [['client', 'list'], [...CLIENT_OPTIONS, '--limit', '--cursor', '--output', 'Examples:']],
  [['client', 'show'], [...CLIENT_OPTIONS, '--output', 'Examples:']],
  [['client', 'update'], [...CLIENT_OPTIONS, '--name', '--role', '--env', '--cidr', '--token-ttl', '--rate-limit <n|default>', '--disable', '--enable', 'Examples:']],
  [['client', 'delete'], [...CLIENT_OPTIONS, '--output', 'Examples:']],
  [['client', 'rotate-token'], [...CLIENT_OPTIONS, '--grace', '--output', 'Examples:']],
  [['jwt'], [...CLIENT_OPTIONS, '--ttl', '--output', 'TOKEN=$(keystrata jwt', 'Examples:']],
  [['audit'], ['list', 'verify', 'export']],
  [['audit', 'list'], [...CLIENT_OPTIONS, '--limit', '--cursor', '--output', 'Examples:']],
  [['audit', 'verify'], [...CLIENT_OPTIONS, '--output', 'Exit status: 0', '3 it does not', 'Examples:']],
  [['audit', 'export'], [...CLIENT_OPTIONS, '--file', '0600', 'Examples:']],
];

describe('keystrata --help', () => {
  it.each(COMMANDS)('keystrata %j --help exits 0 and lists its options', async (path, mentions) => {
    const result = await run([...path, '--help']);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    for (const mention of mentions) expect(result.stdout).toContain(mention);
  });

  it('never shows the token from the environment, not even as a default', async () => {
    const token = 'tok_from_env_0123456789abcdef';
    const result = await run(['workspace', 'list', '--help'], { env: { KEYSTRATA_TOKEN: token } });
    expect(result.stdout).not.toContain(token);
  });

  it('serve --help points to the configuration table, not to a guide that does not exist', async () => {
    const result = await run(['serve', '--help']);
    expect(result.stdout).toMatch(/configuration table of README\.md/);
    expect(result.stdout).not.toMatch(/operations guide/);
  });

  it('prints the version', async () => {
    const result = await run(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('usage errors exit 2', () => {
  const env = { KEYSTRATA_TOKEN: 'tok_0123456789abcdef', KEYSTRATA_URL: 'http://127.0.0.1:9' };
  it.each([
    [['frobnicate'], /unknown command/],
    [['workspace'], /Usage: keystrata workspace/],
    [['workspace', 'create'], /missing required argument 'name'/],
    [['workspace', 'get', 'a', 'b'], /too many arguments/],
    [['workspace', 'list', '--limit', '0'], /--limit/],
    [['workspace', 'list', '--output', 'yaml'], /Allowed choices are json, text/],
    [['workspace', 'list', '--bogus'], /unknown option '--bogus'/],
    [['encrypt', 'ws', 'production'], /required option '--scope <type:id>' not specified/],
    [['encrypt', 'ws', 'production', '--scope', 'job'], /expected <type>:<id>/],
    [['encrypt', 'ws', 'production', '--scope', 'blob:1'], /expected <type>:<id>/],
    [['encrypt', 'ws', 'production', '--scope', 'job:1', '--text', 'a', '--file', 'b'], /not both/],
    [['encrypt', 'ws', 'production', '--scope', 'job:1'], /no plaintext given/],
    [['decrypt', 'ws', 'production'], /no ciphertext given/],
    [['secret', 'put', 'ws', 'production', 'n', '--value', 'v'], /required option '--context/],
    [['secret', 'put', 'ws', 'production', 'n', '--value', 'v', '--context', 'novalue'], /key=value/],
    [['secret', 'put', 'ws', 'production', 'n', '--value', 'v', '--context', 'a=1', '--context', 'a=2'], /given twice/],
    [['secret', 'put', 'ws', 'production', 'n', '--value', 'v', '--context', 'a=1', '--metadata', '[1]'], /JSON object/],
    [['secret', 'put', 'ws', 'production', 'n', '--value', 'v', '--context', 'a=1', '--metadata', '{"a":1}', '--update'], /metadata can only be set when the secret is created/],
    [['workspace', 'list', '--limit', '1001'], /--limit.*from 1 to 1000/],
    [['secret', 'list', 'ws', 'production', '--limit', '5000'], /--limit.*from 1 to 1000/],
    [['secret', 'get', 'ws', 'production', 'n', '--version', 'x'], /--version/],
    [['serve', '--port', '-1'], /--port/],
    [['client', 'create', 'ws', '--role', 'app'], /required option '--name <name>' not specified/],
    [['client', 'create', 'ws', '--name', 'n'], /required option '--role <role>' not specified/],
    [['client', 'create', 'ws', '--name', 'n', '--role', 'boss'], /Allowed choices are admin, operator, app, auditor/],
    [['client', 'create', 'ws', '--name', 'n', '--role', 'app', '--token-ttl', '299'], /--token-ttl.*from 300 to 34560000 \(5 minutes to 400 days\)/],
    [['client', 'create', 'ws', '--name', 'n', '--role', 'app', '--token-ttl', '34560001'], /--token-ttl.*from 300 to 34560000/],
    [['client', 'create', 'ws', '--name', 'n', '--role', 'app', '--token-ttl', '1h'], /--token-ttl.*whole number/],
    [['client', 'create', 'ws', '--name', 'n', '--role', 'app', '--rate-limit', '0'], /--rate-limit.*from 1 to 1000000/],
    [['client', 'create', 'ws', '--name', 'n', '--role', 'app', '--rate-limit', 'default'], /--rate-limit.*whole number/],
    [['client', 'create', 'ws', '--name', 'n', '--role', 'app', '--env', 'production', '--env', 'production'], /"production" is given twice/],
    [['client', 'create', 'ws', '--name', 'n', '--role', 'app', '--cidr', ''], /--cidr.*empty/],
    [['client', 'update', 'ws', 'id'], /nothing to update/],
    [['client', 'update', 'ws', 'id', '--disable', '--enable'], /'--disable' cannot be used with option '--enable'/],
    [['client', 'update', 'ws', 'id', '--rate-limit', 'fast'], /--rate-limit.*from 1 to 1000000/],
    [['client', 'update', 'ws', 'id', '--role', 'root'], /Allowed choices/],
    [['client', 'show', 'ws'], /missing required argument 'client-id'/],
    [['client', 'rotate-token', 'ws', 'id', '--grace', '604801'], /--grace.*from 0 to 604800/],
    [['client', 'rotate-token', 'ws', 'id', '--grace', '-1'], /--grace/],
    [['client', 'list', 'ws', '--limit', '0'], /--limit.*from 1 to 1000/],
    [['jwt', '--ttl', '59'], /--ttl.*from 60 to 86400 \(1 minute to 1 day\)/],
    [['jwt', '--ttl', '1.5'], /--ttl.*whole number/],
    [['jwt', 'extra'], /too many arguments/],
    [['audit', 'list', 'ws', '--limit', '1001'], /--limit.*from 1 to 1000/],
    [['audit', 'list', 'ws', '--cursor', 'abc'], /--cursor.*nextCursor of a previous page/],
    [['audit', 'list', 'ws', '--cursor', '1234567890123456'], /--cursor/],
    [['audit', 'export'], /missing required argument 'workspace'/],
    [['audit', 'export', 'ws', '--output', 'json'], /unknown option '--output'/],
    [['repack', 'status', 'ws'], /missing required argument 'env'/],
    [['repack', 'status', 'ws', 'production', '--interval', '1'], /--interval applies only with --watch/],
    [['repack', 'status', 'ws', 'production', '--watch', '--interval', '0'], /--interval.*from 0\.1 to 3600/],
    [['repack', 'status', 'ws', 'production', '--watch', '--interval', 'soon'], /--interval.*from 0\.1 to 3600/],
  ])('keystrata %j', async (argv, message) => {
    const result = await run(argv, { env });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stdout).toBe('');
  });

  it('a missing token is a usage error that names both ways to give one', async () => {
    const result = await run(['workspace', 'list'], { env: {} });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--token or set KEYSTRATA_TOKEN/);
  });

  it('an invalid --url is a usage error', async () => {
    const result = await run(['workspace', 'list', '--url', 'nope'], { env });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/Invalid base URL/);
  });
});

describe('access-control number ranges', () => {
  // The CLI checks them before sending; they must be exactly the server's (src/http/access-schemas.ts).
  it('match the server schemas', () => {
    const range = (schema: { minimum?: number; maximum?: number } | undefined) => ({ min: schema?.minimum, max: schema?.maximum });
    const cli = (limit: keyof typeof ACCESS_LIMITS) => ({ min: ACCESS_LIMITS[limit].min, max: ACCESS_LIMITS[limit].max });
    for (const body of [CreateClientBody, UpdateClientBody]) {
      expect(range(body.properties.tokenTtlSeconds)).toEqual(cli('tokenTtlSeconds'));
      expect(range(body.properties.rateLimitPerSecond.anyOf.find((s) => s.type === 'integer'))).toEqual(cli('rateLimitPerSecond'));
    }
    expect(range(RotateTokenBody.properties.graceSeconds)).toEqual(cli('graceSeconds'));
    expect(range(JwtRequestBody.properties.ttlSeconds)).toEqual(cli('jwtTtlSeconds'));
  });
});
