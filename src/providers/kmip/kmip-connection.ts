import { isIP } from 'node:net';
import * as tls from 'node:tls';
import { KmipProtocolError, responseLength } from './kmip-messages.js';

/**
 * One mutually authenticated TLS connection to a KMIP server, reused for every request (a KMIP
 * server answers requests on a connection in order, one at a time; a handshake per call would cost
 * more than the call). Requests are queued; a connection that breaks is replaced on the next call,
 * and a request that finds a reused connection already closed by the server (idle timeout) is sent
 * once more on a fresh one — keystrata only sends idempotent operations (Encrypt with its own IV,
 * Decrypt, Get Attributes).
 */

export interface KmipEndpoint {
  readonly host: string;
  readonly port: number;
  /** Made once by kmipSecureContext: the PEM texts are parsed once, and not kept by us after. */
  readonly secureContext: tls.SecureContext;
}

export interface KmipCredentials {
  /** PEM: the CA(s) the server's certificate must chain to. */
  readonly ca: string;
  /** PEM: the client certificate (the server knows us by its subject CN). */
  readonly cert: string;
  /** PEM: the client certificate's private key (unencrypted). */
  readonly key: string;
}

/** A TLS context for mutual authentication; throws (OpenSSL's message, no key text) if the PEMs do not load or match. */
export function kmipSecureContext({ ca, cert, key }: KmipCredentials): tls.SecureContext {
  return tls.createSecureContext({ ca, cert, key, minVersion: 'TLSv1.2' });
}

export interface KmipConnectionOptions {
  /** Close a connection unused this long (a provider sees a call per environment per cache TTL). */
  readonly idleMs?: number;
  /** Give up on a TLS connection that is not up within this time (the caller's deadline usually comes first). */
  readonly connectTimeoutMs?: number;
}

export type KmipTransportFailure =
  /** The server refused our client certificate during or right after the handshake. */
  | 'client_rejected'
  /** The server's certificate does not chain to the configured CA or does not name the host. */
  | 'server_untrusted'
  /** No connection, or it broke. */
  | 'unreachable'
  /** The caller gave up (deadline). */
  | 'aborted';

export class KmipTransportError extends Error {
  constructor(
    readonly kind: KmipTransportFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'KmipTransportError';
  }
}

/** Codes node/OpenSSL give when the server's certificate fails our checks. */
const SERVER_CERT_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
/** TLS alerts a server sends when it does not accept the client certificate (RFC 8446 §6.2). */
const CLIENT_REJECTED_ALERT = /ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|UNSUPPORTED_CERTIFICATE|CERTIFICATE_REQUIRED|ACCESS_DENIED|DECRYPT_ERROR)$/;

/** Classifies a socket/TLS error. Messages carry codes, never configuration values. */
export function transportError(error: unknown): KmipTransportError {
  if (error instanceof KmipTransportError) return error;
  const code = typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : 'unknown';
  if (SERVER_CERT_CODES.has(code)) return new KmipTransportError('server_untrusted', `the KMIP server's certificate is not trusted (${code}): check caCert and host`, { cause: error });
  if (CLIENT_REJECTED_ALERT.test(code)) return new KmipTransportError('client_rejected', `the KMIP server refused the client certificate (${code})`, { cause: error });
  return new KmipTransportError('unreachable', `KMIP connection failed (${code})`, { cause: error });
}

interface Pending {
  resolve(frame: Buffer): void;
  reject(error: Error): void;
  readonly chunks: Buffer[];
  received: number;
  expected?: number;
}

/** One TLS socket and the request waiting on it. */
class Channel {
  pending: Pending | undefined;
  /** Has answered a request before: a failure before any answer byte may just be an idle close. */
  used = false;
  /** The server had begun answering when the connection failed (so it was not an idle close). */
  answering = false;
  closed = false;
  constructor(readonly socket: tls.TLSSocket) {}

  fail(error: KmipTransportError | KmipProtocolError): void {
    this.closed = true;
    this.socket.destroy();
    const pending = this.pending;
    this.pending = undefined;
    if (pending) {
      this.answering = pending.received > 0;
      for (const chunk of pending.chunks) chunk.fill(0);
      pending.reject(error);
    }
  }

  onData(chunk: Buffer): void {
    const pending = this.pending;
    if (!pending) return this.fail(new KmipProtocolError('the KMIP server sent data nobody asked for'));
    pending.chunks.push(chunk);
    pending.received += chunk.length;
    try {
      // Only the 8 header bytes are copied: the rest may be key material, kept in chunks we zero.
      if (pending.expected === undefined && pending.received >= 8) pending.expected = responseLength(Buffer.concat(pending.chunks, 8));
    } catch (error) {
      return this.fail(error as KmipProtocolError);
    }
    if (pending.expected === undefined || pending.received < pending.expected) return;
    if (pending.received > pending.expected) return this.fail(new KmipProtocolError('the KMIP server sent more than one answer'));
    const frame = Buffer.concat(pending.chunks, pending.received);
    for (const c of pending.chunks) c.fill(0);
    this.pending = undefined;
    this.used = true;
    pending.resolve(frame);
  }
}

