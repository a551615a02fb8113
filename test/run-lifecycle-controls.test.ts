import { plannedTasksOf, type RunCompletedEvent } from '@sluice/contracts';
import { countOutcomes, waitForCompleted } from '@sluice/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { type LifecycleHarness, lifecycleHarness, type ReporterProcess } from './run-lifecycle-support.js';

describe('run lifecycle: pause, resume, cancel and staged rollout with real services', () => {
  let h: LifecycleHarness;

  beforeAll(async () => {
    h = await lifecycleHarness();
  });
  afterEach(async () => {
    // A test that held tenants and failed does not leave the next one waiting.
    await h.openGate();
    await h.stopServices();
  });
  afterAll(async () => {
    await h?.dispose();
  });

  async function startAll(registry: string, concurrency = 2): Promise<ReporterProcess> {
    const env = h.env(registry);
    const reporter = await h.startReporter(env);
    await h.start('executor', { ...env, SLUICE_CONCURRENCY: String(concurrency) });
    await h.start('planner', env);
    return reporter;
  }

  const activeMigrations = () => h.activeMigrations();

  it('pause: running tenants finish, no new tenant starts, nothing counts as an attempt; resume: the run completes', async () => {
    const { registry, fleet } = await h.fleet('pause', 40);
    const reporter = await startAll(registry);
    // Tenants are held mid-migration until the pause is in force: the run cannot end before it.
    await h.closeGate();
    expect(await h.http(reporter, 'POST', '/runs', { runId: 'pause-1', target: 'latest' })).toMatchObject({
      status: 202,
    });
    await expect.poll(activeMigrations, { timeout: 30_000, interval: 50 }).toBeGreaterThan(0);
    expect(
      await h.http(reporter, 'POST', '/runs/pause-1/pause', { reason: 'database maintenance', requestedBy: 'e2e' }),
    ).toMatchObject({ status: 202 });
    await expect.poll(async () => (await h.http(reporter, 'GET', '/runs/pause-1')).body.status).toBe('paused');
    await expect.poll(() => h.controlState('pause-1'), { timeout: 10_000 }).toBe('paused');
    await h.openGate();
    // In-flight tenants finish; every other task is parked as it is delivered: then nothing can move.
    await expect.poll(activeMigrations, { timeout: 30_000, interval: 100 }).toBe(0);
    await expect
      .poll(
        async () => {
          const body = (await h.http(reporter, 'GET', '/runs/pause-1')).body;
          return (body.parked as number) + (body.done as number);
        },
        { timeout: 30_000, interval: 100 },
      )
      .toBe(40);
    const atPause = await countOutcomes(h.nc, 'pause-1');
    expect(atPause).toBeGreaterThan(0);
    expect(atPause).toBeLessThan(40);
    expect(await activeMigrations()).toBe(0);
    const paused = (await h.http(reporter, 'GET', '/runs/pause-1')).body;
    expect(paused).toMatchObject({
      status: 'paused',
      etaMs: null,
      done: atPause,
      parked: 40 - atPause,
      control: { state: 'paused', note: { reason: 'database maintenance' } },
    });
    expect(await h.http(reporter, 'POST', '/runs/pause-1/pause')).toMatchObject({ status: 409 });
    // Subscribers learn of the pause from a progress event (published on the reporter's next tick).
    const progressStatuses = async () =>
      (await h.events<{ status: string }>('pause-1', 'progress')).map((p) => p.data.status);
    await expect.poll(progressStatuses, { timeout: 30_000, interval: 200 }).toContain('paused');

    expect(await h.http(reporter, 'POST', '/runs/pause-1/resume')).toMatchObject({ status: 202 });
    const completed = await waitForCompleted(h.nc, 'pause-1', 60_000);
    expect(completed).toMatchObject({ status: 'succeeded', counts: { total: 40, migrated: 40 } });
    // Parking acknowledged the tasks and the reporter published them again: every tenant was attempted once.
    const outcomes = await h.outcomes('pause-1');
    expect(outcomes).toHaveLength(40);
    expect(outcomes.every((o) => o.attempts === 1)).toBe(true);
    const ledger = await h.ledger('pause-1');
    const parked = ledger.filter((e) => e.kind === 'parked');
    console.log(
      `pause: ${atPause}/40 settled when paused; ${parked.length} tasks parked and published again on resume`,
    );
    expect(parked.length).toBeGreaterThan(0);
    expect(ledger.filter((e) => e.kind === 'republished' && e.cause === 'parked')).toHaveLength(parked.length);
    expect(await h.journalled(fleet)).toHaveLength(40);
    expect(await h.http(reporter, 'POST', '/runs/pause-1/resume')).toMatchObject({
      status: 409,
      body: { error: 'run pause-1 has already completed (succeeded)' },
    });
  });

  it('cancel: the remaining tenants are skipped and the run ends cancelled', async () => {
    const { registry, fleet } = await h.fleet('cancel', 40);
    const reporter = await startAll(registry);
    await h.publishRequest({ runId: 'cancel-1', target: 'latest' });
    await expect
      .poll(() => countOutcomes(h.nc, 'cancel-1'), { timeout: 30_000, interval: 50 })
      .toBeGreaterThanOrEqual(4);
    expect(await h.http(reporter, 'POST', '/runs/cancel-1/cancel', { reason: 'wrong release' })).toMatchObject({
      status: 202,
    });
    const completed = await waitForCompleted(h.nc, 'cancel-1', 60_000);
    expect(completed.status).toBe('cancelled');
    expect(completed.stoppedBy).toMatchObject({ action: 'cancel', reason: 'wrong release' });
    const { migrated, skipped, failed, total } = completed.counts;
    console.log(`cancel: ${migrated} migrated, ${skipped} skipped of ${total}`);
    expect(failed).toBe(0);
    expect(migrated + skipped).toBe(40);
    expect(skipped).toBeGreaterThan(0);
    const outcomes = await h.outcomes('cancel-1');
    expect(outcomes.filter((o) => o.status === 'skipped').every((o) => o.error?.code === 'cancelled')).toBe(true);
    // Skipped tenants were never touched.
    expect(await h.journalled(fleet)).toHaveLength(migrated);
    expect((await h.http(reporter, 'GET', '/runs/cancel-1/tenants?status=skipped')).body.count).toBe(skipped);
  });

  it('staged rollout: canaries first, then the fleet once they all succeeded', async () => {
    const { registry } = await h.fleet('canary', 20);
    const reporter = await startAll(registry, 4);
    await h.publishRequest({ runId: 'canary-ok', target: 'latest', rollout: { canary: 3 } });
    const completed = await waitForCompleted(h.nc, 'canary-ok', 60_000);
    expect(completed).toMatchObject({ status: 'succeeded', counts: { total: 20, migrated: 20 } });
    const planned = (await h.ledger('canary-ok')).flatMap(plannedTasksOf);
    const canaries = new Set(planned.filter((e) => e.task.stage === 'canary').map((e) => e.task.tenantId));
    expect(canaries).toEqual(new Set(['canary-0001', 'canary-0002', 'canary-0003']));
    const outcomes = await h.outcomes('canary-ok');
    const lastCanary = Math.max(
      ...outcomes.filter((o) => canaries.has(o.tenantId)).map((o) => Date.parse(o.finishedAt)),
    );
    const fleetStarts = outcomes
      .filter((o) => !canaries.has(o.tenantId))
      .map((o) => Date.parse(o.finishedAt) - (o.timings?.totalMs ?? 0));
    expect(Math.min(...fleetStarts)).toBeGreaterThanOrEqual(lastCanary - 5);
    const controls = await h.events<{ action: string; requestedBy: string }>('canary-ok', 'control');
    expect(controls.map((c) => c.data.action)).toEqual(['promote']);
    const parkedForCanaries = (await h.ledger('canary-ok')).filter(
      (e) => e.kind === 'parked' && e.reason === 'canary',
    ).length;
    console.log(
      `canary success: ${parkedForCanaries} fleet tasks parked until the 3 canaries succeeded, then published again`,
    );
    expect((await h.http(reporter, 'GET', '/runs/canary-ok')).body).toMatchObject({
      status: 'succeeded',
      stage: 'fleet',
      rollout: { canary: 3 },
    });
  });

  it('staged rollout: a failed canary stops the fleet; the rest is skipped and the run fails', async () => {
    const { registry, fleet, broken } = await h.fleet('canfail', 15, { broken: 1 });
    await startAll(registry, 4);
    await h.publishRequest({ runId: 'canary-bad', target: 'latest', rollout: { canary: 2 } });
    const completed: RunCompletedEvent = await waitForCompleted(h.nc, 'canary-bad', 60_000);
    console.log(`canary failure: ${JSON.stringify(completed.counts)}; ${completed.error}`);
    expect(completed.status).toBe('failed');
    expect(completed.error).toMatch(new RegExp(`canary ${broken[0]} failed \\[database_error\\]`));
    expect(completed.stoppedBy).toMatchObject({ action: 'stop', requestedBy: 'sluice-reporter (rollout)' });
    expect(completed.counts).toMatchObject({ total: 16, failed: 1 });
    expect(completed.counts.migrated).toBeLessThanOrEqual(1);
    expect(completed.counts.skipped).toBeGreaterThanOrEqual(14);
    const outcomes = await h.outcomes('canary-bad');
    expect(outcomes.filter((o) => o.status === 'skipped').every((o) => o.error?.code === 'rollout_stopped')).toBe(true);
    // No fleet tenant was touched: at most the other canary has a journal.
    expect((await h.journalled(fleet)).filter((t) => t !== 'canfail-0001')).toEqual([]);
  });

  it('maxFailureRate: a run whose failures pass the rate is stopped, the rest skipped', async () => {
    const { registry } = await h.fleet('rate', 30, { broken: 6, brokenEvery: 3 });
    await startAll(registry, 2);
    await h.publishRequest({ runId: 'rate-1', target: 'latest', rollout: { maxFailureRate: 0.1 } });
    const completed = await waitForCompleted(h.nc, 'rate-1', 60_000);
    console.log(`maxFailureRate 0.1: ${JSON.stringify(completed.counts)}; ${completed.error}`);
    expect(completed.status).toBe('failed');
    expect(completed.error).toMatch(/more than maxFailureRate 0\.1/);
    expect(completed.counts.failed).toBeGreaterThanOrEqual(2);
    expect(completed.counts.skipped).toBeGreaterThan(0);
    expect(completed.counts.migrated + completed.counts.failed + completed.counts.skipped).toBe(36);
  });
});
