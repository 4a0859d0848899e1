import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

export interface SpawnedServer {
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything the process printed on stdout so far. */
  output(): string;
  /** SIGTERM, then wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Start a server process (the compiled keystrata, or a benchmark peer) and resolve once it prints
 * "listening on <url>". Used by the compiled-server tests and by bench/.
 */
export async function spawnServer(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<SpawnedServer> {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  let announced: (url: string) => void = () => {};
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    const match = /listening on (http:\/\/\S+)/.exec(output);
    if (match) announced(match[1]!);
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${output}`)), 30_000);
    announced = (found) => {
      clearTimeout(timer);
      resolve(found);
    };
    child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening: ${output}`)));
  });
  return {
    url,
    child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
}
