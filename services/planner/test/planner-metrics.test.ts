import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { type Bus, connectBus } from '@sluice/bus';
import { REQUEST_SUBJECT } from '@sluice/contracts';
import { createLogger } from '@sluice/telemetry';
import { type NatsServerHandle, scrapeMetrics, startNatsServer } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadPlannerConfig } from '../src/config.js';
import { startPlannerService } from '../src/planner-service.js';

const logger = createLogger({ service: 'planner-test', level: 'silent' });

describe('planner /metrics', () => {
  let nats: NatsServerHandle;
  let bus: Bus;
  let dir: string;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: 'planner-metrics-test' }, logger);
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-planner-metrics-'));
    await writeFile(path.join(dir, '0001_a.sql'), 'SELECT 1;');
  }, 30_000);
  afterAll(async () => {
    await bus?.close();
    await nats?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('counts runs by result, tasks and registry rows, and times planning', async () => {
    const tenants = path.join(dir, 'tenants.json');
    await writeFile(
      tenants,
      JSON.stringify([
        { tenantId: 'a', databaseUrl: 'postgres://app@db1.internal:5432/a' },
        { tenantId: 'b', databaseUrl: 'postgres://app@db2.internal:5432/b' },
        { tenantId: 'c', databaseUrl: 'postgres://app@db1.internal:5432/c', status: 'suspended' },
        { tenantId: 'd', databaseUrl: 'not a url' },
        { databaseUrl: 'postgres://app@db1.internal:5432/e' },
      ]),
    );
    const config = loadPlannerConfig({
      NATS_URL: nats.url,
      SLUICE_MIGRATIONS_DIR: dir,
      SLUICE_REGISTRY: 'file',
      SLUICE_TENANTS_FILE: tenants,
      SLUICE_REGISTRY_RETRY: '300ms',
      SLUICE_METRICS_PORT: '0',
    });
    const planner = await startPlannerService(config, logger);
    const url = `http://127.0.0.1:${planner.metricsPort}/metrics`;
    try {
      const fresh = await scrapeMetrics(url);
      expect(fresh.value('sluice_planner_runs_total', { result: 'planned', service: 'planner' })).toBe(0);
      expect(fresh.value('sluice_planner_planning_duration_seconds_count')).toBe(0);

      await bus.publish(REQUEST_SUBJECT, { runId: 'm1', target: 'latest' }, { msgId: 'request:m1' });
      await bus.publish(REQUEST_SUBJECT, { runId: 'm2', target: 99 }, { msgId: 'request:m2' });
      await expect
        .poll(async () => (await scrapeMetrics(url)).value('sluice_planner_runs_total', { result: 'planned' }), {
          timeout: 15_000,
        })
        .toBe(1);
      await expect
        .poll(async () => (await scrapeMetrics(url)).value('sluice_planner_runs_total', { result: 'rejected' }), {
          timeout: 15_000,
        })
        .toBe(1);

      // The registry disappears: the next run fails once its retries run out.
      await rm(tenants);
      await bus.publish(REQUEST_SUBJECT, { runId: 'm3', target: 'latest' }, { msgId: 'request:m3' });
      await expect
        .poll(async () => (await scrapeMetrics(url)).value('sluice_planner_runs_total', { result: 'failed' }), {
          timeout: 15_000,
        })
        .toBe(1);

      const page = await scrapeMetrics(url);
      expect(page.value('sluice_planner_tasks_published_total')).toBe(2);
      expect(page.value('sluice_planner_registry_rows_total', { result: 'ok' })).toBe(2);
      expect(page.value('sluice_planner_registry_rows_total', { result: 'suspended' })).toBe(1);
      expect(page.value('sluice_planner_registry_rows_total', { result: 'invalid' })).toBe(2);
      // Planned and failed runs are timed; rejected requests never start planning.
      expect(page.value('sluice_planner_planning_duration_seconds_count')).toBe(2);
      expect(page.value('sluice_planner_planning_duration_seconds_sum')).toBeGreaterThan(0);
      expect(page.families.get('sluice_planner_planning_duration_seconds')?.type).toBe('histogram');
    } finally {
      await planner.stop();
    }
  });
});
