import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request as the fake server received it; `rawPath` is exactly what went over the wire. */
export interface RecordedRequest {
  readonly method: string;
  readonly rawPath: string;
  readonly pathname: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly json: unknown;
}

export interface FakeReply {
  readonly status: number;
  /** Serialised as JSON unless `raw` is given. */
  readonly body?: unknown;
  readonly raw?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export type FakeHandler = (request: RecordedRequest) => FakeReply;

export interface FakeApi {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Replaces the handler for the following requests. */
  reply(handler: FakeHandler): void;
  close(): Promise<void>;
}

/**
 * A tiny stand-in for the keystrata API on 127.0.0.1 and a free port: it records every request and
 * answers with whatever the test's handler says, so the SDK and CLI are tested over a real socket.
 */
export async function startFakeApi(handler: FakeHandler = () => ({ status: 404 })): Promise<FakeApi> {
  let current = handler;
  const requests: RecordedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const rawPath = req.url ?? '/';
      const parsed = new URL(rawPath, 'http://fake.invalid');
      let json: unknown;
      try {
        json = body === '' ? undefined : JSON.parse(body);
      } catch {
        json = undefined;
      }
      const recorded: RecordedRequest = {
        method: req.method ?? 'GET',
        rawPath,
        pathname: parsed.pathname,
        query: parsed.searchParams,
        headers: req.headers,
        body,
        json,
      };
      requests.push(recorded);
      const reply = current(recorded);
      const payload = reply.raw ?? (reply.body === undefined ? '' : JSON.stringify(reply.body));
      res.writeHead(reply.status, {
        ...(reply.raw === undefined && reply.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...reply.headers,
      });
      res.end(payload);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    reply(next) {
      current = next;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/** A keystrata error body, as the real server sends it. */
export function errorReply(status: number, code: string, message: string, extra: Record<string, unknown> = {}): FakeReply {
  return { status, body: { error: { code, message, requestId: 'req-1', ...extra } } };
}

/** A port nothing listens on: bind one, note it, release it. */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
