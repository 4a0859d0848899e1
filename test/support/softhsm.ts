import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A real SoftHSM2 token (Debian softhsm2, installed by scripts/prereqs/softhsm.mjs) for the PKCS#11
 * provider's tests, private to one test process: its own token directory and SOFTHSM2_CONF under
 * a temporary directory, a token made with softhsm2-util, and an administrator process
 * (softhsm-admin.ts) to manage keys on it as a customer would.
 *
 * SoftHSM2 reads SOFTHSM2_CONF when the module is initialized, and a module is initialized once
 * per process: so this sets process.env.SOFTHSM2_CONF, and a test process uses one SoftHSM.
 */

export const SOFTHSM_MODULES = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so', '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so'];
const PYTHON = '/usr/bin/python3';

/**
 * Takes POSIX (fcntl) locks on every file of the token directory and keeps them until stdin
 * closes. SoftHSM2 locks a token's files before reading them, so while these are held every call
 * that reaches the token waits: a token that does not answer, for real.
 */
const LOCK_HOLDER = `
import fcntl, glob, os, sys
files = [open(p, 'r+b') for p in sorted(glob.glob(os.path.join(sys.argv[1], '*'))) if os.path.isfile(p)]
for f in files:
    fcntl.lockf(f, fcntl.LOCK_EX)
print('locked', flush=True)
sys.stdin.read()
`;

export interface SoftHsmAdmin {
  /** A new AES-256 token key (encrypt/decrypt only, not extractable) with this label and CKA_ID (hex). */
  generate(label: string, keyId: string): Promise<void>;
  /** CKA_ENCRYPT and CKA_DECRYPT of every key with this label. */
  setUsage(label: string, enabled: boolean): Promise<void>;
  /** C_DestroyObject on every key with this label. */
  destroy(label: string): Promise<void>;
}

export interface SoftHsm {
  readonly modulePath: string;
  readonly tokenLabel: string;
  readonly pin: string;
  /** The temporary directory (a place for other test files, e.g. module symlinks). */
  readonly dir: string;
  readonly admin: SoftHsmAdmin;
  /** The token stops answering until releaseLocks(), or for `ms` if given. */
  holdLocks(ms?: number): Promise<void>;
  releaseLocks(): Promise<void>;
  dispose(): Promise<void>;
}

export function softHsmModule(): string {
  const found = SOFTHSM_MODULES.find((path) => existsSync(path));
  if (found === undefined) throw new Error('SoftHSM2 is not installed (apt-get install -y softhsm2; npm test installs it)');
  return found;
}

function startAdmin(modulePath: string, tokenLabel: string, pin: string): Promise<{ admin: SoftHsmAdmin; stop: () => Promise<void> }> {
  // From the sources (tests, through tsx) or from dist/ (the compiled benchmarks): its sibling either way.
  const compiled = import.meta.url.endsWith('.js');
  const file = fileURLToPath(new URL(compiled ? './softhsm-admin.js' : './softhsm-admin.ts', import.meta.url));
  const child: ChildProcess = fork(file, [modulePath, tokenLabel, pin], { execArgv: compiled ? [] : ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  let nextId = 1;
  child.on('message', (reply: { id: number; error?: string }) => {
    const entry = waiting.get(reply.id);
    waiting.delete(reply.id);
    if (reply.error === undefined) entry?.resolve();
    else entry?.reject(new Error(`softhsm admin: ${reply.error}`));
  });
  child.on('exit', (code) => {
    for (const entry of waiting.values()) entry.reject(new Error(`softhsm admin exited (${code})`));
    waiting.clear();
  });
  const request = (body: Record<string, unknown>, id = nextId++) =>
    new Promise<void>((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      if (id !== 0) child.send({ id, ...body });
    });
  const ready = request({}, 0);
  const admin: SoftHsmAdmin = {
    generate: (label, keyId) => request({ op: 'generate', label, keyId }),
    setUsage: (label, enabled) => request({ op: 'setUsage', label, enabled }),
    destroy: (label) => request({ op: 'destroy', label }),
  };
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    if (child.connected) child.send({ id: nextId++, op: 'close' });
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  return ready.then(() => ({ admin, stop }));
}

export async function startSoftHsm(tokenLabel = 'keystrata-test'): Promise<SoftHsm> {
  const modulePath = softHsmModule();
  const dir = mkdtempSync(join(tmpdir(), 'keystrata-softhsm-'));
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens);
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env.SOFTHSM2_CONF = conf;
  const pin = randomBytes(8).toString('hex');
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', tokenLabel, '--so-pin', randomBytes(8).toString('hex'), '--pin', pin], {
    env: { ...process.env, SOFTHSM2_CONF: conf },
    stdio: 'ignore',
  });
  const [tokenDir] = readdirSync(tokens).map((name) => join(tokens, name));
  if (tokenDir === undefined) throw new Error('softhsm2-util made no token directory');
  const { admin, stop } = await startAdmin(modulePath, tokenLabel, pin);

  let holder: ChildProcess | null = null;
  let holderTimer: NodeJS.Timeout | undefined;
  const releaseLocks = async () => {
    clearTimeout(holderTimer);
    const current = holder;
    holder = null;
    if (current === null || current.exitCode !== null) return;
    const exited = new Promise((resolve) => current.once('exit', resolve));
    current.stdin?.end();
    await exited;
  };
  const holdLocks = async (ms?: number) => {
    await releaseLocks();
    const child = spawn(PYTHON, ['-c', LOCK_HOLDER, tokenDir], { stdio: ['pipe', 'pipe', 'inherit'] });
    holder = child;
    await new Promise<void>((resolve, reject) => {
      child.stdout?.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`lock holder exited (${code})`)));
      child.once('error', reject);
    });
    if (ms !== undefined) holderTimer = setTimeout(() => void releaseLocks(), ms);
  };

  return {
    modulePath,
    tokenLabel,
    pin,
    dir,
    admin,
    holdLocks,
    releaseLocks,
    async dispose() {
      await releaseLocks();
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
