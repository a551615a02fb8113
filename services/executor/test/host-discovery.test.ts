import { connectBus, ensureHostConsumer, ensureTopology } from '@sluice/bus';
import { hostConsumerName, runEventSubject, STREAMS, taskSubject, type TenantTask } from '@sluice/contracts';
import { loadMigrationDir } from '@sluice/migrator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadExecutorConfig } from '../src/config.js';
import { startExecutorService } from '../src/executor-service.js';
import { startHostScheduler } from '../src/host-scheduler.js';
import type { TenantWork } from '../src/tenant-work.js';
import {
  type ExecutorFixture,
  logger,
  startExecutorFixture,
  startTaskBus,
  type TaskBusFixture,
  upToDate,
} from './support.js';

const HOST = 'db-wake:5432';

describe('host discovery', () => {
  let fixture: ExecutorFixture;
  beforeAll(async () => {
    fixture = await startExecutorFixture('sluice-exec-wake-');
  }, 30_000);
  afterAll(() => fixture?.dispose());

  it("starts a run's first tasks when the run is accepted, not at the next listing of host queues", async () => {
    const { nats, dir } = fixture;
    const set = await loadMigrationDir(dir);
    let started!: (task: TenantTask) => void;
    const firstTask = new Promise<TenantTask>((resolve) => (started = resolve));
    // Our own port: the tenant's work, so the test needs no database.
    const tenantWork: TenantWork = (task) => {
      started(task);
      return upToDate();
    };
    // Listing every ten minutes: only the wake-up can start the task within the test's time.
    const config = loadExecutorConfig({
      NATS_URL: nats.url,
      SLUICE_MIGRATIONS_DIR: dir,
      SLUICE_DISCOVERY_INTERVAL: '10m',
      SLUICE_METRICS_PORT: '0',
    });
    const service = await startExecutorService(config, logger, { tenantWork });
    const bus = await connectBus({ servers: nats.url, name: 'wake-test' }, logger);
    try {
      await ensureTopology(bus.jsm);
      // The executor's first listing (at start) found no host: the queue is created after it.
      await ensureHostConsumer(bus.jsm, HOST, 4, 30_000, 5);
      const task: TenantTask = {
        runId: 'r-wake',
        tenantId: 't1',
        databaseUrl: 'postgres://app@db-wake:5432/t1',
        host: HOST,
        target: 1,
        digest: set.digest,
        dryRun: false,
        plannedAt: new Date().toISOString(),
      };
      await bus.publish(taskSubject(HOST), task, { msgId: 'r-wake:t1' });
      await bus.publish(runEventSubject('r-wake', 'accepted'), { runId: 'r-wake' });
      expect((await firstTask).tenantId).toBe('t1');
    } finally {
      await bus.close();
      await service.stop();
    }
  }, 60_000);
});

describe('host discovery over many hosts', () => {
  let fixture: TaskBusFixture;
  beforeAll(async () => {
    fixture = await startTaskBus('discovery-test');
  }, 30_000);
  afterAll(() => fixture?.dispose());

  it('costs idle hosts nothing between full listings, and reads only the consumer of a host given tasks', async () => {
    const { bus } = fixture;
    // A second connection sees the JetStream API requests the scheduler makes (the server answers them too).
    const spy = await connectBus({ servers: fixture.nats.url, name: 'discovery-spy' }, logger);
    const requests = { lists: 0, infos: [] as string[], streamInfos: 0 };
    spy.nc.subscribe(`$JS.API.CONSUMER.LIST.${STREAMS.tasks.name}`, {
      callback: () => {
        requests.lists += 1;
      },
    });
    spy.nc.subscribe(`$JS.API.CONSUMER.INFO.${STREAMS.tasks.name}.*`, {
      callback: (_e, m) => {
        requests.infos.push(m.subject.split('.').pop()!);
      },
    });
    spy.nc.subscribe(`$JS.API.STREAM.INFO.${STREAMS.tasks.name}`, {
      callback: () => {
        requests.streamInfos += 1;
      },
    });
    await spy.nc.flush();
    const hosts = Array.from({ length: 40 }, (_, i) => `db-idle-${i}:5432`);
    for (const host of hosts) await ensureHostConsumer(bus.jsm, host, 4, 30_000);
    await spy.nc.flush();
    requests.infos.length = 0; // ensureHostConsumer's own

    const handled: string[] = [];
    let handledOne!: () => void;
    const firstHandled = new Promise<void>((resolve) => (handledOne = resolve));
    const scheduler = startHostScheduler({
      bus,
      logger,
      breakers: { whenPassable: () => Promise.resolve(), state: () => 'closed' },
      handleTask: (msg) => {
        handled.push(msg.subject);
        msg.ack();
        handledOne();
        return Promise.resolve({ settled: 'dropped', durationMs: 0 });
      },
      concurrency: 8,
      discoveryIntervalMs: 20,
      fullListingIntervalMs: 600_000,
    });
    try {
      // The first round lists every consumer; the rounds after it ask the stream only.
      await until(() => requests.streamInfos >= 10);
      await spy.nc.flush();
      expect(requests.lists).toBe(1);
      expect(requests.infos).toEqual([]);
      // All forty hosts have lanes (from the first listing), none running.
      expect(scheduler.snapshot()).toHaveLength(40);

      const busy = hosts[7]!;
      await bus.publish(taskSubject(busy), { tenantId: 't1' }, { msgId: 'many:t1' });
      await firstHandled;
      await spy.nc.flush();
      expect(handled).toEqual([taskSubject(busy)]);
      // Found by a stream round (no new listing), which read that host's consumer alone.
      expect(requests.lists).toBe(1);
      expect(new Set(requests.infos)).toEqual(new Set([hostConsumerName(busy)]));
    } finally {
      await scheduler.stop(1_000);
      await spy.close();
    }
  }, 60_000);
});

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
}
