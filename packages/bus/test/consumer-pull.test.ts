import { AckPolicy, type JsMsg } from '@nats-io/jetstream';
import { createLogger } from '@sluice/telemetry';
import { type NatsServerHandle, startNatsServer } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Bus, connectBus } from '../src/bus.js';
import { openConsumerPull, PullNoAnswerError, PullStatusError } from '../src/consumer-pull.js';

const logger = createLogger({ service: 'consumer-pull-test', level: 'silent' });

describe('a pull that keeps its subscription, against a real nats-server', () => {
  let nats: NatsServerHandle;
  let bus: Bus;
  let n = 0;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: 'consumer-pull-test' }, logger);
  });
  afterAll(async () => {
    await bus?.close();
    await nats?.dispose();
  });

  /** A stream with `messages` messages and a consumer that holds at most `maxAckPending` unacknowledged. */
  async function consumerWith(messages: number, maxAckPending: number): Promise<string> {
    const stream = `PULL_${++n}`;
    await bus.jsm.streams.add({ name: stream, subjects: [`pull${n}.>`] });
    await bus.jsm.consumers.add(stream, {
      durable_name: 'c',
      ack_policy: AckPolicy.Explicit,
      max_ack_pending: maxAckPending,
      ack_wait: 30_000_000_000,
    });
    for (let i = 0; i < messages; i++) await bus.js.publish(`pull${n}.m`, `m${i}`);
    return stream;
  }

  it('delivers exactly the batch asked for, pull after pull on one subscription, as JetStream messages', async () => {
    const stream = await consumerWith(5, 10);
    const pull = openConsumerPull(bus.nc, stream, 'c');
    const got: JsMsg[] = [];
    expect(await pull.pull(2, 1_000, (m) => got.push(m))).toBe(2);
    expect(await pull.pull(1, 1_000, (m) => got.push(m))).toBe(1);
    expect(got.map((m) => m.string())).toEqual(['m0', 'm1', 'm2']);
    expect(got.map((m) => [m.seq, m.info.deliveryCount, m.info.stream])).toEqual([
      [1, 1, stream],
      [2, 1, stream],
      [3, 1, stream],
    ]);
    got[0]!.ack();
    got[1]!.nak();
    got[2]!.term();
    // The nak'ed one comes again, counted as its second delivery.
    const again: JsMsg[] = [];
    expect(await pull.pull(3, 1_000, (m) => again.push(m))).toBe(3);
    expect(again.map((m) => [m.seq, m.info.deliveryCount]).sort((x, y) => x[0]! - y[0]!)).toEqual([
      [2, 2],
      [4, 1],
      [5, 1],
    ]);
    for (const m of again) m.ack();
    await expect
      .poll(async () => (await bus.jsm.consumers.info(stream, 'c')).num_ack_pending, { timeout: 5_000 })
      .toBe(0);
    pull.close();
  });

  it("resolves with what came when the request expires: the consumer's max_ack_pending holds the rest back", async () => {
    const stream = await consumerWith(4, 2);
    const pull = openConsumerPull(bus.nc, stream, 'c');
    const got: JsMsg[] = [];
    const started = Date.now();
    expect(await pull.pull(4, 1_000, (m) => got.push(m))).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(await pull.pull(1, 1_000, (m) => got.push(m))).toBe(0);
    for (const m of got) m.ack();
    // Room again: the next pull gets the rest.
    expect(await pull.pull(2, 1_000, (m) => got.push(m))).toBe(2);
    expect(got.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
    pull.close();
  });

  it('rejects when the server ends the request (the consumer was deleted)', async () => {
    const stream = await consumerWith(0, 2);
    const pull = openConsumerPull(bus.nc, stream, 'c');
    const refused = expect(pull.pull(1, 5_000, () => undefined)).rejects.toBeInstanceOf(PullStatusError);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await bus.jsm.consumers.delete(stream, 'c');
    await refused;
    pull.close();
  });

  it('rejects when the server never answers (a pull on a consumer it does not know)', async () => {
    const stream = await consumerWith(0, 2);
    const pull = openConsumerPull(bus.nc, stream, 'no-such-consumer');
    await expect(pull.pull(1, 1_000, () => undefined)).rejects.toBeInstanceOf(PullNoAnswerError);
    pull.close();
  });

  it('close ends a pull in progress with what it got', async () => {
    const stream = await consumerWith(0, 2);
    const pull = openConsumerPull(bus.nc, stream, 'c');
    const pending = pull.pull(1, 5_000, () => undefined);
    pull.close();
    expect(await pending).toBe(0);
  });
});
