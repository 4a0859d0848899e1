/**
 * Everything the CLI touches outside itself, passed in so that tests run it in-process with fakes
 * and nothing below main.ts reads process.* directly.
 */
export interface CliIo {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  /** Reads all of standard input; absent when there is none to read. */
  readonly stdin?: () => Promise<Buffer>;
  /**
   * Writes raw bytes to standard output (decrypted plaintexts are arbitrary bytes). Without it only
   * plaintexts that are valid UTF-8 can be written, and others need `--base64`.
   */
  readonly stdoutBytes?: (bytes: Uint8Array) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  /**
   * Present when standard output is a terminal: progress is then redrawn in place (`repack status
   * --watch`), cut to the terminal's width, read at each redraw; otherwise every update is a line
   * of its own, fit for a log or a pipe.
   */
  readonly terminal?: { readonly columns: () => number };
}

/**
 * The secrets a run may know: the API token from --token or the environment, and the admin token.
 * They are scrubbed from everything written to stderr, whichever library produced the message.
 */
export function secretsIn(argv: readonly string[], env: CliIo['env']): string[] {
  const secrets = [env.KEYSTRATA_TOKEN, env.KEYSTRATA_ADMIN_TOKEN];
  argv.forEach((arg, i) => {
    if (arg === '--token') secrets.push(argv[i + 1]);
    else if (arg.startsWith('--token=')) secrets.push(arg.slice('--token='.length));
  });
  return secrets.filter((s): s is string => s !== undefined && s.length >= 4);
}

/** A writer that replaces every occurrence of the given secrets. */
export function redacting(write: (s: string) => void, secrets: readonly string[]): (s: string) => void {
  if (secrets.length === 0) return write;
  return (s) => write(secrets.reduce((text, secret) => text.split(secret).join('[redacted]'), s));
}
