import net from 'node:net';

import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';

import { startNatsServer } from '../src/nats-server.js';
import { freePort, waitForPort } from '../src/ports.js';
import { mapLimit } from '../src/tenant-fleet.js';

describe('testkit', () => {
  it('starts a private nats-server with JetStream, stops it and starts it again on the same port', async () => {
    const nats = await startNatsServer();
    try {
      const nc = await connect({ servers: nats.url });
      expect(nc.info?.jetstream).toBe(true);
      await nc.close();
      await nats.stop();
      await expect(waitForPort(nats.port, 300)).rejects.toThrow(/nothing listens/);
      await nats.restart();
      await waitForPort(nats.port, 5_000);
    } finally {
      await nats.dispose();
    }
  }, 30_000);

  it('finds a port nothing listens on', async () => {
    const port = await freePort();
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    server.close();
  });

  it('maps with a concurrency limit and keeps order', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 3, 2], 2, async (n) => {
      running += 1;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setTimeout(resolve, n));
      running -= 1;
      return n * 10;
    });
    expect(out).toEqual([50, 10, 30, 20]);
    expect(peak).toBe(2);
  });
});
