/**
 * Key state changes between PostgreSQL nodes: setKeyState sends NOTIFY in its transaction, so the
 * server delivers it at commit to every session that LISTENs on the channel; each node holds one
 * such session, a dedicated pg.Client outside the pool (a pooled connection is shared and may be
 * replaced at any time, and LISTEN belongs to the session).
 *
 * Channels are database-wide, not per schema, while several keystrata deployments (or test runs)
 * may share a database in different schemas; so the channel is named after the schema and each
 * deployment hears only its own changes (keyStateChannel).
 *
 * Delivery is best-effort: a change committed while this node's listening session is down (between
 * a dropped connection and the reconnect) is not replayed. Listeners use the events to act sooner
 * (drop a cached key), never as the only way to learn a key's state.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { EVERY_ENVIRONMENT } from '../store.js';
import { KeyStateListeners, decodeKeyStateEvent, type KeyStateListener } from '../key-state-listeners.js';

const CHANNEL = 'keystrata_key_state';
/** PostgreSQL identifiers, channel names included, have at most 63 bytes (NAMEDATALEN - 1). */
const MAX_IDENTIFIER = 63;

/**
 * The NOTIFY channel of the deployment in `schema`: "keystrata_key_state" for the server's default
 * search_path, "keystrata_key_state_<schema>" otherwise. A schema name too long for that (over 43
 * characters) is replaced by a hash of it, since LISTEN would silently truncate the name while
 * pg_notify refuses it. Schema names are already restricted to [a-z0-9_] (checkSchemaName), so
 * the channel needs no quoting beyond the double quotes LISTEN puts around it.
 */
export function keyStateChannel(schema: string | undefined): string {
  if (schema === undefined) return CHANNEL;
  const named = `${CHANNEL}_${schema}`;
  if (named.length <= MAX_IDENTIFIER) return named;
  return `${CHANNEL}_${createHash('sha256').update(schema).digest('hex').slice(0, 40)}`;
}

export interface KeyStateWatcherOptions {
  /** postgres://… of the store. */
  readonly url: string;
  readonly channel: string;
  /** First reconnect delay; it doubles up to maxDelayMs while reconnecting fails. Default 100 ms. */
  readonly minDelayMs?: number | undefined;
  /** Default 5 s. */
  readonly maxDelayMs?: number | undefined;
}

export interface KeyStateWatcher {
  /** Adds a listener; the listening session is opened on the first one. Returns the unsubscribe function. */
  subscribe(listener: KeyStateListener): () => void;
  /** Ends the listening session and stops reconnecting. */
  close(): Promise<void>;
}

export function createKeyStateWatcher(options: KeyStateWatcherOptions): KeyStateWatcher {
  const { url, channel } = options;
  const minDelay = options.minDelayMs ?? 100;
  const maxDelay = options.maxDelayMs ?? 5_000;
  const listeners = new KeyStateListeners();
  let started = false;
  let closed = false;
  /** The session being opened or listening; `listening` once its LISTEN succeeded. */
  let session: pg.Client | undefined;
  let listening = false;
  /** Whether a session has listened before: a later one may have missed changes in between. */
  let listenedBefore = false;
  let attempt: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let delay = minDelay;

  const reconnectLater = (): void => {
    if (closed || timer !== undefined || attempt !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      connect();
    }, delay);
    delay = Math.min(delay * 2, maxDelay);
  };

  const connect = (): void => {
    attempt = listen().finally(() => {
      attempt = undefined;
      // The attempt failed, or its session was lost already: try again, later each time.
      if (!listening) reconnectLater();
    });
  };

  /** Opens a session and LISTENs on it. Never rejects: a failure leaves `listening` false. */
  const listen = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: url, application_name: 'keystrata-watch', connectionTimeoutMillis: 10_000, keepAlive: true });
    session = c;
    let lost = false;
    // 'error' (the server ended the session, the network failed) and 'end' both mean: listen again.
    const onLost = (): void => {
      if (lost) return;
      lost = true;
      if (session === c) {
        session = undefined;
        listening = false;
      }
      c.end().catch(() => undefined);
      reconnectLater();
    };
    c.on('error', onLost);
    c.on('end', onLost);
    c.on('notification', (message) => {
      if (message.channel !== channel) return;
      // Anything else on the channel (a hand-sent NOTIFY, a future format) is not an event of ours.
      const event = decodeKeyStateEvent(message.payload);
      if (event) listeners.emit(event);
    });
    // pg never settles connect() when the client is ended while connecting (close() does that), so
    // the attempt also ends when the session does.
    const ended = new Promise<never>((_, reject) => c.once('end', () => reject(new Error('listening session ended'))));
    ended.catch(() => undefined);
    try {
      await Promise.race([c.connect(), ended]);
      await c.query(`LISTEN "${channel}"`);
    } catch {
      onLost();
      return;
    }
    if (lost) return;
    listening = true;
    // Changes committed while no session listened are not replayed: tell listeners to treat every
    // environment as changed (the service then drops its whole key cache).
    if (listenedBefore) listeners.emit({ environmentId: EVERY_ENVIRONMENT, keyId: EVERY_ENVIRONMENT, state: 'active' });
    listenedBefore = true;
  };

  return {
    subscribe(listener) {
      if (closed) throw new Error('store: the store is closed');
      const unsubscribe = listeners.add(listener);
      if (!started) {
        started = true;
        connect();
      }
      return unsubscribe;
    },
    async close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      const c = session;
      session = undefined;
      listening = false;
      // Ending the session also cuts short an attempt still connecting.
      await c?.end().catch(() => undefined);
      await attempt;
    },
  };
}
