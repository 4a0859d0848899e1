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

/**
 * A check the user asked for ran and did not pass (`audit verify` on a broken chain): exit code 3,
 * so that a script can tell "the answer is no" from "the check could not be made" (1).
 */
export class CheckFailed extends Error {
  override readonly name = 'CheckFailed';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Exit code of a {@link CheckFailed}. */
export const CHECK_FAILED_EXIT_CODE = 3;

/** Prints an error as `error: <code>: <message>` and returns the exit code for it. */
export function reportError(err: unknown, stderr: (s: string) => void): number {
  if (err instanceof UsageError) {
    stderr(`error: ${err.message}\n(run the command with --help for usage)\n`);
    return 2;
  }
  if (err instanceof CheckFailed) {
    stderr(`error: ${err.code}: ${err.message}\n`);
    return CHECK_FAILED_EXIT_CODE;
  }
  if (isKeystrataApiError(err)) {
    let line = `error: ${err.code}: ${err.message}`;
    if (err.field !== undefined) line += ` (field: ${err.field})`;
    stderr(`${line}\n`);
    if (err.details !== undefined) stderr(`details: ${JSON.stringify(err.details)}\n`);
    if (err.retryAfterSeconds !== undefined) stderr(`retry after: ${err.retryAfterSeconds}s\n`);
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
