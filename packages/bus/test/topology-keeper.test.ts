import { rm } from 'node:fs/promises';

import { STREAMS } from '@sluice/contracts';
import { createLogger } from '@sluice/telemetry';
import { type NatsServerHandle, startNatsServer } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Bus, connectBus } from '../src/bus.js';
import {
  asTopologyMissing,
  startTopologyKeeper,
  type TopologyKeeper,
  TopologyMissingError,
  type TopologyRecovery,
  topologyStreamNames,
} from '../src/topology-keeper.js';

const logger = createLogger({ service: 'topology-keeper-test', level: 'silent' });
const DAY_NS = 24 * 3600 * 1e9;

async function streamNames(bus: Bus): Promise<string[]> {
  const names: string[] = [];
  for await (const info of bus.jsm.streams.list()) names.push(info.config.name);
  return names.sort();
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await Promise.resolve(probe()).catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('asTopologyMissing: the errors that say a stream or consumer is gone', () => {
  it('types what the server and the client say, and nothing else', () => {
    expect(asTopologyMissing(new Error('stream not found'))?.resource).toBe('stream');
    expect(asTopologyMissing(new Error('consumer not found'))?.resource).toBe('consumer');
    expect(asTopologyMissing(new Error('503 no responders'))).toBeInstanceOf(TopologyMissingError);
    expect(asTopologyMissing(new Error('consumer deleted'))?.transient).toBe(true);
    expect(asTopologyMissing(new Error('maximum bytes exceeded'))).toBeUndefined();
    expect(asTopologyMissing('stream not found')).toBeUndefined();
  });
});

describe('topology keeper against a real nats-server whose store is deleted', () => {
  let nats: NatsServerHandle;
  let planner: Bus;
  let executor: Bus;
  let plannerKeeper: TopologyKeeper;
  let executorKeeper: TopologyKeeper;
  const plannerRecoveries: TopologyRecovery[] = [];
  const executorRecoveries: TopologyRecovery[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    planner = await connectBus({ servers: nats.url, name: 'keeper-planner' }, logger);
    executor = await connectBus({ servers: nats.url, name: 'keeper-executor' }, logger);
  });
  afterAll(async () => {
    await plannerKeeper?.stop();
    await executorKeeper?.stop();
    await planner?.close();
    await executor?.close();
    await nats?.dispose();
  });

  it('creates every stream and bucket at start', async () => {
    // The planner states limits and checks often; the executor only creates, and looks only when told.
    plannerKeeper = await startTopologyKeeper(planner, {
      logger,
      intervalMs: 200,
      retentionMs: 2 * 24 * 3600 * 1000,
      maxBytes: 64 * 2 ** 20,
    });
    plannerKeeper.onRecovered((r) => {
      plannerRecoveries.push(r);
      return Promise.resolve();
    });
    executorKeeper = await startTopologyKeeper(executor, { logger, intervalMs: 0 });
    executorKeeper.onRecovered((r) => {
      executorRecoveries.push(r);
      return Promise.resolve(['executor step']);
    });
    expect(await streamNames(planner)).toEqual([...topologyStreamNames()].sort());
    expect(await plannerKeeper.check()).toBeUndefined();
  });

  it('after the server comes back with an empty store, each service re-creates what it needs by itself and says runs were lost', async () => {
    await nats.stop();
    await rm(nats.storeDir, { recursive: true, force: true });
    await nats.restart();
    // Nothing tells them but the reconnect (and the planner's interval): both heal, racing.
    const [p, e] = await Promise.all([
      waitFor('the planner to recover', () => plannerRecoveries[0]),
      waitFor('the executor to recover', () => executorRecoveries[0]),
    ]);
    const all = [...topologyStreamNames()].sort();
    for (const r of [p, e]) {
      expect(r.runsLost).toBe(true);
      expect([...r.created, ...r.replaced].sort()).toEqual(all);
    }
    // Every stream was created once, by one of them.
    expect([...p.created, ...e.created].sort()).toEqual(all);
    expect(await streamNames(planner)).toEqual(all);
    // With the planner's limits, whoever created the stream.
    await expect
      .poll(async () => (await planner.jsm.streams.info(STREAMS.outcomes.name)).config, { timeout: 10_000 })
      .toMatchObject({ max_age: 2 * DAY_NS, max_bytes: 64 * 2 ** 20 });
    expect(plannerKeeper.recoveries).toBe(1);
    expect(executorKeeper.recoveries).toBe(1);
  });

  it('a missing-resource error comes back typed and makes the keeper look; nothing new, nothing logged', async () => {
    const typed = executorKeeper.suspect(new Error('consumer not found'), 'test pull');
    expect(typed).toBeInstanceOf(TopologyMissingError);
    expect(executorKeeper.suspect(new Error('maximum bytes exceeded'), 'test publish')).toBeUndefined();
    expect(await executorKeeper.check()).toBeUndefined();
    expect(executorKeeper.recoveries).toBe(1);
  });

  it('one stream deleted by hand is re-created; a lost bucket alone loses no run', async () => {
    const seen = plannerRecoveries.length;
    await planner.jsm.streams.delete('KV_sluice_fleet');
    const recovery = await waitFor('the planner to recover again', () => plannerRecoveries[seen]);
    expect(recovery).toMatchObject({ created: ['KV_sluice_fleet'], replaced: [], runsLost: false });
    await executor.jsm.streams.delete(STREAMS.tasks.name);
    const again = await waitFor('the planner to recover a third time', () => plannerRecoveries[seen + 1]);
    expect(again).toMatchObject({ created: [STREAMS.tasks.name], runsLost: true });
  });
});
