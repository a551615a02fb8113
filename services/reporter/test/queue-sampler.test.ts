import { type Bus, connectBus, ensureHostConsumer, ensureTopology } from '@sluice/bus';
import { hostConsumerName, STREAMS, taskSubject } from '@sluice/contracts';
import { createLogger } from '@sluice/telemetry';
import { type NatsServerHandle, startNatsServer } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { atLimit, type QueueSampleSet, startQueueSampler } from '../src/queue-sampler.js';

const logger = createLogger({ service: 'reporter-test', level: 'silent' });
const A = 'db-a:5432';
const B = 'db-b:6432';

describe('queue sampler against a real nats-server', () => {
  let nats: NatsServerHandle;
  let bus: Bus;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: 'sampler-test' }, logger);
    await ensureTopology(bus.jsm);
    await ensureHostConsumer(bus.jsm, A, 2, 30_000);
    await ensureHostConsumer(bus.jsm, B, 3, 30_000);
  }, 30_000);
  afterAll(async () => {
    await bus?.close();
    await nats?.dispose();
  });

  const byHost = (set: QueueSampleSet | undefined) =>
    Object.fromEntries((set?.hosts ?? []).map(({ host, ...rest }) => [host, rest]));

  it('samples waiting, in-flight and limit per host, and sleeps while idle after one last sample', async () => {
    let active = false;
    const sampler = startQueueSampler({ bus, logger, intervalMs: 50, active: () => active });
    const seen: QueueSampleSet[] = [];
    sampler.onSample((s) => seen.push(s));
    try {
      // Idle from the start: one sample (so the gauges exist), then none.
      await expect
        .poll(() => byHost(sampler.latest()))
        .toEqual({ [A]: { pending: 0, inFlight: 0, limit: 2 }, [B]: { pending: 0, inFlight: 0, limit: 3 } });
      const idleCount = seen.length;
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(seen.length).toBe(idleCount);

      // A run: five tasks for host A, and an executor holding A's whole limit.
      active = true;
      for (let i = 0; i < 5; i++) await bus.publish(taskSubject(A), { i }, { msgId: `t${i}` });
      const consumer = await bus.js.consumers.get(STREAMS.tasks.name, hostConsumerName(A));
      const held = [];
      for await (const m of await consumer.fetch({ max_messages: 2, expires: 2_000 })) {
        held.push(m);
        if (held.length === 2) break;
      }
      expect(held).toHaveLength(2);
      await expect.poll(() => byHost(sampler.latest())[A]).toEqual({ pending: 3, inFlight: 2, limit: 2 });
      const last = sampler.latest()!;
      expect(atLimit(last.hosts.find((h) => h.host === A)!)).toBe(true);
      expect(atLimit(last.hosts.find((h) => h.host === B)!)).toBe(false);
      expect(seen.at(-1)).toBe(last);
      expect(seen.at(-1)!.at).toBeGreaterThanOrEqual(seen[0]!.at);

      // The run ends while work is still visible: sampling goes on until the queues show none.
      active = false;
      for (const m of held) m.ack();
      for (let got = 0; got < 3;) {
        for await (const m of await consumer.fetch({ max_messages: 3 - got, expires: 1_000 })) {
          m.ack();
          got += 1;
        }
      }
      await expect.poll(() => byHost(sampler.latest())[A]).toEqual({ pending: 0, inFlight: 0, limit: 2 });
      const settled = seen.length;
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(seen.length).toBe(settled);
    } finally {
      await sampler.stop();
    }
  });

  it('samples on demand, survives a failing listener, and stops listeners that unsubscribe', async () => {
    const sampler = startQueueSampler({ bus, logger, intervalMs: 60_000, active: () => false });
    try {
      let calls = 0;
      sampler.onSample(() => {
        throw new Error('listener bug');
      });
      const off = sampler.onSample(() => void (calls += 1));
      const first = await sampler.sampleNow();
      expect(first.hosts.map((h) => h.host).sort()).toEqual([A, B]);
      expect(calls).toBeGreaterThanOrEqual(1);
      const before = calls;
      off();
      await sampler.sampleNow();
      expect(calls).toBe(before);
    } finally {
      await sampler.stop();
    }
  });
});
