import net from 'node:net';

export interface TcpMeter {
  port: number;
  /** Bytes the store has sent through so far. */
  served: () => number;
  close: () => Promise<void>;
}

/**
 * A loopback TCP relay that counts the bytes a server sends. Between an adapter and its store it
 * tells how much of the store had been read when the first row arrived, whatever the protocol;
 * closed, it makes the store unreachable, and started again on its port, reachable again.
 */
export async function startTcpMeter(target: { host: string; port: number }, port = 0): Promise<TcpMeter> {
  let served = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined).on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.on('data', (chunk: Buffer) => (served += chunk.length));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    served: () => served,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
