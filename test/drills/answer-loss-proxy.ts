import * as net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of one node, for the fault a kill -9 produces only by luck: a
 * write that the server committed and answered, whose answer never reaches the client (the
 * connection is reset as the answer arrives). The client cannot tell it from a write that never
 * happened, retries, and must find its first attempt committed — once.
 *
 * It relays bytes untouched. It reads only the request line at the start of each request (the
 * client sends one request at a time per connection), to choose which answers to lose.
 */

export interface AnswerLossProxy {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** Lose the answer to the next request whose request line ("PUT /v1/…") matches. */
  loseNextAnswer(to: RegExp): void;
  /** Answers lost so far. */
  lost(): number;
  close(): Promise<void>;
}

const REQUEST_LINE = /^(GET|POST|PUT|DELETE|PATCH|HEAD) (\S+) HTTP\/1\.1\r\n/;

export async function startAnswerLossProxy(target: string): Promise<AnswerLossProxy> {
  const { hostname, port } = new URL(target);
  const armed: RegExp[] = [];
  const sockets = new Set<net.Socket>();
  let lost = 0;

  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };

  const server = net.createServer((client) => {
    const upstream = net.connect({ host: hostname, port: Number(port) });
    track(client);
    track(upstream);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    /** The armed pattern the request now in flight on this connection matched, if any. */
    let doomed = false;
    client.on('data', (chunk: Buffer) => {
      const line = REQUEST_LINE.exec(chunk.subarray(0, 512).toString('latin1'));
      if (line) {
        const index = armed.findIndex((pattern) => pattern.test(`${line[1]} ${line[2]}`));
        doomed = index >= 0;
        if (doomed) armed.splice(index, 1);
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (doomed) {
        // The server has handled the request (it is answering): the client never learns it.
        lost++;
        doomed = false;
        client.resetAndDestroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const address = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    loseNextAnswer: (to) => void armed.push(to),
    lost: () => lost,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
