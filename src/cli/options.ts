import { InvalidArgumentError, Option, type Command } from 'commander';
import { KeystrataClient, type Scope, type ScopeType } from '../../sdk/index.js';
import { UsageError } from './errors.js';
import type { CliIo } from './io.js';
import type { OutputFormat } from './output.js';

export const DEFAULT_URL = 'http://127.0.0.1:8200';

/** Options every client verb takes. */
export interface ConnectionOptions {
  readonly url?: string;
  readonly token?: string;
}

export interface FormatOptions {
  readonly output: OutputFormat;
}

/**
 * Adds --url and --token (and --output when the verb has a choice of format). The token's default
 * is resolved at run time, not declared here, so that `--help` can never display it.
 */
export function withConnection(command: Command, defaultFormat?: OutputFormat): Command {
  command
    .option('--url <url>', `server address (default: $KEYSTRATA_URL, else ${DEFAULT_URL})`)
    .option(
      '--token <token>',
      'API token (default: $KEYSTRATA_TOKEN; prefer the variable: arguments are visible to other local users)',
    );
  if (defaultFormat !== undefined) {
    command.addOption(new Option('-o, --output <format>', 'output format').choices(['json', 'text']).default(defaultFormat));
  }
  return command;
}

/** An SDK client from the options, falling back to KEYSTRATA_URL / KEYSTRATA_TOKEN. */
export function connect(options: ConnectionOptions, io: CliIo): KeystrataClient {
  const token = nonEmpty(options.token) ?? nonEmpty(io.env.KEYSTRATA_TOKEN);
  if (token === undefined) throw new UsageError('no API token: pass --token or set KEYSTRATA_TOKEN');
  const baseUrl = nonEmpty(options.url) ?? nonEmpty(io.env.KEYSTRATA_URL) ?? DEFAULT_URL;
  try {
    return new KeystrataClient({ baseUrl, token });
  } catch (err) {
    // The SDK's option errors never contain the token; they are the user's to fix.
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

const SCOPE_TYPES: readonly ScopeType[] = ['job', 'event', 'connection', 'log'];

/** Parses `type:id` (e.g. `job:job_42`); the id may itself contain colons. */
export function parseScope(value: string): Scope {
  const colon = value.indexOf(':');
  const type = value.slice(0, colon);
  const id = value.slice(colon + 1);
  if (colon < 0 || !(SCOPE_TYPES as readonly string[]).includes(type) || id === '') {
    throw new InvalidArgumentError(`expected <type>:<id> with type one of ${SCOPE_TYPES.join(', ')} (e.g. job:job_42).`);
  }
  return { type: type as ScopeType, id };
}

/** Collects repeated `--context key=value` into one flat object. */
export function collectContext(value: string, previous: Readonly<Record<string, string>> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('expected key=value (e.g. organization_id=org_1).');
  const key = value.slice(0, eq);
  if (Object.hasOwn(previous, key)) throw new InvalidArgumentError(`the key "${key}" is given twice.`);
  return { ...previous, [key]: value.slice(eq + 1) };
}

/** Parses a JSON object (for --metadata). */
export function parseJsonObject(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError('expected a JSON object, e.g. \'{"team":"payments"}\'.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgumentError('expected a JSON object, e.g. \'{"team":"payments"}\'.');
  }
  return parsed as Record<string, unknown>;
}

/**
 * Parses a whole number from `min` upwards, and up to `max` when given (limits, versions, seconds).
 * `hint` is added to the error, e.g. "5 minutes to 400 days".
 */
export function integerFrom(min: number, max?: number, hint?: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)) {
      const range = max === undefined ? `expected a whole number of at least ${min}` : `expected a whole number from ${min} to ${max}`;
      throw new InvalidArgumentError(`${range}${hint === undefined ? '' : ` (${hint})`}.`);
    }
    return n;
  };
}

/** Parses a number (decimals allowed) from `min` to `max`, e.g. a polling interval in seconds. */
export function numberFrom(min: number, max: number, hint?: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+(\.\d+)?$/.test(value) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a number from ${min} to ${max}${hint === undefined ? '' : ` (${hint})`}.`);
    }
    return n;
  };
}

/** Collects a repeated option (`--env a --env b`) into a list, refusing the same value twice. */
export function collectList(value: string, previous: readonly string[] = []): string[] {
  if (value === '') throw new InvalidArgumentError('expected a value, not an empty string.');
  if (previous.includes(value)) throw new InvalidArgumentError(`"${value}" is given twice.`);
  return [...previous, value];
}

/** Page sizes the server accepts (`limit`, docs/api.md). */
export const MAX_PAGE_LIMIT = 1000;

/**
 * Ranges the server accepts for the access-control numbers (src/http/access-schemas.ts; a test
 * holds these to the schemas). Checked here too so that a typo is a usage error before any request.
 */
export const ACCESS_LIMITS = {
  tokenTtlSeconds: { min: 300, max: 400 * 86_400, hint: '5 minutes to 400 days' },
  rateLimitPerSecond: { min: 1, max: 1_000_000, hint: 'requests per second' },
  graceSeconds: { min: 0, max: 7 * 86_400, hint: 'up to 7 days' },
  jwtTtlSeconds: { min: 60, max: 86_400, hint: '1 minute to 1 day' },
} as const;

/** An integer option within one of {@link ACCESS_LIMITS}. */
export function accessInteger(limit: keyof typeof ACCESS_LIMITS): (value: string) => number {
  const { min, max, hint } = ACCESS_LIMITS[limit];
  return integerFrom(min, max, hint);
}

/** Commander help text: an "Examples:" block. */
export function examples(...lines: readonly string[]): string {
  return `\nExamples:\n${lines.map((line) => `  $ ${line}`).join('\n')}\n`;
}
