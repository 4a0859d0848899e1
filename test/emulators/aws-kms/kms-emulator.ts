import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KmsFault, KmsKeyStore } from './kms-key-store.js';
import { isAuthFailure, verifySigV4, type Principal } from './sigv4-verifier.js';

/**
 * A local AWS KMS for tests: the JSON 1.1 protocol the official client speaks (`POST /`,
 * `x-amz-target: TrentService.<Operation>`, `content-type: application/x-amz-json-1.1`, SigV4),
 * on 127.0.0.1 with an ephemeral port. Errors are HTTP 400 (500 for the service's own faults) with
 * `{"__type": "...", "message": "..."}` and an `x-amzn-RequestId` header, which the client turns
 * into its exception classes. Test code only.
 *
 * Controls inject what a real KMS can do to keystrata: reject credentials, deny permission, change
 * key states (in `keys`), throttle, answer slowly, inject a service fault, and go away entirely.
 */

export interface KmsEmulatorOptions {
  readonly region?: string;
}

const JSON_TYPE = 'application/x-amz-json-1.1';

export class KmsEmulator {
  readonly keys: KmsKeyStore;
  readonly region: string;
  /** Credentials the emulator accepts, by access key id. */
  readonly principals = new Map<string, Principal>();
  /** Encrypt/Decrypt/DescribeKey (and any other operation) requests received, answered or not. */
  serviceCalls = 0;
  /** Every operation seen, in order (for tests that check what a provider calls). */
  readonly operations: string[] = [];

  private server: Server | undefined;
  private port = 0;
  private throttled = false;
  private delayMs = 0;
  private fault: KmsFault | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(options: KmsEmulatorOptions = {}) {
    this.region = options.region ?? 'us-east-1';
    this.keys = new KmsKeyStore(this.region);
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    await this.listen(0);
  }

  addPrincipal(principal: Principal): Principal {
    this.principals.set(principal.accessKeyId, principal);
    return principal;
  }

  /** Take `operations` away from an access key's policy (or give them back with `allow`). */
  deny(accessKeyId: string, operations: readonly string[]): void {
    this.keys.denied.set(accessKeyId, new Set(operations));
  }

  allow(accessKeyId: string): void {
    this.keys.denied.delete(accessKeyId);
  }

  /** Every request answered with ThrottlingException ("Rate exceeded") until turned off. */
  throttle(on: boolean): void {
    this.throttled = on;
  }

  /** Hold every answer for `ms` (0 = off). */
  slow(ms: number): void {
    this.delayMs = ms;
  }

  /** Answer every request with this service fault (e.g. KeyUnavailableException, 500) until cleared. */
  injectFault(type: string | null, status = 500, message = ''): void {
    this.fault = type === null ? null : new KmsFault(type, message, status);
  }

  /** Close the listener and every open connection (connection refused), or listen again on the same port. */
  async unreachable(on: boolean): Promise<void> {
    if (on) await this.stopListening();
    else if (!this.server) await this.listen(this.port);
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await this.stopListening();
  }

  private listen(port: number): Promise<void> {
    const server = createServer((req, res) => this.receive(req, res));
    // A client that was told "unreachable" must not keep using an idle keep-alive socket.
    server.keepAliveTimeout = 5_000;
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        this.port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  private stopListening(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private receive(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const answer = () => {
        if (res.destroyed) return;
        const { status, payload } = this.handle(req, body);
        res.writeHead(status, { 'content-type': JSON_TYPE, 'x-amzn-requestid': randomUUID() });
        res.end(JSON.stringify(payload));
      };
      if (this.delayMs > 0) {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          answer();
        }, this.delayMs);
        this.timers.add(timer);
      } else {
        answer();
      }
    });
  }

  private handle(req: IncomingMessage, body: Buffer): { status: number; payload: unknown } {
    try {
      const target = req.headers['x-amz-target'];
      const operation = typeof target === 'string' && target.startsWith('TrentService.') ? target.slice('TrentService.'.length) : '';
      this.serviceCalls += 1;
      this.operations.push(operation);
      if (req.method !== 'POST' || req.url !== '/') throw new KmsFault('UnknownOperationException', '', 404);
      if (!req.headers['content-type']?.startsWith(JSON_TYPE)) throw new KmsFault('SerializationException', 'Unsupported content type');
      const principal = verifySigV4({ method: req.method, path: req.url, headers: req.headers, body }, { region: this.region, service: 'kms', principals: this.principals });
      if (isAuthFailure(principal)) throw new KmsFault(principal.type, principal.message, principal.type === 'MissingAuthenticationTokenException' ? 403 : 400);
      if (this.throttled) throw new KmsFault('ThrottlingException', 'Rate exceeded');
      if (this.fault) throw this.fault;
      let request: Record<string, unknown>;
      try {
        request = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
      } catch {
        throw new KmsFault('SerializationException', 'Start of structure or map found where not expected.');
      }
      switch (operation) {
        case 'Encrypt':
          return { status: 200, payload: this.keys.encrypt(principal.accessKeyId, request) };
        case 'Decrypt':
          return { status: 200, payload: this.keys.decrypt(principal.accessKeyId, request) };
        case 'DescribeKey':
          return { status: 200, payload: this.keys.describeKey(principal.accessKeyId, request) };
        default:
          throw new KmsFault('UnknownOperationException', '');
      }
    } catch (error) {
      if (!(error instanceof KmsFault)) return { status: 500, payload: { __type: 'KMSInternalException', message: 'emulator: internal error' } };
      // The real service leaves the message out of InvalidCiphertextException.
      return { status: error.status, payload: error.message ? { __type: error.type, message: error.message } : { __type: error.type } };
    }
  }
}
