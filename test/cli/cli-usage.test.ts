import { describe, expect, it } from 'vitest';
import { run } from './run.js';

const CLIENT_OPTIONS = ['--url', '--token'];

// Every command, with options its --help must mention.
const COMMANDS: [string[], string[]][] = [
  [[], ['serve', 'init', 'workspace', 'env', 'keys', 'encrypt', 'decrypt', 'secret', 'KEYSTRATA_TOKEN']],
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
  [['encrypt'], [...CLIENT_OPTIONS, '--scope', '--text', '--file', '--output', 'Examples:']],
  [['decrypt'], [...CLIENT_OPTIONS, '--scope', '--base64', 'Examples:']],
  [['secret'], ['put', 'get', 'list', 'delete', 'versions']],
  [['secret', 'put'], [...CLIENT_OPTIONS, '--context', '--value', '--metadata', '--update', 'Examples:']],
  [['secret', 'get'], [...CLIENT_OPTIONS, '--version', '--json', 'Examples:']],
  [['secret', 'list'], [...CLIENT_OPTIONS, '--limit', '--cursor', 'Examples:']],
  [['secret', 'delete'], [...CLIENT_OPTIONS, 'Examples:']],
  [['secret', 'versions'], [...CLIENT_OPTIONS, 'Examples:']],
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
