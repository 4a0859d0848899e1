import * as net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a real server (PyKMIP), for the faults the server itself
 * cannot be told to produce: answers delayed ("slow") and the port refusing connections
 * ("unreachable"). It relays bytes untouched — TLS runs end to end through it, so the client still
 * authenticates the real server and the real server still checks the client's certificate.
 */

export interface TcpFaultProxy {
  readonly port: number;
  /** Connections accepted so far. */
  connections(): number;
  /** Hold every chunk the server sends for `ms` before relaying it (0 = relay at once). */
  delay(ms: number): void;
  /** false: drop every open connection and stop listening (connections are refused); true: listen again on the same port. */
  setReachable(reachable: boolean): Promise<void>;
  /**
   * The connections open now are reset as soon as the client sends on them again, without relaying:
   * a server that closed an idle connection just as the client reused it.
   */
  dropIdleConnections(): void;
  close(): Promise<void>;
}

export async function startTcpFaultProxy(target: { host: string; port: number }): Promise<TcpFaultProxy> {
  let delayMs = 0;
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const clients = new Set<net.Socket>();
  const doomed = new WeakSet<net.Socket>();

  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };

  const server = net.createServer((client: net.Socket) => {
    accepted += 1;
    const upstream = net.connect(target);
    track(client);
    track(upstream);
    clients.add(client);
    client.on('close', () => (clients.delete(client), upstream.destroy()));
    upstream.on('close', () => client.destroy());
    client.on('data', (chunk: Buffer) => {
      if (doomed.has(client)) return void client.resetAndDestroy();
      upstream.write(chunk);
    });
    // Answers keep their order: each waits for the one before it and for its own due time.
    let relayed: Promise<void> = Promise.resolve();
    upstream.on('data', (chunk: Buffer) => {
      const due = Date.now() + delayMs;
      relayed = relayed.then(async () => {
        const wait = due - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        if (!client.destroyed) client.write(chunk);
      });
    });
  });

  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
        server.off('error', reject);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  const stopListening = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });

  const port = await listen(0);
  return {
    port,
    connections: () => accepted,
    dropIdleConnections() {
      for (const client of clients) doomed.add(client);
    },
    delay(ms) {
      delayMs = ms;
    },
    async setReachable(reachable) {
      if (reachable) {
        if (!server.listening) await listen(port);
      } else {
        await stopListening();
      }
    },
    close: stopListening,
  };
}
