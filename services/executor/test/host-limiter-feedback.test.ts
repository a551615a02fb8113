import type { TenantOutcome, TenantTask } from '@sluice/contracts';
import { AimdLimiter, createMigrationSet } from '@sluice/core';
import { loadSqlParser } from '@sluice/sql-parser';
import { createTenantFleet, type TenantFleet } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { DeliveryResult } from '../src/delivery.js';
import { feedHostLimiter } from '../src/host-scheduler.js';
import { ActivitySchedule, postgresTenantWork } from '../src/tenant-work.js';

const parser = await loadSqlParser();

const files = [
  { file: '0001_t.sql', sql: 'CREATE TABLE t (id int);' },
  // A slow file: the host is not overloaded, the migration is just long.
  { file: '0002_slow.sql', sql: 'CREATE TABLE slow (id int);\nSELECT pg_sleep(0.3);' },
];
const set = createMigrationSet(files, parser);
const work = postgresTenantWork({
  executorId: 'limiter-test',
  lockTimeoutMs: 5_000,
  statementTimeoutMs: 30_000,
  connectTimeoutMs: 5_000,
});

let fleet: TenantFleet;
beforeAll(async () => {
  fleet = await createTenantFleet({ count: 6 });
});
afterAll(() => fleet?.drop());

/** Migrates one real tenant to `target` and returns what the delivery would report. */
async function deliver(index: number, target: number): Promise<DeliveryResult> {
  const tenant = fleet.tenants[index]!;
  const task = {
    runId: 'limiter-run',
    tenantId: tenant.tenantId,
    databaseUrl: tenant.databaseUrl,
    host: '127.0.0.1:5432',
    target,
  } as TenantTask;
  const started = performance.now();
  const { report, connectMs } = await work(task, set);
  const totalMs = performance.now() - started;
  return {
    settled: 'done',
    durationMs: totalMs,
    outcome: { status: report.status, timings: { connectMs, ...report.timings, totalMs } } as TenantOutcome,
  };
}

describe("a host's limit under slow migration files", () => {
  it('holds at the host limit: latency is judged on the journal read, not on how long the files took', async () => {
    const results: DeliveryResult[] = [];
    // Quick tasks first (the limiter learns the host's pace), then every tenant runs the slow file.
    for (let i = 0; i < fleet.tenants.length; i++) results.push(await deliver(i, 1));
    for (let i = 0; i < fleet.tenants.length; i++) results.push(await deliver(i, 2));
    const slow = results.slice(fleet.tenants.length);
    expect(Math.min(...slow.map((r) => r.durationMs))).toBeGreaterThanOrEqual(300);

    const limiter = new AimdLimiter({ initial: 4, max: 4, cooldownMs: 0 });
    results.forEach((r, i) => feedHostLimiter(limiter, r, i));
    expect(limiter.limit).toBe(4);
    expect(limiter.cuts).toBe(0);
  });
});

describe("a host's limit under its signals", () => {
  it('the work reports its round trips and, once per interval per host, the host activity it sampled', async () => {
    const schedule = new ActivitySchedule(60_000);
    const withSignals = postgresTenantWork(
      { executorId: 'signals-test', lockTimeoutMs: 5_000, statementTimeoutMs: 30_000, connectTimeoutMs: 5_000 },
      undefined,
      { activity: schedule },
    );
    const tenant = fleet.tenants[0]!;
    const task = {
      runId: 'signals-run',
      tenantId: tenant.tenantId,
      databaseUrl: tenant.databaseUrl,
      host: '127.0.0.1:5432',
      target: 2,
    } as TenantTask;
    const first = await withSignals(task, set);
    const second = await withSignals(task, set);
    // The journal read is one round trip; an up-to-date tenant makes no other.
    expect(first.signals?.roundTrips).toBeGreaterThanOrEqual(1);
    expect(second.signals).toEqual({ roundTrips: 1 });
    expect(first.signals?.hostActivity ?? first.signals?.hostActivityUnavailable).toBeDefined();
  });

  it('cuts on replay lag above the setting, and only then', () => {
    const lagged = (replayLagMs: number): DeliveryResult => ({
      settled: 'done',
      durationMs: 10,
      outcome: {
        status: 'migrated',
        timings: { journalMs: 1 },
        signals: {
          hostActivity: { active: 1, onCpu: 1, lock: 0, lwlock: 0, io: 0, client: 0, hidden: 0, replayLagMs },
        },
      } as TenantOutcome,
    });
    const limiter = new AimdLimiter({ initial: 8, max: 8, cooldownMs: 0 });
    feedHostLimiter(limiter, lagged(5_000), 1, 30_000);
    expect(limiter.cuts).toBe(0);
    feedHostLimiter(limiter, lagged(45_000), 2, 30_000);
    expect(limiter.lastSignal).toBe('replay_lag');
    expect(limiter.limit).toBe(4);
    // 0 turns the check off.
    feedHostLimiter(limiter, lagged(45_000), 3, 0);
    expect(limiter.cuts).toBe(1);
  });
});
