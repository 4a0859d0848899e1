import { stat } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { CKF_OS_LOCKING_OK } from './cryptoki-constants.js';
import { CRYPTOKI_METHODS, WORKER_SOURCE, type CryptokiMethod, type WorkerError, type WorkerInput, type WorkerReply } from './cryptoki-worker.js';

/**
 * One loaded PKCS#11 module, shared by every provider of this process that names it. A module is a
 * shared library with process-wide state (one C_Initialize per process, logins per token per
 * process), so there is exactly one host per module path; providers take a lease on it and the
 * last one to let go finalizes the module and stops its thread.
 */

/** A failed call: `ckr` is the PKCS#11 return value's name (CKR_…), or '' when the module gave none. */
export class CryptokiError extends Error {
  constructor(
    readonly ckr: string,
    message: string,
  ) {
    super(message);
    this.name = 'CryptokiError';
  }
}

function errorOf(reported: WorkerError): CryptokiError {
  const ckr = /^CKR_[A-Z0-9_]+$/.test(reported.message) ? reported.message : '';
  // Anything but a CKR name (a dlopen message, say) stays out of the message: it may be long,
  // and it is the module's text, not ours.
  return new CryptokiError(ckr, ckr || `${reported.name} from the PKCS#11 module`);
}

/** Deep copy of call arguments with every buffer standalone, so that it can be moved to the worker. */
function detach(value: unknown, moved: ArrayBuffer[]): unknown {
  if (value instanceof Uint8Array) {
    const copy = new Uint8Array(value);
    moved.push(copy.buffer);
    return copy;
  }
  if (Array.isArray(value)) return value.map((item) => detach(item, moved));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, detach(item, moved)]));
  }
  return value;
}

/** Results come back as Uint8Arrays (structured clone): make them Buffers again, without copying. */
function revive(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (Array.isArray(value)) return value.map(revive);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, revive(item)]));
  return value;
}

/**
 * Who is logged in to a token through this module. A PKCS#11 login belongs to the whole process
 * and token, not to a session: a second C_Login answers CKR_USER_ALREADY_LOGGED_IN without
 * checking the PIN. So the first provider to log in records a verifier of its PIN, and a provider
 * with another PIN is refused instead of riding on that login (token-session.ts).
 */
export interface TokenLogin {
  readonly verifier: Buffer;
  /** Our open sessions on the token; PKCS#11 logs out when the last one closes. */
  sessions: number;
}

export class CryptokiHost {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private failure: Error | null = null;
  /** Resolves once the module is loaded and initialized; rejects with why it could not be. */
  readonly ready: Promise<void>;
  /** Login records by slot id (hex). */
  readonly logins = new Map<string, TokenLogin>();

  constructor(readonly module: string) {
    const input: WorkerInput = { resolveFrom: import.meta.url, module, initFlags: CKF_OS_LOCKING_OK, methods: CRYPTOKI_METHODS };
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: input, stdout: false, stderr: false });
    // An idle module must not keep the process alive; a call in flight does (see call()).
    this.worker.unref();
    this.ready = new Promise<void>((resolve, reject) => {
      this.worker.once('message', (reply: WorkerReply) => {
        if ('ready' in reply && reply.ready) resolve();
        else reject('error' in reply ? errorOf(reply.error) : new CryptokiError('', 'unexpected first message from the PKCS#11 thread'));
      });
      this.worker.once('exit', () => reject(new CryptokiError('', 'the PKCS#11 thread stopped while loading the module')));
    });
    this.ready.catch(() => undefined);
    this.worker.on('message', (reply: WorkerReply) => {
      if (!('id' in reply)) return;
      const waiting = this.pending.get(reply.id);
      if (!waiting) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) this.worker.unref();
      if ('error' in reply) waiting.reject(errorOf(reply.error));
      else waiting.resolve(revive(reply.result));
    });
    this.worker.on('error', (error) => this.fail(new CryptokiError('', `the PKCS#11 thread failed (${error.name}: ${error.message})`)));
    this.worker.on('exit', () => this.fail(new CryptokiError('', 'the PKCS#11 thread stopped')));
  }

  /** True once the thread is gone: every call fails, and the next lease starts a new host. */
  get dead(): boolean {
    return this.failure !== null;
  }

  /** Runs one pkcs11js method in the module's thread. Rejects with CryptokiError. */
  call(method: CryptokiMethod, ...args: unknown[]): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const moved: ArrayBuffer[] = [];
    const message = { id, method, args: detach(args, moved) };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) this.worker.ref();
      this.worker.postMessage(message, moved);
    });
  }

  /** Finalizes the module and stops the thread; gives up waiting after `waitMs` (a blocked module). */
  async shutdown(waitMs = 2000): Promise<void> {
    if (!this.failure) {
      const id = this.nextId++;
      const finalized = new Promise<unknown>((resolve, reject) => this.pending.set(id, { resolve, reject }));
      this.worker.postMessage({ id, finalize: true });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([finalized.catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))]);
      clearTimeout(timer);
    }
    this.fail(new CryptokiError('', 'the PKCS#11 module was closed'));
    // terminate() only completes once a blocked native call returns: do not wait for it.
    void this.worker.terminate().catch(() => undefined);
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
    this.worker.unref();
  }
}

/** A provider's hold on a host. */
export interface CryptokiLease {
  readonly host: CryptokiHost;
  release(): Promise<void>;
}

interface HostEntry {
  readonly host: CryptokiHost;
  refs: number;
}

/** Hosts by the identity of their library file (device:inode), not by path: see leaseCryptoki. */
const hosts = new Map<string, HostEntry>();
/** Hosts being shut down: a new host for the same library waits for the old one. */
const closing = new Map<string, Promise<void>>();

/**
 * The file behind a module path. Two paths to one library (a symlink, a hard link) load ONE
 * library with one process-wide state: two hosts for it would finalize it under each other.
 */
async function libraryOf(module: string): Promise<string> {
  try {
    const file = await stat(module);
    return `${file.dev}:${file.ino}`;
  } catch (error) {
    throw new CryptokiError('', `cannot load the PKCS#11 module (${(error as NodeJS.ErrnoException).code ?? 'stat failed'})`);
  }
}

/** A lease on the host of `module`, loading it if needed. Rejects with CryptokiError if it cannot be loaded. */
export async function leaseCryptoki(module: string): Promise<CryptokiLease> {
  const library = await libraryOf(module);
  let entry = hosts.get(library);
  if (entry === undefined || entry.host.dead) {
    await closing.get(library);
    entry = hosts.get(library);
    if (entry === undefined || entry.host.dead) {
      entry = { host: new CryptokiHost(module), refs: 0 };
      hosts.set(library, entry);
    }
  }
  const held = entry;
  held.refs++;
  try {
    await held.host.ready;
  } catch (error) {
    held.refs--;
    // A module that cannot be loaded now may be loadable later (installed, mounted): forget it.
    if (hosts.get(library) === held) hosts.delete(library);
    if (held.refs === 0) void held.host.shutdown();
    throw error;
  }
  let released = false;
  return {
    host: held.host,
    async release() {
      if (released) return;
      released = true;
      held.refs--;
      if (held.refs > 0) return;
      if (hosts.get(library) === held) hosts.delete(library);
      const done = held.host.shutdown().finally(() => {
        if (closing.get(library) === done) closing.delete(library);
      });
      closing.set(library, done);
      await done;
    },
  };
}
