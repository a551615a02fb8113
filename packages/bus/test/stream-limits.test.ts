import { ADVISORY_STREAM, LEDGER_STREAM, outcomeSubject, STREAMS } from '@sluice/contracts';
import { createLogger } from '@sluice/telemetry';
import { type NatsServerHandle, startNatsServer } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Bus, connectBus } from '../src/bus.js';
import { loadStreamLimits } from '../src/index.js';
import { publishReliably, StreamFullError } from '../src/publish.js';
import { StreamLimitError } from '../src/stream-settings.js';
import { ensureTopology } from '../src/topology.js';

const logger = createLogger({ service: 'bus-limits-test', level: 'silent' });
const DAY_NS = 24 * 3600 * 1e9;
const LIMITED = [...Object.values(STREAMS).map((s) => s.name), LEDGER_STREAM.name];

describe('stream limits (SLUICE_RETENTION, SLUICE_STREAM_MAX_BYTES) against a real nats-server', () => {
  let nats: NatsServerHandle;
  let bus: Bus;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: 'bus-limits-test' }, logger);
  });
  afterAll(async () => {
    await bus?.close();
    await nats?.dispose();
  });

  const configOf = async (name: string) => (await bus.jsm.streams.info(name)).config;

  it('reads the settings once, with units, and names a bad one', () => {
    expect(loadStreamLimits({})).toEqual({ retentionMs: 7 * 86_400_000, maxBytes: -1 });
    expect(loadStreamLimits({ SLUICE_RETENTION: '2d', SLUICE_STREAM_MAX_BYTES: '64MiB' })).toEqual({
      retentionMs: 2 * 86_400_000,
      maxBytes: 64 * 2 ** 20,
    });
    expect(() => loadStreamLimits({ SLUICE_STREAM_MAX_BYTES: '1000' })).toThrow(/SLUICE_STREAM_MAX_BYTES/);
  });

  it('creates every stream with the limits, refusing new messages when full (never dropping stored ones)', async () => {
    await ensureTopology(bus.jsm, { retentionMs: 2 * 86_400_000, maxBytes: 64 * 2 ** 20 });
    for (const name of LIMITED) {
      expect(await configOf(name), name).toMatchObject({
        max_bytes: 64 * 2 ** 20,
        max_age: 2 * DAY_NS,
        discard: 'new',
      });
    }
    // The server writes advisories itself and cannot be refused: that one drops its oldest.
    expect(await configOf(ADVISORY_STREAM.name)).toMatchObject({ max_bytes: 64 * 2 ** 20, discard: 'old' });
  });

  it('a service that states no limits leaves them alone; one that does brings existing streams to them', async () => {
    await ensureTopology(bus.jsm, { replicas: 1 });
    expect((await configOf(STREAMS.outcomes.name)).max_bytes).toBe(64 * 2 ** 20);
    await ensureTopology(bus.jsm, { retentionMs: 7 * 86_400_000, maxBytes: -1 });
    expect(await configOf(STREAMS.outcomes.name)).toMatchObject({ max_bytes: -1, max_age: 7 * DAY_NS, discard: 'old' });
  });

  it('refuses to lower max bytes below what a stream holds (JetStream would delete the oldest messages)', async () => {
    for (let i = 0; i < 20; i++) await bus.publish(outcomeSubject(`limits-${i}`), { filler: 'x'.repeat(500) });
    const before = (await bus.jsm.streams.info(STREAMS.outcomes.name)).state;
    await expect(ensureTopology(bus.jsm, { maxBytes: 4 * 1024 })).rejects.toBeInstanceOf(StreamLimitError);
    await expect(ensureTopology(bus.jsm, { maxBytes: 4 * 1024 })).rejects.toThrow(
      /below what stream SLUICE_OUTCOMES holds now/,
    );
    const after = (await bus.jsm.streams.info(STREAMS.outcomes.name)).state;
    expect(after.messages).toBe(before.messages);
    expect(after.first_seq).toBe(before.first_seq);
  });

  it('a publish into a full stream fails at once with StreamFullError, and goes in once there is room', async () => {
    const held = (await bus.jsm.streams.info(STREAMS.outcomes.name)).state.bytes;
    await ensureTopology(bus.jsm, { maxBytes: held + 100 });
    const refused = await publishReliably(bus, outcomeSubject('limits-full'), { filler: 'x'.repeat(500) }).catch(
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(StreamFullError);
    expect((refused as Error).message).toMatch(/is full \(maximum bytes exceeded\): raise SLUICE_STREAM_MAX_BYTES/);
    await ensureTopology(bus.jsm, { maxBytes: 2 ** 20 });
    await publishReliably(bus, outcomeSubject('limits-full'), { filler: 'x'.repeat(500) });
  });
});
