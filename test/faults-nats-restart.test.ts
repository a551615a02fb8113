import { requestMsgId, STREAMS } from '@sluice/contracts';
import { countOutcomes, type ServiceProcess, waitForCompleted } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  type FaultStack,
  faultStack,
  journalProblems,
  markTenants,
  outcomeCopies,
  subjectCount,
} from './faults-support.js';

const TENANTS = 50;

describe('a NATS server restarted in the middle of a run', () => {
  let stack: FaultStack;

  beforeAll(async () => {
    stack = await faultStack('fx-restart', TENANTS);
    // Every tenant spends a moment in migration 2, so the run is still going when NATS goes away.
    await markTenants(stack.fleet, 'all', { slowSeconds: 0.25 });
  });

  afterAll(() => stack?.dispose());

  it('services reconnect by themselves (same processes), the run completes, nothing is lost or doubled', async () => {
    const { nats, nc, jsm, ws, fleet } = stack;
    // A short ack wait: a task whose ack was lost in the outage comes back in seconds, not 30.
    const env = stack.env({
      SLUICE_DISCOVERY_INTERVAL: '200ms',
      SLUICE_HOST_LIMIT: '4',
      SLUICE_RETRY_BASE: '300ms',
      SLUICE_RETRY_MAX: '2s',
      SLUICE_MAX_ATTEMPTS: '20',
      SLUICE_RECONCILE_AFTER: '5s',
      SLUICE_RECONCILE_INTERVAL: '1s',
      SLUICE_ACK_WAIT: '5s',
    });
    const services: ServiceProcess[] = [
      await ws.start('reporter', env),
      await ws.start('executor', { ...env, SLUICE_EXECUTOR_ID: 'rs-x1', SLUICE_CONCURRENCY: '2' }),
      await ws.start('executor', { ...env, SLUICE_EXECUTOR_ID: 'rs-x2', SLUICE_CONCURRENCY: '2' }),
      await ws.start('planner', env),
    ];
    const pids = services.map((s) => s.pid);
    await stack.publishRequest({ runId: 'fx-restart-1', target: 'latest' }, requestMsgId('fx-restart-1'));
    await expect
      .poll(() => countOutcomes(nc, 'fx-restart-1'), { timeout: 60_000, interval: 50 })
      .toBeGreaterThanOrEqual(10);

    const before = await countOutcomes(nc, 'fx-restart-1');
    const stoppedAt = Date.now();
    await nats.stop();
    // Every service notices before the server comes back.
    for (const s of services) await s.waitForLog((l) => l.nats === 'disconnect', 20_000);
    // An outage of a few seconds: pulls, publishes and watches fail meanwhile and must recover.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    await nats.restart();
    for (const s of services) await s.waitForLog((l) => l.nats === 'reconnect', 30_000);
    console.log(`nats restart: stopped with ${before}/${TENANTS} outcomes, back after ${Date.now() - stoppedAt} ms`);

    const completed = await waitForCompleted(nc, 'fx-restart-1', 120_000);
    if (process.env.FX_DEBUG)
      for (const s of services)
        console.log(
          s.name,
          s.output
            .filter((l) => !l.includes('"level":"info"') || l.includes('nats'))
            .map((l) => l.slice(0, 300))
            .join('\n'),
        );
    console.log(`nats restart: run completed ${Date.now() - stoppedAt} ms after the stop`);
    expect(completed).toMatchObject({
      status: 'succeeded',
      counts: { total: TENANTS, migrated: TENANTS, failed: 0, skipped: 0 },
    });
    expect(services.map((s) => s.pid)).toEqual(pids);
    for (const s of services) {
      expect(() => process.kill(s.pid, 0)).not.toThrow();
      expect(s.logs.filter((l) => l.level === 'fatal')).toEqual([]);
    }
    expect(await outcomeCopies(nc, 'fx-restart-1')).toEqual({ tenants: TENANTS, repeated: [] });
    expect(await subjectCount(jsm, STREAMS.runs.name, 'sluice.runs.fx-restart-1.completed')).toBe(1);
    expect(await journalProblems(fleet, 'fx-restart-1')).toEqual([]);

    // Still working after the restart: a second run goes through every service.
    await stack.publishRequest({ runId: 'fx-restart-2', target: 'latest', dryRun: true });
    expect((await waitForCompleted(nc, 'fx-restart-2', 60_000)).counts).toMatchObject({
      total: TENANTS,
      upToDate: TENANTS,
    });
  });
});
