import { ensureHostConsumer } from '@sluice/bus';
import { outcomeSubject } from '@sluice/contracts';
import { scrapeMetrics } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ReporterService } from '../src/reporter-service.js';
import { HOST, type ReporterHarness, reporterHarness } from './support.js';

describe('reporter /metrics against a real nats-server', () => {
  let h: ReporterHarness;

  beforeAll(async () => {
    h = await reporterHarness();
  });
  afterAll(async () => {
    await h?.dispose();
  });

  const scrape = (r: ReporterService) => scrapeMetrics(`http://127.0.0.1:${r.httpPort}/metrics`);

  it('shows host queues, active runs and their rate, and counts outcomes once with their durations', async () => {
    await ensureHostConsumer(h.bus.jsm, HOST, 4, 30_000);
    const reporter = await h.startReporter({ SLUICE_QUEUE_SAMPLE_INTERVAL: '100ms' });
    const idle = await scrape(reporter);
    expect(idle.value('sluice_reporter_runs_active', { service: 'reporter' })).toBe(0);
    expect(idle.samples('sluice_run_tenants_per_second')).toEqual([]);

    await h.accept('m1');
    for (const t of ['t1', 't2', 't3']) await h.planTask('m1', t);
    await h.plan('m1', 3);
    await expect
      .poll(async () => (await scrape(reporter)).value('sluice_queue_pending', { host: HOST }), { timeout: 10_000 })
      .toBe(3);
    let page = await scrape(reporter);
    expect(page.value('sluice_queue_in_flight', { host: HOST })).toBe(0);
    expect(page.value('sluice_queue_limit', { host: HOST })).toBe(4);
    expect(page.value('sluice_reporter_runs_active')).toBe(1);
    expect(page.samples('sluice_run_tenants_per_second', { run_id: 'm1' })).toHaveLength(1);

    const outcome = (tenantId: string, totalMs: number) => ({
      runId: 'm1',
      tenantId,
      status: 'migrated',
      applied: [1, 2],
      attempts: 1,
      host: HOST,
      timings: { connectMs: 2, journalMs: 1, executeMs: totalMs - 3, totalMs },
      finishedAt: new Date().toISOString(),
    });
    await h.bus.publish(outcomeSubject('m1'), outcome('t1', 200), { msgId: 'm1:t1' });
    // A redelivered task's second outcome (another message id) is not counted again.
    await h.bus.publish(outcomeSubject('m1'), outcome('t1', 900), { msgId: 'm1:t1:again' });
    await expect
      .poll(async () => (await scrape(reporter)).value('sluice_run_tenants_per_second', { run_id: 'm1' }), {
        timeout: 10_000,
      })
      .toBeGreaterThan(0);
    await h.bus.publish(outcomeSubject('m1'), outcome('t2', 400), { msgId: 'm1:t2' });
    await h.settle('m1', 't3', 'failed', 'sql_error');

    await expect
      .poll(async () => (await h.http(reporter, 'GET', '/runs/m1')).body.status, { timeout: 10_000 })
      .toBe('partial');
    page = await scrape(reporter);
    expect(page.value('sluice_reporter_outcomes_total', { status: 'migrated' })).toBe(2);
    expect(page.value('sluice_reporter_outcomes_total', { status: 'failed' })).toBe(1);
    expect(page.value('sluice_reporter_tenant_duration_seconds_count', { status: 'migrated' })).toBe(2);
    expect(page.value('sluice_reporter_tenant_duration_seconds_sum', { status: 'migrated' })).toBeCloseTo(0.6, 6);
    // An outcome without timings (settled by the harness, as the planner does) is counted, not timed.
    expect(page.value('sluice_reporter_tenant_duration_seconds_count', { status: 'failed' })).toBeUndefined();
    // The run is over: its rate series is gone.
    expect(page.samples('sluice_run_tenants_per_second', { run_id: 'm1' })).toEqual([]);
    expect(page.value('sluice_reporter_runs_active')).toBe(0);
    // The queue still holds the three tasks (no executor here): the gauges keep telling.
    expect(page.value('sluice_queue_pending', { host: HOST })).toBe(3);
    expect(page.families.get('sluice_reporter_tenant_duration_seconds')?.type).toBe('histogram');
    // The JSON API is unchanged next to /metrics.
    expect((await h.http(reporter, 'GET', '/healthz')).status).toBe(200);
  });
});
