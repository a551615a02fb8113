import { plannedTasksOf, STREAMS } from '@sluice/contracts';
import { countOutcomes, waitForCompleted } from '@sluice/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { type LifecycleHarness, lifecycleHarness, sleep } from './run-lifecycle-support.js';

describe('run lifecycle: state that survives restarts, exactly one completion, reconciliation', () => {
  let h: LifecycleHarness;

  beforeAll(async () => {
    h = await lifecycleHarness();
  });
  afterEach(async () => {
    await h.stopServices();
  });
  afterAll(async () => {
    await h?.dispose();
  });

  it('a reporter killed (SIGKILL) mid-run and started again reports exact counts and completes once', async () => {
    const { registry } = await h.fleet('kill', 40, { broken: 4 });
    const env = h.env(registry);
    const first = await h.startReporter(env);
    await h.start('executor', { ...env, SLUICE_CONCURRENCY: '2' });
    await h.start('planner', env);
    await h.publishRequest({ runId: 'kill-1', target: 'latest' });
    await expect
      .poll(() => countOutcomes(h.nc, 'kill-1'), { timeout: 30_000, interval: 50 })
      .toBeGreaterThanOrEqual(10);
    await first.proc.kill();
    // The run goes on without a reporter.
    await expect
      .poll(() => countOutcomes(h.nc, 'kill-1'), { timeout: 30_000, interval: 50 })
      .toBeGreaterThanOrEqual(25);
    const second = await h.startReporter(env);
    console.log(
      `reporter restart mid-run: ready in ${second.startup.ms} ms (process start to ready), replayed ${second.startup.outcomes} outcomes and ${second.startup.ledgerEntries} ledger entries of ${second.startup.unfinished} unfinished run(s)`,
    );
    expect(second.startup.unfinished).toBe(1);
    const completed = await waitForCompleted(h.nc, 'kill-1', 60_000);
    expect(completed).toMatchObject({
      status: 'partial',
      counts: { total: 44, migrated: 40, failed: 4, skipped: 0, upToDate: 0, pending: 0 },
    });
    expect(completed.failures.map((f) => f.code)).toEqual([
      'database_error',
      'database_error',
      'database_error',
      'database_error',
    ]);
    expect(await h.countCompleted('kill-1')).toBe(1);
    expect((await h.http(second, 'GET', '/runs/kill-1')).body).toMatchObject({
      status: 'partial',
      counts: completed.counts,
    });

    // Killed again after the run completed: the new reporter replays no outcomes and publishes nothing.
    await second.proc.kill();
    const third = await h.startReporter(env);
    expect(third.startup).toMatchObject({ unfinished: 0, outcomes: 0 });
    expect((await h.http(third, 'GET', '/runs/kill-1')).body).toMatchObject({
      status: 'partial',
      counts: completed.counts,
    });
    await sleep(1_500);
    expect(await h.countCompleted('kill-1')).toBe(1);
  });

  it('two reporter replicas publish completed once, and progress at most once a second between them', async () => {
    const { registry } = await h.fleet('twin', 60);
    const env = h.env(registry);
    const a = await h.startReporter(env);
    const b = await h.startReporter(env);
    await h.start('executor', { ...env, SLUICE_CONCURRENCY: '2' });
    await h.start('planner', env);
    await h.publishRequest({ runId: 'twin-1', target: 'latest' });
    const completed = await waitForCompleted(h.nc, 'twin-1', 60_000);
    expect(completed).toMatchObject({ status: 'succeeded', counts: { total: 60, migrated: 60 } });
    await sleep(1_000);
    expect(await h.countCompleted('twin-1')).toBe(1);
    for (const r of [a, b])
      expect((await h.http(r, 'GET', '/runs/twin-1')).body).toMatchObject({
        status: 'succeeded',
        counts: completed.counts,
      });
    const progress = await h.events<{ done: number; ratePerSec: number; etaMs: number | null }>('twin-1', 'progress');
    const gaps = progress.slice(1).map((p, i) => p.time - progress[i]!.time);
    const seconds = completed.durationMs / 1000;
    console.log(
      `two replicas, ${seconds.toFixed(1)} s run: ${progress.length} progress events (${(progress.length / seconds).toFixed(2)}/s), smallest gap ${Math.min(...gaps)} ms; ` +
        `samples: ${progress
          .slice(0, 4)
          .map((p) => `${p.data.done} done ${p.data.ratePerSec}/s eta ${p.data.etaMs ?? '?'} ms`)
          .join(' | ')}`,
    );
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(1_000);
    expect(progress.some((p) => p.data.etaMs !== null && p.data.ratePerSec > 0)).toBe(true);
  });

  it('a task deleted from the work queue is published again by reconciliation, and the run completes', async () => {
    const { registry, fleet } = await h.fleet('lost', 12);
    const env = h.env(registry, { SLUICE_RECONCILE_AFTER: '2s', SLUICE_RECONCILE_INTERVAL: '250ms' });
    const reporter = await h.startReporter(env);
    // No executor yet: the tasks wait in the queue, and one of them is deleted there.
    await h.start('planner', env);
    await h.publishRequest({ runId: 'lost-1', target: 'latest' });
    await expect.poll(async () => (await h.events('lost-1', 'planned')).length, { timeout: 20_000 }).toBe(1);
    // The planner writes its tasks to the ledger in batches: two tasks announced by one entry.
    const planned = (await h.ledger('lost-1')).flatMap(plannedTasksOf);
    expect(planned).toHaveLength(12);
    const victims = [planned[5]!, planned[6]!];
    for (const victim of victims)
      expect(await h.jsm.streams.deleteMessage(STREAMS.tasks.name, victim.taskSeq)).toBe(true);
    const deletedAt = Date.now();
    await h.start('executor', { ...env, SLUICE_CONCURRENCY: '4' });
    const completed = await waitForCompleted(h.nc, 'lost-1', 60_000);
    console.log(
      `deleted tasks ${victims.map((v) => v.task.tenantId).join(', ')}: run completed ${Date.now() - deletedAt} ms after the deletion (SLUICE_RECONCILE_AFTER=2s)`,
    );
    expect(completed).toMatchObject({ status: 'succeeded', counts: { total: 12, migrated: 12 } });
    const republished = (await h.ledger('lost-1')).filter((e) => e.kind === 'republished');
    expect(republished.map((e) => (e.kind === 'republished' ? `${e.tenantId}:${e.cause}` : '')).sort()).toEqual(
      victims.map((v) => `${v.task.tenantId}:lost`).sort(),
    );
    for (const victim of victims)
      expect(
        reporter.proc.logs.some(
          (l) => l.msg === 'task lost without an outcome; published again' && l.tenantId === victim.task.tenantId,
        ),
      ).toBe(true);
    expect((await h.journalled(fleet)).length).toBe(12);
  });
});
