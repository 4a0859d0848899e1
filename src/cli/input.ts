import { readFile } from 'node:fs/promises';
import { CliError, UsageError } from './errors.js';
import type { CliIo } from './io.js';

/** All of standard input, or a usage error naming what was expected there. */
export async function readStdin(io: CliIo, what: string): Promise<Buffer> {
  if (io.stdin === undefined) throw new UsageError(`no ${what} given and no standard input to read it from`);
  return io.stdin();
}

export async function readInputFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const reason = err instanceof Error && 'code' in err ? String(err.code) : 'unreadable';
    throw new CliError('file_unreadable', `cannot read ${path} (${reason})`);
  }
}

/** Strict UTF-8: a value that is not text is refused rather than silently mangled. */
export function utf8Text(bytes: Uint8Array, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new UsageError(`${what} is not valid UTF-8 text`);
  }
}
