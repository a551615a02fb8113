import { spawn } from 'node:child_process';

import { AckPolicy } from '@nats-io/jetstream';
import { ADVISORY_STREAM, BUCKETS, hostConsumerName, LEDGER_STREAM, STREAMS } from '@sluice/contracts';
import { createLogger } from '@sluice/telemetry';
import {
  freePort,
  type NatsServerHandle,
  processWrites as writes,
  startDelayProxy,
  startNatsServer,
} from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Bus, connectBus } from '../src/bus.js';
import { decodeJson } from '../src/codec.js';
import { ensureHostConsumer } from '../src/host-consumers.js';
import { publishReliably, PublishWindow } from '../src/publish.js';
import { startPullLoop } from '../src/pull-loop.js';
import { openRunClaims } from '../src/run-claims.js';
import { followStream } from '../src/stream-follower.js';
import { ensureTopology } from '../src/topology.js';

const logger = createLogger({ service: 'bus-test', level: 'silent' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('bus against a real nats-server', () => {
  let nats: NatsServerHandle;
  let bus: Bus;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: 'bus-test' }, logger);
  });
  afterAll(async () => {
    await bus?.close();
    await nats?.dispose();
  });

  it('declares the four streams, the task ledger, the advisories and the bundle bucket, idempotently and safely in parallel', async () => {
    await Promise.all([ensureTopology(bus.jsm), ensureTopology(bus.jsm)]);
    await ensureTopology(bus.jsm);
    const names: string[] = [];
    for await (const s of bus.jsm.streams.list()) names.push(s.config.name);
    expect(names.sort()).toEqual(
      [
        ...Object.values(STREAMS).map((s) => s.name),
        LEDGER_STREAM.name,
        ADVISORY_STREAM.name,
        `OBJ_${BUCKETS.bundles}`,
      ].sort(),
    );
    const tasks = await bus.jsm.streams.info(STREAMS.tasks.name);
    expect(tasks.config.retention).toBe('workqueue');
  });

  it("bounds a host consumer's deliveries, and sets the bound on a consumer made without one", async () => {
    await ensureTopology(bus.jsm);
    await ensureHostConsumer(bus.jsm, 'db-bound:5432', 4, 30_000);
    const name = hostConsumerName('db-bound:5432');
    expect((await bus.jsm.consumers.info(STREAMS.tasks.name, name)).config.max_deliver).toBe(-1);
    await ensureHostConsumer(bus.jsm, 'db-bound:5432', 4, 30_000, 3);
    expect((await bus.jsm.consumers.info(STREAMS.tasks.name, name)).config).toMatchObject({
      max_deliver: 3,
      max_ack_pending: 4,
    });
    await bus.jsm.consumers.delete(STREAMS.tasks.name, name);
  });

  it('drops a repeated message id inside the duplicate window', async () => {
    const first = await bus.publish('sluice.outcomes.dedup', { n: 1 }, { msgId: 'dedup:a' });
    const second = await bus.publish('sluice.outcomes.dedup', { n: 2 }, { msgId: 'dedup:a' });
    expect(first.duplicate).toBe(false);
    expect(second.duplicate).toBe(true);
    expect(second.seq).toBe(first.seq);
  });

  it('keeps a window of publishes in flight and stores every one', async () => {
    const window = new PublishWindow(64);
    for (let i = 0; i < 2_000; i++)
      await window.submit(() => bus.publish('sluice.outcomes.window', { i }, { msgId: `w:${i}` }));
    await window.drain();
    const info = await bus.jsm.streams.info(STREAMS.outcomes.name, { subjects_filter: 'sluice.outcomes.window' });
    expect(info.state.subjects?.['sluice.outcomes.window']).toBe(2_000);
  });

  it('starts a batch of publishes in one turn: the client writes them to the socket together, and stores every one', async () => {
    await ensureTopology(bus.jsm);
    const publish = (i: number) => () => bus.publish('sluice.outcomes.batch', { i }, { msgId: `b:${i}` });
    const window = new PublishWindow(64);
    const before = writes();
    await window.submitAll(Array.from({ length: 50 }, (_, i) => publish(i)));
    const batched = writes() - before;
    await window.drain();
    // One at a time, the client flushes between publishes.
    const oneByOne = writes();
    for (let i = 50; i < 100; i++) await window.submit(publish(i));
    await window.drain();
    const single = writes() - oneByOne;
    expect(batched).toBeLessThan(10);
    expect(single).toBeGreaterThan(25);
    // A batch larger than the window waits until it has room again, and loses nothing.
    await new PublishWindow(16).submitAll(Array.from({ length: 100 }, (_, i) => publish(100 + i)));
    await expect
      .poll(async () => {
        const info = await bus.jsm.streams.info(STREAMS.outcomes.name, { subjects_filter: 'sluice.outcomes.batch' });
        return info.state.subjects?.['sluice.outcomes.batch'];
      })
      .toBe(200);
  });

  it('surfaces a failed publish from the window at drain', async () => {
    const window = new PublishWindow(4);
    await window.submit(() => publishReliably(bus, 'no.stream.here', {}, { attempts: 1 }));
    await expect(window.drain()).rejects.toThrow();
  });

  it('never runs more handlers than its concurrency and settles every message', async () => {
    for (let i = 0; i < 40; i++) await bus.publish('sluice.tasks.pool', { i });
    await bus.jsm.consumers.add(STREAMS.tasks.name, {
      durable_name: 'pool',
      filter_subject: 'sluice.tasks.pool',
      ack_policy: AckPolicy.Explicit,
    });
    const consumer = await bus.js.consumers.get(STREAMS.tasks.name, 'pool');
    let running = 0;
    let peak = 0;
    const seen = new Set<number>();
    const loop = startPullLoop(consumer, { concurrency: 4, expiresMs: 1_000, logger }, async (msg) => {
      running += 1;
      peak = Math.max(peak, running);
      await sleep(15);
      seen.add((decodeJson(msg.data) as { i: number }).i);
      running -= 1;
      msg.ack();
    });
    await expect.poll(() => seen.size, { timeout: 10_000 }).toBe(40);
    const { unfinished } = await loop.stop(1_000);
    expect(unfinished).toBe(0);
    expect(peak).toBe(4);
  });

  it('puts back the message of a handler that throws, and it comes again', async () => {
    await bus.publish('sluice.tasks.poison', { once: true });
    // A short ack wait: a redelivery that races a pull's expiry is not lost for 30 s.
    await bus.jsm.consumers.add(STREAMS.tasks.name, {
      durable_name: 'poison',
      filter_subject: 'sluice.tasks.poison',
      ack_policy: AckPolicy.Explicit,
      ack_wait: 2e9,
    });
    const consumer = await bus.js.consumers.get(STREAMS.tasks.name, 'poison');
    const deliveries: number[] = [];
    const loop = startPullLoop(consumer, { concurrency: 1, expiresMs: 1_000, logger }, (msg) => {
      deliveries.push(msg.info.deliveryCount);
      if (msg.info.deliveryCount === 1) return Promise.reject(new Error('boom'));
      msg.ack();
      return Promise.resolve();
    });
    await expect.poll(() => deliveries.some((n) => n > 1), { timeout: 15_000 }).toBe(true);
    expect(deliveries[0]).toBe(1);
    // The last delivery is a redelivery, and it was acked (nothing comes after it).
    expect(deliveries.at(-1)).toBeGreaterThan(1);
    await loop.stop(1_000);
  });

  it('claims a runId once: new, then duplicate; resume before planned; conflict on other content', async () => {
    const claims = await openRunClaims(bus);
    expect((await claims.claim('run-a', 'f1')).kind).toBe('new');
    expect((await claims.claim('run-a', 'f1')).kind).toBe('resume');
    expect((await claims.claim('run-a', 'f2')).kind).toBe('conflict');
    await claims.markPlanned('run-a');
    expect((await claims.claim('run-a', 'f1')).kind).toBe('duplicate');
    const [x, y] = await Promise.all([claims.claim('run-b', 'f'), claims.claim('run-b', 'f')]);
    expect([x.kind, y.kind].sort()).toEqual(['new', 'resume']);
  });

  it('replays a stream, reports caught up, then follows it live', async () => {
    for (let i = 0; i < 5; i++) await bus.publish(`sluice.runs.follow.progress`, { i });
    const info = await bus.jsm.streams.info(STREAMS.runs.name);
    const seen: unknown[] = [];
    const follower = await followStream(bus, STREAMS.runs.name, logger, (msg) => {
      seen.push(decodeJson(msg.data));
    });
    await follower.caughtUp;
    expect(seen.length).toBe(info.state.messages);
    await bus.publish('sluice.runs.follow.progress', { i: 99 });
    await expect.poll(() => seen.at(-1), { timeout: 5_000 }).toEqual({ i: 99 });
    await follower.stop();
  });
});

