import { DiscardPolicy } from '@nats-io/jetstream';
import { createLogger } from '@sluice/telemetry';
import { type NatsServerHandle, startNatsServer } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { BulkWriter } from '../src/bulk-writer.js';
import { type Bus, connectBus } from '../src/bus.js';
import { isStreamFull } from '../src/publish.js';

const logger = createLogger({ service: 'bulk-writer-test', level: 'silent' });
const bytes = (text: string) => new TextEncoder().encode(text);

/** Writes `count` messages `k.<i>` the way a recount does: waiting only when asked to. */
async function writeAll(writer: BulkWriter, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await writer.put(`k.${i}`, bytes(String(i)));
  await writer.end();
}

describe('the bulk writer on a real nats-server', () => {
  let nats: NatsServerHandle;
  let bus: Bus;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: 'bulk-writer-test' }, logger);
  });
  afterAll(async () => {
    await bus?.close();
    await nats?.dispose();
  });

  it('stores every message, a partial last batch included, and a repeated key once', async () => {
    await bus.jsm.streams.add({ name: 'BULK_ALL', subjects: ['k.>'], max_msgs_per_subject: 1 });
    const writer = await BulkWriter.open(bus, 'BULK_ALL');
    await writeAll(writer, 2_345);
    const info = await bus.jsm.streams.info('BULK_ALL');
    expect(info.state.messages).toBe(2_345);
    expect(writer.written).toBe(2_345);
    expect(writer.rewritten).toBe(0);
    const last = await bus.jsm.streams.getMessage('BULK_ALL', { last_by_subj: 'k.2344' });
    expect(new TextDecoder().decode(last!.data)).toBe('2344');
    await bus.jsm.streams.delete('BULK_ALL');
  });

  it('sees a stream refusing messages it sent without acks, and throws the refusal', async () => {
    // Full after 1,500 messages: the second batch is refused from its 501st message on, silently
    // for the messages without acks, and its ack comes back as the error.
    await bus.jsm.streams.add({
      name: 'BULK_FULL',
      subjects: ['k.>'],
      max_msgs: 1_500,
      discard: DiscardPolicy.New,
    });
    const writer = await BulkWriter.open(bus, 'BULK_FULL');
    const failure = await writeAll(writer, 3_000).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(isStreamFull(failure)).toBe(true);
    expect((await bus.jsm.streams.info('BULK_FULL')).state.messages).toBe(1_500);
    await bus.jsm.streams.delete('BULK_FULL');
  });

  it('writes a batch again with acks when its gap comes up short, and so names what was lost', async () => {
    // One message of the first batch is refused (its subject is outside the stream, so nothing
    // answers it: a publish without an ack is lost without a word); the writer counts 999 stored
    // of 1,000 and writes that batch and the rest again, each acknowledged.
    await bus.jsm.streams.add({ name: 'BULK_SHORT', subjects: ['k.>'], max_msgs_per_subject: 1 });
    const writer = await BulkWriter.open(bus, 'BULK_SHORT');
    for (let i = 0; i < 1_800; i++) await writer.put(i === 10 ? 'elsewhere.10' : `k.${i}`, bytes(String(i)));
    const failure = await writer.end().then(
      () => undefined,
      (error: unknown) => error,
    );
    // The stray subject has no stream: written again with an ack, nats.js names the 503 (no responders) "jetstream is not enabled".
    expect(String(failure)).toMatch(/no responders|jetstream is not enabled/i);
    expect(writer.rewritten).toBeGreaterThan(0);
    await bus.jsm.streams.delete('BULK_SHORT');
  });
});
