import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CommanderError } from 'commander';
import { reportError } from './errors.js';
import { redacting, secretsIn, type CliIo } from './io.js';
import { buildProgram } from './program.js';

export type { CliIo } from './io.js';

/**
 * Runs `keystrata` with `argv` (the arguments after the command name) and resolves to the exit
 * code: 0 success, 1 failure, 2 usage error, 3 a check did not pass (`audit verify`). Never calls
 * process.exit, so tests run it in-process.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const safeIo: CliIo = { ...io, stderr: redacting(io.stderr, secretsIn(argv, io.env)) };
  try {
    await buildProgram(safeIo).parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    // Commander has already printed its own message; --help and --version arrive here with code 0.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    return reportError(err, safeIo.stderr);
  }
}

async function readAllStdin(): Promise<Buffer> {
  // Without a pipe the command would seem to hang; say what it is waiting for.
  if (process.stdin.isTTY) process.stderr.write('(reading standard input; end with Ctrl-D)\n');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** True when this module is the program being run (directly or through bin/keystrata.js). */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    const real = realpathSync(script);
    const self = fileURLToPath(import.meta.url);
    const launcher = fileURLToPath(new URL('../../../bin/keystrata.js', import.meta.url));
    return real === self || real === launcher;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // `keystrata … | head` closes the pipe early; that is not an error worth a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  const code = await runCli(process.argv.slice(2), {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    stdoutBytes: (bytes) => process.stdout.write(bytes),
    stdin: readAllStdin,
    env: process.env,
    ...(process.stdout.isTTY ? { terminal: { columns: () => process.stdout.columns || 80 } } : {}),
  });
  // exitCode, not exit(): output still queued for a pipe must be flushed first.
  process.exitCode = code;
}
