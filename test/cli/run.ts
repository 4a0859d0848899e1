import { runCli } from '../../src/cli/main.js';

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** What went to the raw byte channel (decrypt). */
  readonly bytes: Buffer;
}

export interface RunOptions {
  readonly env?: Record<string, string | undefined>;
  /** Standard input; omitted → the run has no stdin at all. */
  readonly stdin?: string | Buffer;
  /** false → no raw byte channel, as in a text-only embedding. */
  readonly bytes?: boolean;
  /** Standard output is a terminal this many columns wide (progress is redrawn in place). */
  readonly terminalColumns?: number;
}

/** Runs the CLI in-process and captures everything it wrote. */
export async function run(argv: string[], options: RunOptions = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const chunks: Buffer[] = [];
  const stdin = options.stdin;
  const code = await runCli(argv, {
    stdout: (s) => (stdout += s),
    stderr: (s) => (stderr += s),
    ...(stdin === undefined ? {} : { stdin: () => Promise.resolve(Buffer.from(stdin)) }),
    ...(options.bytes === false ? {} : { stdoutBytes: (b: Uint8Array) => chunks.push(Buffer.from(b)) }),
    env: options.env ?? {},
    ...(options.terminalColumns === undefined ? {} : { terminal: { columns: () => options.terminalColumns ?? 80 } }),
  });
  return { code, stdout, stderr, bytes: Buffer.concat(chunks) };
}
