import type { AddressInfo } from 'node:net';
import { createServer, type Server, Socket } from 'node:net';

export interface DelayProxyHandle {
  /** The proxy's loopback port: point clients at 127.0.0.1:port. */
  port: number;
  /** The round-trip delay added now, in ms. */
  readonly delayMs: number;
  /** Changes the delay for bytes sent from now on. */
  setDelay(ms: number): void;
  /**
   * `true`: the host behind the proxy becomes unreachable — open connections are cut and new
   * ones are closed as soon as they are accepted — until called again with `false`.
   */
  setUnreachable(unreachable: boolean): void;
  /** Connections open through the proxy. */
  readonly connections: number;
  /**
   * The latest chunks held back (up to 1,000): when each arrived from the server, when it was due,
   * and when it went on to the client (performance.now() ms). A chunk sent straight through is not here.
   */
  readonly held: ReadonlyArray<{ arrivedAt: number; due: number; releasedAt: number }>;
  close(): Promise<void>;
}

/**
 * A TCP proxy on a free loopback port that adds a round-trip delay, to make a local database look
 * remote. Every chunk the server sends is held for `delayMs` before it reaches the client (so each
 * request/response exchange, including each step of the connection handshake, gains `delayMs`),
 * and order is kept. Node timers fire in whole milliseconds, never early: each chunk is held
 * `delayMs` from its arrival (not from the chunk before it), plus however late its timer fires
 * (`held` records every hold, and the test of this proxy checks them).
 */
export async function startDelayProxy(
  target: { host?: string; port: number },
  delayMs: number,
): Promise<DelayProxyHandle> {
  let delay = delayMs;
  let unreachable = false;
  const sockets = new Set<Socket>();
  const held: Array<{ arrivedAt: number; due: number; releasedAt: number }> = [];

  const server: Server = createServer((client) => {
    if (unreachable) {
      client.destroy();
      return;
    }
    const upstream = new Socket();
    sockets.add(client);
    sockets.add(upstream);
    const queue: Array<{ arrivedAt: number; due: number; chunk: Buffer }> = [];
    let timer: NodeJS.Timeout | null = null;
    let upstreamEnded = false;

    const flush = (): void => {
      timer = null;
      const now = performance.now();
      while (queue.length > 0 && queue[0]!.due <= now) {
        const { arrivedAt, due, chunk } = queue.shift()!;
        client.write(chunk);
        held.push({ arrivedAt, due, releasedAt: now });
        if (held.length > 1_000) held.shift();
      }
      if (queue.length > 0) schedule();
      else if (upstreamEnded) client.end();
    };
    const schedule = (): void => {
      if (timer || queue.length === 0) return;
      timer = setTimeout(flush, Math.max(0, Math.ceil(queue[0]!.due - performance.now())));
    };
    const closeBoth = (): void => {
      if (timer) clearTimeout(timer);
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };

    client.setNoDelay(true);
    upstream.setNoDelay(true);
    upstream.connect(target.port, target.host ?? '127.0.0.1');
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => {
      if (delay <= 0 && queue.length === 0) {
        client.write(chunk);
        return;
      }
      const arrivedAt = performance.now();
      queue.push({ arrivedAt, due: arrivedAt + delay, chunk });
      schedule();
    });
    upstream.on('end', () => {
      upstreamEnded = true;
      if (queue.length === 0) client.end();
    });
    client.on('end', () => upstream.end());
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);
    client.on('close', closeBoth);
    upstream.on('close', () => {
      if (queue.length === 0) closeBoth();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    get delayMs() {
      return delay;
    },
    setDelay(ms: number) {
      delay = ms;
    },
    setUnreachable(value: boolean) {
      unreachable = value;
      if (value) {
        for (const s of sockets) s.destroy();
        sockets.clear();
      }
    },
    get connections() {
      return [...sockets].length / 2;
    },
    held,
    async close() {
      for (const s of sockets) s.destroy();
      sockets.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
