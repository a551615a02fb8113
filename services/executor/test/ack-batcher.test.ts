import { AckPolicy, type Bus, type JsMsg, openConsumerPull } from '@sluice/bus';
import { STREAMS } from '@sluice/contracts';
import { processWrites as writes } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AckBatcher } from '../src/ack-batcher.js';
import { startTaskBus, type TaskBusFixture } from './support.js';

describe('acks sent with the next pull request, against a real nats-server', () => {
  let fixture: TaskBusFixture;
  let bus: Bus;

  beforeAll(async () => {
    fixture = await startTaskBus('ack-batcher-test');
    bus = fixture.bus;
    await bus.jsm.consumers.add(STREAMS.tasks.name, {
      durable_name: 'acks',
      filter_subject: 'sluice.tasks.acks',
      ack_policy: AckPolicy.Explicit,
      ack_wait: 30e9,
    });
    for (let i = 0; i < 6; i++) await bus.publish('sluice.tasks.acks', { i });
  });
  afterAll(() => fixture?.dispose());

  const ackFloor = async (): Promise<number> =>
    (await bus.jsm.consumers.info(STREAMS.tasks.name, 'acks')).ack_floor.stream_seq;

  it('holds an ack until the next pull request, writes both at once, and never holds one past a macrotask', async () => {
    const pull = openConsumerPull(bus.nc, STREAMS.tasks.name, 'acks');
    const got: JsMsg[] = [];
    await pull.pull(2, 1_000, (msg) => got.push(msg));
    expect(got).toHaveLength(2);
    const acks = new AckBatcher();
    const first = await ackFloor();

    // Two tasks settle: their acks wait for the next pull, which carries them in one write.
    acks.ack(got[0]!);
    acks.ack(got[1]!);
    const before = writes();
    const pulling = pull.pull(2, 1_000, (msg) => got.push(msg));
    acks.flush();
    await Promise.resolve();
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes() - before).toBe(1);
    await pulling;
    expect(got).toHaveLength(4);
    await expect.poll(ackFloor).toBe(first + 2);

    // No pull follows: the acks go out on the next macrotask anyway.
    acks.ack(got[2]!);
    acks.ack(got[3]!);
    await new Promise((resolve) => setImmediate(resolve));
    await expect.poll(ackFloor).toBe(first + 4);
    pull.close();
  });
});
