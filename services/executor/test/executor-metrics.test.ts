import { EventEmitter } from 'node:events';

import { LockTimeoutError, TargetError } from '@sluice/core';
import { createMetricsRegistry } from '@sluice/telemetry';
import { PromScrape, scrapeMetrics } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadExecutorConfig } from '../src/config.js';
import type { DeliveryEvents, DeliveryResult } from '../src/delivery.js';
import { registerExecutorMetrics } from '../src/executor-metrics.js';
import { startExecutorService } from '../src/executor-service.js';
import { type ExecutorFixture, logger, startExecutorFixture } from './support.js';

const HOST = 'db1:5432';

describe('executor metrics', () => {
  it('counts results, errors by class, database time by phase and open connections per host, from delivery events', async () => {
    const registry = createMetricsRegistry('executor');
    const deliveries = new EventEmitter<DeliveryEvents>();
    registerExecutorMetrics(registry, { scheduler: { snapshot: () => [], inFlight: 0 }, slots: 6, deliveries });
    const done: DeliveryResult = {
      settled: 'done',
      durationMs: 120,
      outcome: {
        runId: 'r1',
        tenantId: 't1',
        status: 'migrated',
        applied: [1],
        attempts: 1,
        finishedAt: new Date().toISOString(),
        timings: { connectMs: 4, journalMs: 2, executeMs: 100, totalMs: 120 },
      },
    };
    deliveries.emit('settled', HOST, done);
    deliveries.emit('settled', HOST, {
      settled: 'retry',
      durationMs: 30,
      error: new LockTimeoutError('lock', '55P03'),
    });
    deliveries.emit('settled', HOST, { settled: 'done', durationMs: 10, error: new TargetError('no such version') });
    deliveries.emit('settled', 'db2:5432', { settled: 'done', durationMs: 10, error: new Error('boom') });

    // A tenant's work holds a connection to its host from workStarted to workEnded.
    deliveries.emit('workStarted', HOST);
    const during = new PromScrape(await registry.metrics());
    deliveries.emit('workEnded', HOST);
    const after = new PromScrape(await registry.metrics());

    expect(during.value('sluice_executor_db_connections', { host: HOST })).toBe(1);
    expect(after.value('sluice_executor_db_connections', { host: HOST })).toBe(0);
    expect(after.value('sluice_executor_slots')).toBe(6);
    expect(after.value('sluice_executor_slots_busy')).toBe(0);
    expect(after.value('sluice_executor_tasks_total', { result: 'done' })).toBe(3);
    expect(after.value('sluice_executor_tasks_total', { result: 'retry', code: 'lock_timeout' })).toBe(1);
    expect(after.value('sluice_executor_task_duration_seconds_count', { result: 'done' })).toBe(3);
    expect(after.value('sluice_executor_errors_total', { host: HOST, class: 'transient', code: 'lock_timeout' })).toBe(
      1,
    );
    expect(
      after.value('sluice_executor_errors_total', { host: HOST, class: 'permanent', code: 'invalid_target' }),
    ).toBe(1);
    expect(
      after.value('sluice_executor_errors_total', { host: 'db2:5432', class: 'permanent', code: 'internal' }),
    ).toBe(1);
    expect(after.value('sluice_executor_errors_total')).toBe(3);
    for (const [phase, seconds] of [
      ['connect', 0.004],
      ['journal', 0.002],
      ['execute', 0.1],
    ] as const) {
      expect(after.value('sluice_executor_db_seconds_count', { host: HOST, phase })).toBe(1);
      expect(after.value('sluice_executor_db_seconds_sum', { host: HOST, phase })).toBeCloseTo(seconds, 6);
    }
    // Only settled tenants with timings are timed.
    expect(after.value('sluice_executor_db_seconds_count', { host: 'db2:5432' })).toBeUndefined();
  });

  describe('served by the executor service', () => {
    let fixture: ExecutorFixture;

    beforeAll(async () => {
      fixture = await startExecutorFixture('sluice-exec-metrics-');
    }, 30_000);
    afterAll(() => fixture?.dispose());

    it('serves /metrics in the Prometheus text format on a free port', async () => {
      const config = loadExecutorConfig({
        NATS_URL: fixture.nats.url,
        SLUICE_MIGRATIONS_DIR: fixture.dir,
        SLUICE_CONCURRENCY: '5',
        SLUICE_METRICS_PORT: '0',
      });
      const service = await startExecutorService(config, logger);
      try {
        const page = await scrapeMetrics(`http://127.0.0.1:${service.metricsPort}/metrics`);
        expect(page.value('sluice_executor_slots', { service: 'executor' })).toBe(5);
        expect(page.value('sluice_executor_slots_busy')).toBe(0);
        expect(page.families.get('sluice_executor_db_seconds')?.type).toBe('histogram');
        expect(page.families.get('sluice_executor_errors_total')?.type).toBe('counter');
        expect(page.families.get('sluice_executor_db_connections')?.type).toBe('gauge');
        expect(page.value('sluice_process_cpu_seconds_total')).toBeGreaterThan(0);
      } finally {
        await service.stop();
      }
    });
  });
});
