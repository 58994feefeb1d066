import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy that delays what passes through it, in front of a real server (the Upstash gateway, the
 * Lambda invoke endpoint): a deliberately slow network or service. Requests still reach the server,
 * late; replies come back late; with `hold` nothing is forwarded at all (a hung peer).
 */
export interface DelayProxy {
  readonly url: string;
  /** Delay each chunk from the client to the server, and from the server back, by this long. */
  set(delays: { requestMs?: number; replyMs?: number; hold?: boolean }): void;
  /** Connections accepted, and chunks the clients sent (each forwarded unless held), since the start. */
  readonly stats: { connections: number; chunks: number };
  close(): Promise<void>;
}

export async function startDelayProxy(targetPort: number): Promise<DelayProxy> {
  let requestMs = 0;
  let replyMs = 0;
  let hold = false;
  const stats = { connections: 0, chunks: 0 };
  const sockets = new Set<Socket>();
  const later = (ms: number, action: () => void) => (ms > 0 ? void setTimeout(action, ms) : action());

  const server: Server = createServer((client) => {
    stats.connections += 1;
    const upstream = connect(targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.on('data', (chunk) => {
      if (hold) return;
      stats.chunks += 1;
      later(requestMs, () => upstream.writable && upstream.write(chunk));
    });
    upstream.on('data', (chunk) => {
      if (hold) return;
      later(replyMs, () => client.writable && client.write(chunk));
    });
    client.on('close', () => later(requestMs, () => upstream.destroy()));
    upstream.on('close', () => later(replyMs, () => client.destroy()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the delay proxy has no port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    set: (delays) => {
      requestMs = delays.requestMs ?? 0;
      replyMs = delays.replyMs ?? 0;
      hold = delays.hold ?? false;
    },
    stats,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
