import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestCertificate } from './self-signed-cert.js';

/** What a handler answers: a status, headers, and a JSON body (or none). */
export interface Reply {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly json?: unknown;
}

export interface IncomingCall {
  readonly method: string;
  readonly url: URL;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/**
 * One HTTPS listener on 127.0.0.1 with the two faults every emulator needs: `delayMs` (answer
 * late) and stop/start on the same port (unreachable: connections are refused, and open
 * keep-alive sockets are cut, as when a network path goes away).
 */
export class HttpsListener {
  private server: Server | undefined;
  private port = 0;
  delayMs = 0;
  /** Requests received (every method and path), for "open() makes no network call". */
  requests = 0;

  constructor(
    private readonly tls: TestCertificate,
    private readonly handle: (call: IncomingCall) => Reply | Promise<Reply>,
  ) {}

  get url(): string {
    if (this.port === 0) throw new Error('listener not started');
    return `https://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer({ cert: this.tls.cert, key: this.tls.key }, (req, res) => {
      this.serve(req, res).catch(() => res.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    this.requests += 1;
    const call: IncomingCall = {
      method: req.method ?? 'GET',
      url: new URL(req.url ?? '/', this.url),
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
    };
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    if (res.destroyed) return;
    const reply = await this.handle(call);
    const body = reply.json === undefined ? '' : JSON.stringify(reply.json);
    res.writeHead(reply.status, {
      ...(body ? { 'content-type': 'application/json; charset=utf-8' } : {}),
      'content-length': String(Buffer.byteLength(body)),
      ...reply.headers,
    });
    res.end(body);
  }
}
