import { jetstream } from '@nats-io/jetstream';
import { REQUEST_SUBJECT, STREAMS } from '@sluice/contracts';
import { waitForCompleted } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  type FaultStack,
  faultStack,
  journalProblems,
  markTenants,
  outcomeCopies,
  subjectCount,
} from './faults-support.js';

const TENANTS = 60;

describe('duplicates: a request published three times and tasks delivered twice are one run, each version applied once', () => {
  let stack: FaultStack;

  beforeAll(async () => {
    stack = await faultStack('fx-dup', TENANTS);
  });

  afterAll(() => stack?.dispose());

  it('the same request three times (with and without a message id, at once): one run, one outcome per tenant', async () => {
    const { nc, jsm, ws, fleet } = stack;
    // The ack wait (set by the planner on the host consumer) is shorter than the slow tenants'
    // migration, and the executors' in-progress heartbeats come too late (every 10 s), so those
    // tasks really are redelivered by JetStream while their first delivery is still at work.
    const env = stack.env({
      SLUICE_DISCOVERY_INTERVAL: '200ms',
      SLUICE_RETRY_BASE: '300ms',
      SLUICE_RETRY_MAX: '1s',
      SLUICE_MAX_ATTEMPTS: '30',
      SLUICE_HOST_LIMIT: '6',
    });
    const slow = new Set(fleet.tenants.slice(0, 4).map((t) => t.tenantId));
    await markTenants(fleet, slow, { slowSeconds: 6 });
    await ws.start('reporter', env);
    // Debug logs: a second delivery is visible whether it met the lock or came after the first had settled.
    const executors = [
      await ws.start('executor', {
        ...env,
        LOG_LEVEL: 'debug',
        SLUICE_EXECUTOR_ID: 'dup-x1',
        SLUICE_ACK_WAIT: '30s',
        SLUICE_CONCURRENCY: '4',
      }),
      await ws.start('executor', {
        ...env,
        LOG_LEVEL: 'debug',
        SLUICE_EXECUTOR_ID: 'dup-x2',
        SLUICE_ACK_WAIT: '30s',
        SLUICE_CONCURRENCY: '4',
      }),
    ];
    await ws.start('planner', { ...env, SLUICE_ACK_WAIT: '1s', SLUICE_PLANNER_CONCURRENCY: '4' });

    const js = jetstream(nc);
    const request = JSON.stringify({ runId: 'fx-dup-1', target: 'latest' });
    // Three copies with the CLI's message id: the stream keeps one.
    const withId = await Promise.all(
      [1, 2, 3].map(() => js.publish(REQUEST_SUBJECT, request, { msgID: 'request:fx-dup-1' })),
    );
    expect(withId.filter((a) => a.duplicate)).toHaveLength(2);
    const first = await waitForCompleted(nc, 'fx-dup-1', 120_000);
    expect(first).toMatchObject({
      status: 'succeeded',
      counts: { total: TENANTS, migrated: TENANTS, failed: 0, skipped: 0 },
    });

    // Three copies without a message id, at once: the planner takes all three, concurrently.
    const other = JSON.stringify({
      runId: 'fx-dup-2',
      target: 'latest',
      tenants: { ids: fleet.tenants.slice(30).map((t) => t.tenantId) },
    });
    const noId = await Promise.all([1, 2, 3].map(() => js.publish(REQUEST_SUBJECT, other)));
    expect(noId.filter((a) => a.duplicate)).toHaveLength(0);
    const second = await waitForCompleted(nc, 'fx-dup-2', 120_000);
    expect(second).toMatchObject({
      status: 'succeeded',
      counts: { total: 30, upToDate: 30, migrated: 0, failed: 0, skipped: 0 },
    });
    for (const runId of ['fx-dup-1', 'fx-dup-2']) {
      expect(await subjectCount(jsm, STREAMS.runs.name, `sluice.runs.${runId}.accepted`)).toBe(1);
      expect(await subjectCount(jsm, STREAMS.runs.name, `sluice.runs.${runId}.planned`)).toBe(1);
      expect(await subjectCount(jsm, STREAMS.runs.name, `sluice.runs.${runId}.completed`)).toBe(1);
    }
    // One outcome per tenant in each run's stream (message ids absorb the second deliveries).
    for (const [runId, n] of [
      ['fx-dup-1', TENANTS],
      ['fx-dup-2', 30],
    ] as const) {
      expect(await outcomeCopies(nc, runId)).toEqual({ tenants: n, repeated: [] });
    }
    // The journal is the truth: every version exactly once per tenant, by the first run.
    expect(await journalProblems(fleet, 'fx-dup-1')).toEqual([]);

    // The slow tenants were really delivered twice (JetStream redelivery while the first was at work).
    // A second delivery met the first's lock and was put back, or came after it had settled and found
    // the run's versions in the journal (which the check above shows were applied once); any failure
    // other than the lock would be a defect.
    const slowLines = executors
      .flatMap((x) => x.logs)
      .filter((l) => typeof l.tenantId === 'string' && slow.has(l.tenantId) && l.runId === 'fx-dup-1');
    const redelivered = slowLines.filter((l) => (l.attempt as number) >= 2);
    console.log(
      `duplicates: ${redelivered.length} log lines of second (or later) deliveries of the ${slow.size} slow tenants; ${[...new Set(redelivered.map((l) => String(l.code ?? l.msg)))].join(', ')}`,
    );
    expect(new Set(redelivered.map((l) => l.tenantId)).size).toBeGreaterThanOrEqual(1);
    expect(slowLines.filter((l) => l.code !== undefined && l.code !== 'locked')).toEqual([]);
  });
});