describe('closing a bus whose server is gone', () => {
  // Replays chaos seed 2's hung CLI: `sluice pause` printed its answer during a NATS node restart
  // and never exited. A drain needs the server; with none to answer it waited, and a connection
  // left open reconnects for ever and keeps the process alive.
  it('closes within seconds even though the drain cannot finish', async () => {
    const nats = await startNatsServer();
    try {
      const bus = await connectBus({ servers: nats.url, name: 'bus-close-test' }, logger);
      await bus.nc.flush();
      await nats.stop();
      const started = Date.now();
      await bus.close();
      expect(bus.nc.isClosed()).toBe(true);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await nats.dispose();
    }
  }, 20_000);
});

describe('connecting to a server whose JetStream does not answer', () => {
  // Chaos seed 2's hung CLI: connected to a NATS node that went away before JetStream's first
  // answer, `sluice pause` printed "timeout" and its process lived on the connection nobody held.
  // A server without JetStream fails that first request the same way, at once.
  it('fails naming JetStream, and leaves no connection behind', async () => {
    const port = await freePort();
    const server = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    const proxy = await startDelayProxy({ port }, 0);
    try {
      await expect
        .poll(
          () =>
            connectBus({ servers: `nats://127.0.0.1:${port}`, name: 'probe' }, logger).then(
              () => 'connected',
              (error: Error) => (/JetStream did not answer/.test(error.message) ? 'refused' : error.message),
            ),
          { timeout: 10_000, interval: 200 },
        )
        .toBe('refused');
      await expect(
        connectBus({ servers: `nats://127.0.0.1:${proxy.port}`, name: 'bus-no-js' }, logger),
      ).rejects.toThrow(/JetStream did not answer.*-js/);
      await expect.poll(() => proxy.connections, { timeout: 5_000, interval: 50 }).toBe(0);
    } finally {
      await proxy.close();
      server.kill('SIGKILL');
    }
  }, 30_000);
});
