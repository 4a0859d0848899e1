import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { CmkProviderError } from '../provider.js';
import { closeSession, login, logout, openSession, slotOfToken, type Handle } from './cryptoki.js';
import type { CryptokiHost, TokenLogin } from './cryptoki-host.js';
import { ckrOf, PIN_REFUSED, SESSION_LOST } from './pkcs11-errors.js';

/**
 * One provider's logged-in session on its token. A PKCS#11 session runs one operation at a time
 * (C_EncryptInit … C_Encrypt must not interleave with another call's), so work on it is queued;
 * it is opened on first use, and reopened once when the module says it is gone.
 */

/** Keys the PIN verifiers of this process (they are compared, never stored or shown). */
const VERIFIER_KEY = randomBytes(32);

function verifierOf(pin: string): Buffer {
  return createHmac('sha256', VERIFIER_KEY).update(pin, 'utf8').digest();
}

/**
 * Logins are per process and token, so two CMKs opening sessions on one module at once must not
 * interleave their check-then-C_Login: they take turns, per module.
 */
const loginTurns = new WeakMap<CryptokiHost, Promise<unknown>>();

function inLoginTurn<T>(host: CryptokiHost, work: () => Promise<T>): Promise<T> {
  const result = (loginTurns.get(host) ?? Promise.resolve()).then(work, work);
  loginTurns.set(host, result.catch(() => undefined));
  return result;
}

function aborted(signal: AbortSignal | undefined): CmkProviderError {
  return new CmkProviderError('timeout', 'pkcs11 call abandoned: its deadline passed', { cause: signal?.reason });
}

export class TokenSession {
  private session: { readonly handle: Handle; readonly slot: string; readonly login: TokenLogin } | null = null;
  private tail: Promise<void> = Promise.resolve();
  /** Set when the token refused this PIN: it is not sent again (tokens lock after a few wrong PINs). */
  private refused: string | null = null;
  private readonly verifier: Buffer;

  constructor(
    readonly host: CryptokiHost,
    private readonly tokenLabel: string,
    private readonly pin: string,
  ) {
    this.verifier = verifierOf(pin);
  }

  /**
   * Runs `work` on the session, after any work queued before it. The signal is honoured between
   * steps, never inside one: a call the module has started runs to its end (it cannot be
   * interrupted), so an operation is never left half-done on the session.
   */
  async run<T>(signal: AbortSignal | undefined, work: (session: Handle) => Promise<T>): Promise<T> {
    const release = await this.turn(signal);
    try {
      for (let attempt = 1; ; attempt++) {
        if (signal?.aborted) throw aborted(signal);
        const session = await this.open();
        if (signal?.aborted) throw aborted(signal);
        try {
          return await work(session);
        } catch (error) {
          if (!SESSION_LOST.has(ckrOf(error))) throw error;
          await this.drop(ckrOf(error) === 'CKR_USER_NOT_LOGGED_IN');
          if (attempt === 2) throw error;
        }
      }
    } finally {
      release();
    }
  }

  async close(): Promise<void> {
    const release = await this.turn(undefined);
    try {
      await this.drop(false);
    } finally {
      release();
    }
  }

  /** Waits for this session's turn; rejects (without ever running) if the signal fires first. */
  private turn(signal: AbortSignal | undefined): Promise<() => void> {
    const before = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => (release = resolve));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        reject(aborted(signal));
        // Our place in the queue is given up once the work before us is done.
        void before.then(release);
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      void before.then(() => {
        if (signal?.aborted) return;
        signal?.removeEventListener('abort', onAbort);
        resolve(release);
      });
    });
  }

  private async open(): Promise<Handle> {
    if (this.session) return this.session.handle;
    return inLoginTurn(this.host, () => this.openNow());
  }

  private async openNow(): Promise<Handle> {
    if (this.refused) {
      throw new CmkProviderError('credentials_rejected', `pkcs11 login to token "${this.tokenLabel}" failed: ${this.refused} earlier; this PIN is not sent again (update the CMK config)`);
    }
    const slot = await slotOfToken(this.host, this.tokenLabel);
    if (slot === null) throw new CmkProviderError('unreachable', `pkcs11: no token labelled "${this.tokenLabel}" in the module (not present, or another label)`);
    const handle = await openSession(this.host, slot);
    const slotKey = slot.toString('hex');
    try {
      this.session = { handle, slot: slotKey, login: await this.logIn(handle, slotKey) };
      return handle;
    } catch (error) {
      await closeSession(this.host, handle).catch(() => undefined);
      if (PIN_REFUSED.has(ckrOf(error))) this.refused = ckrOf(error);
      throw error;
    }
  }

  private async logIn(session: Handle, slotKey: string): Promise<TokenLogin> {
    const current = this.host.logins.get(slotKey);
    if (current !== undefined && current.sessions > 0) {
      // Logged in already (by another CMK on this token): only the same PIN may share that login.
      if (!timingSafeEqual(current.verifier, this.verifier)) {
        throw new CmkProviderError('credentials_rejected', `pkcs11 login to token "${this.tokenLabel}" refused: the token is logged in with another PIN in this keystrata process (this PIN was not sent to the token)`);
      }
      current.sessions++;
      return current;
    }
    try {
      await login(this.host, session, this.pin);
    } catch (error) {
      if (ckrOf(error) !== 'CKR_USER_ALREADY_LOGGED_IN') throw error;
      // A login we have no record of (our records were reset): check this PIN for real.
      await logout(this.host, session);
      await login(this.host, session, this.pin);
    }
    const record: TokenLogin = { verifier: this.verifier, sessions: 1 };
    this.host.logins.set(slotKey, record);
    return record;
  }

  /** Forgets the session (closing it if the module still knows it). */
  private async drop(loggedOut: boolean): Promise<void> {
    const session = this.session;
    if (!session) return;
    this.session = null;
    session.login.sessions--;
    // The module logged the token out (or closed our last session, which logs out): the record is stale.
    if ((loggedOut || session.login.sessions === 0) && this.host.logins.get(session.slot) === session.login) this.host.logins.delete(session.slot);
    await closeSession(this.host, session.handle).catch(() => undefined);
  }
}