const aborted = () => new KmipTransportError('aborted', 'the KMIP call was abandoned (deadline)');

export class KmipConnection {
  private channel: Channel | undefined;
  /** Resolves when the previous request is done: requests run one at a time, in order. */
  private tail: Promise<void> = Promise.resolve();
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly endpoint: KmipEndpoint,
    private readonly options: KmipConnectionOptions = {},
  ) {}

  /** Sends one request message and resolves with the whole response message (a fresh buffer the caller may zero). */
  async roundTrip(request: Buffer, signal?: AbortSignal): Promise<Buffer> {
    if (signal?.aborted) throw aborted();
    const previous = this.tail;
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    this.tail = previous.then(() => mine);
    try {
      await untilAborted(previous, signal);
      if (this.closed) throw new KmipTransportError('unreachable', 'the KMIP connection is closed');
      clearTimeout(this.idleTimer);
      const channel = await this.connect(signal);
      try {
        return await this.exchange(channel, request, signal);
      } catch (error) {
        const stale = channel.used && !channel.answering && error instanceof KmipTransportError && error.kind === 'unreachable' && !this.closed;
        if (!stale) throw error;
        return await this.exchange(await this.connect(signal), request, signal);
      }
    } finally {
      done();
      this.armIdleTimer();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idleTimer);
    this.channel?.fail(new KmipTransportError('unreachable', 'the KMIP connection was closed'));
    this.channel = undefined;
  }

  private armIdleTimer(): void {
    clearTimeout(this.idleTimer);
    if (this.closed || !this.channel) return;
    this.idleTimer = setTimeout(() => {
      if (this.channel && !this.channel.pending) {
        this.channel.fail(new KmipTransportError('unreachable', 'idle KMIP connection closed'));
        this.channel = undefined;
      }
    }, this.options.idleMs ?? 60_000);
    this.idleTimer.unref();
  }

  private exchange(channel: Channel, request: Buffer, signal?: AbortSignal): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      // A deadline mid-request leaves an answer on its way: the connection is dropped so that
      // answer can never be read as the reply to the next request.
      const onAbort = () => channel.fail(aborted());
      const settle = () => signal?.removeEventListener('abort', onAbort);
      channel.pending = {
        resolve: (frame) => (settle(), resolve(frame)),
        reject: (error) => (settle(), reject(error)),
        chunks: [],
        received: 0,
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      channel.socket.write(request);
    });
  }

  private connect(signal?: AbortSignal): Promise<Channel> {
    if (this.channel && !this.channel.closed) return Promise.resolve(this.channel);
    const { host, port, secureContext } = this.endpoint;
    return new Promise<Channel>((resolve, reject) => {
      let socket: tls.TLSSocket;
      try {
        // SNI carries host names only; checkServerIdentity still matches an IP against the IP SANs.
        socket = tls.connect({ host, port, secureContext, servername: isIP(host) ? undefined : host });
      } catch (error) {
        reject(transportError(error));
        return;
      }
      const channel = new Channel(socket);
      const timer = setTimeout(() => fail(new KmipTransportError('unreachable', `no TLS connection to the KMIP server within ${this.options.connectTimeoutMs ?? 10_000} ms`)), this.options.connectTimeoutMs ?? 10_000);
      const onAbort = () => fail(aborted());
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const fail = (error: KmipTransportError) => {
        cleanup();
        channel.fail(error);
        reject(error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.setNoDelay(true);
      socket.on('data', (chunk: Buffer) => channel.onData(chunk));
      socket.on('error', (error: Error) => (channel.pending ? channel.fail(transportError(error)) : fail(transportError(error))));
      socket.on('close', () => (channel.pending ? channel.fail(new KmipTransportError('unreachable', 'the KMIP server closed the connection')) : fail(new KmipTransportError('unreachable', 'the KMIP server closed the connection'))));
      socket.once('secureConnect', () => {
        cleanup();
        if (this.closed) return fail(new KmipTransportError('unreachable', 'the KMIP connection is closed'));
        this.channel = channel;
        resolve(channel);
      });
    });
  }
}

/** Resolves when `promise` settles, or rejects as soon as `signal` aborts. */
function untilAborted(promise: Promise<unknown>, signal?: AbortSignal): Promise<void> {
  if (!signal) return promise.then(() => undefined);
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(aborted());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      () => (signal.removeEventListener('abort', onAbort), resolve()),
      () => (signal.removeEventListener('abort', onAbort), resolve()),
    );
  });
}
