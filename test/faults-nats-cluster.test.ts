import type { NatsConnection } from '@nats-io/transport-node';
import { requestMsgId, STREAMS } from '@sluice/contracts';
import { countOutcomes, type NatsClusterHandle, waitForCompleted } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  type FaultStack,
  faultStack,
  journalProblems,
  markTenants,
  outcomeCopies,
  subjectCount,
} from './faults-support.js';

const TENANTS = 200;

/** The test's own reads may time out while the cluster elects new leaders: count that as "not yet" and ask again. */
const outcomesSoFar = (nc: NatsConnection, runId: string): Promise<number> => countOutcomes(nc, runId).catch(() => -1);

describe('a three-node NATS cluster loses a node in the middle of a run', () => {
  let stack: FaultStack<NatsClusterHandle>;

  beforeAll(async () => {
    stack = await faultStack<NatsClusterHandle>('fx-cluster', TENANTS, { clusterSize: 3 });
    await markTenants(stack.fleet, 'all', { slowSeconds: 0.05 });
  });

  // Stopping four services against the cluster and dropping 200 databases outlasts the default hook timeout on a busy machine.
  afterAll(() => stack?.dispose(), 300_000);

  it('streams with 3 replicas: a node SIGKILLed and restarted mid-run, every tenant exactly once', async () => {
    const { nats: cluster, nc, jsm, ws, fleet } = stack;
    const env = stack.env({
      SLUICE_STREAM_REPLICAS: '3',
      SLUICE_DISCOVERY_INTERVAL: '200ms',
      SLUICE_HOST_LIMIT: '6',
      SLUICE_ACK_WAIT: '5s',
      SLUICE_RETRY_BASE: '300ms',
      SLUICE_RETRY_MAX: '2s',
      SLUICE_MAX_ATTEMPTS: '20',
      SLUICE_RECONCILE_AFTER: '10s',
      SLUICE_RECONCILE_INTERVAL: '2s',
    });
    const services = [
      await ws.start('reporter', env),
      await ws.start('executor', { ...env, SLUICE_EXECUTOR_ID: 'cl-x1', SLUICE_CONCURRENCY: '3' }),
      await ws.start('executor', { ...env, SLUICE_EXECUTOR_ID: 'cl-x2', SLUICE_CONCURRENCY: '3' }),
      await ws.start('planner', env),
    ];
    const pids = services.map((s) => s.pid);
    for (const name of [STREAMS.requests.name, STREAMS.tasks.name, STREAMS.outcomes.name, STREAMS.runs.name]) {
      expect((await jsm.streams.info(name)).config.num_replicas).toBe(3);
    }
    await stack.publishRequest({ runId: 'fx-cluster-1', target: 'latest' }, requestMsgId('fx-cluster-1'));
    await expect
      .poll(() => outcomesSoFar(nc, 'fx-cluster-1'), { timeout: 90_000, interval: 100 })
      .toBeGreaterThanOrEqual(50);

    // The node most services talk to is as good a victim as any; take the second one.
    const victim = cluster.nodes[1]!;
    const killedPid = victim.pid;
    const at = await countOutcomes(nc, 'fx-cluster-1');
    await victim.kill();
    console.log(`cluster: SIGKILLed ${victim.name} (pid ${killedPid}) at ${at}/${TENANTS} outcomes`);
    await expect
      .poll(() => outcomesSoFar(nc, 'fx-cluster-1'), { timeout: 60_000, interval: 100 })
      .toBeGreaterThanOrEqual(Math.min(TENANTS, at + 30));
    await victim.start();
    await cluster.waitReady();
    console.log(`cluster: ${victim.name} back (pid ${victim.pid})`);

    const completed = await waitForCompleted(nc, 'fx-cluster-1', 120_000);
    expect(completed).toMatchObject({
      status: 'succeeded',
      counts: { total: TENANTS, migrated: TENANTS, failed: 0, skipped: 0 },
    });
    expect(services.map((s) => s.pid)).toEqual(pids);
    expect(await outcomeCopies(nc, 'fx-cluster-1')).toEqual({ tenants: TENANTS, repeated: [] });
    expect(await subjectCount(jsm, STREAMS.runs.name, 'sluice.runs.fx-cluster-1.completed')).toBe(1);
    expect(await journalProblems(fleet, 'fx-cluster-1')).toEqual([]);
  });
});
