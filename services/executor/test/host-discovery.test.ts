import { connectBus, ensureHostConsumer, ensureTopology } from '@sluice/bus';
import { runEventSubject, taskSubject, type TenantTask } from '@sluice/contracts';
import { loadMigrationDir } from '@sluice/migrator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadExecutorConfig } from '../src/config.js';
import { startExecutorService } from '../src/executor-service.js';
import type { TenantWork } from '../src/tenant-work.js';
import { type ExecutorFixture, logger, startExecutorFixture, upToDate } from './support.js';

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
