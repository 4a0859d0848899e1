import { isKeystrataApiError } from '../../sdk/index.js';

/** The command line was wrong (missing input, conflicting options): exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A failure outside the API (unreadable file, mismatched context …): exit code 1. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Prints an error as `error: <code>: <message>` and returns the exit code for it. */
export function reportError(err: unknown, stderr: (s: string) => void): number {
  if (err instanceof UsageError) {
    stderr(`error: ${err.message}\n(run the command with --help for usage)\n`);
    return 2;
  }
  if (isKeystrataApiError(err)) {
    let line = `error: ${err.code}: ${err.message}`;
    if (err.field !== undefined) line += ` (field: ${err.field})`;
    stderr(`${line}\n`);
    if (err.details !== undefined) stderr(`details: ${JSON.stringify(err.details)}\n`);
    return 1;
  }
  // KeystrataError from config/server code and Node system errors both carry a string code.
  const code = hasCode(err) ? err.code : 'internal_error';
  stderr(`error: ${code}: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
}

function hasCode(err: unknown): err is Error & { code: string } {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string';
}
