import type { RunCompletedEvent } from '@sluice/contracts';
import { describe, expect, it } from 'vitest';

import {
  formatCompleted,
  formatControl,
  formatDuration,
  formatProgress,
  formatTable,
  tenantRow,
} from '../src/output.js';

const completed: RunCompletedEvent = {
  runId: 'r1',
  status: 'partial',
  target: 'latest',
  targetVersion: 6,
  dryRun: false,
  counts: { total: 3, migrated: 1, upToDate: 1, pending: 0, failed: 1, skipped: 0 },
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:00:02.500Z',
  durationMs: 2500,
  failures: [{ tenantId: 't3', error: 'version 4: relation "x" does not exist', code: 'sql_error' }],
  failuresTruncated: false,
};

describe('CLI output', () => {
  it('formats durations for people', () => {
    expect(formatDuration(340)).toBe('340 ms');
    expect(formatDuration(2500)).toBe('2.5 s');
    expect(formatDuration(125_000)).toBe('2m05s');
  });

  it('prints a completed run with its failures', () => {
    const text = formatCompleted(completed).join('\n');
    expect(text).toContain('run r1: PARTIAL');
    expect(text).toContain('1 migrated, 1 up to date, 1 failed, 0 skipped (of 3)');
    expect(text).toContain('t3: [sql_error] version 4');
  });

  it('draws a bar on a terminal and a plain line elsewhere', () => {
    const p = {
      runId: 'r1',
      status: 'running' as const,
      counts: completed.counts,
      done: 2,
      ratePerSec: 4,
      etaMs: 250,
      at: '',
    };
    expect(formatProgress(p, true)).toMatch(/^\[#{20}-{10}\] {2}67%/);
    expect(formatProgress(p, false)).toBe('progress r1: 2/3 tenants  4.0/s  eta 250 ms  failed 1');
  });
});

describe('CLI output for run lifecycles', () => {
  const counts = { total: 10, migrated: 3, upToDate: 0, pending: 0, failed: 1, skipped: 2 };

  it('shows the state of a run that is not simply running, and canaries while they go', () => {
    const p = { runId: 'r2', status: 'paused' as const, counts, done: 6, ratePerSec: 0, etaMs: null, at: '' };
    expect(formatProgress(p, false)).toBe('progress r2: 6/10 tenants  0.0/s  eta ?  failed 1  skipped 2  [paused]');
    expect(formatProgress({ ...p, status: 'running', stage: 'canary', ratePerSec: 2, etaMs: 2000 }, true)).toMatch(
      /^\[#{18}-{12}\] {2}60% .*eta 2\.0 s .*\[canaries\]$/,
    );
  });

  it('says who stopped a run and why', () => {
    const text = formatCompleted({
      ...completed,
      status: 'cancelled',
      stoppedBy: { action: 'cancel', reason: 'wrong release', requestedBy: 'ops', at: '2026-01-01T00:00:01.000Z' },
    }).join('\n');
    expect(text).toContain('cancelled 2026-01-01T00:00:01.000Z by ops: wrong release');
    expect(formatControl({ runId: 'r1', action: 'pause', reason: 'maintenance', requestedBy: 'ops', at: '' })).toBe(
      'run r1 paused by ops: maintenance',
    );
    expect(formatControl({ runId: 'r1', action: 'promote', requestedBy: 'sluice-reporter (rollout)', at: '' })).toBe(
      'run r1 canaries succeeded; fleet promoted',
    );
  });

  it('lays out tables of tenants', () => {
    const rows = [
      tenantRow({
        runId: 'r',
        tenantId: 'tenant-1',
        status: 'failed',
        applied: [],
        attempts: 1,
        finishedAt: '',
        error: { code: 'sql_error', message: 'relation "x"\n does not exist', transient: false, version: 4 },
      }),
      tenantRow({ runId: 'r', tenantId: 't2', status: 'migrated', applied: [1, 2], attempts: 1, finishedAt: '' }),
    ];
    expect(formatTable(['TENANT', 'STATUS', 'CODE', 'DETAIL'], rows)).toEqual([
      'TENANT    STATUS    CODE       DETAIL',
      'tenant-1  failed    sql_error  version 4: relation "x" does not exist',
      't2        migrated             applied 1, 2',
    ]);
  });
});

describe('CLI output: where the time went', () => {
  const totals = {
    tenants: 4,
    queuedMs: 4_000,
    connectMs: 40,
    journalMs: 8,
    executeMs: 400,
    serverMs: 300,
    lockWaitMs: 0,
    unavailableMs: 0,
    retryDelayMs: 0,
    workMs: 448,
  };

  it('prints per-tenant averages, the slowest hosts and the bottleneck with its lever', () => {
    const text = formatCompleted({
      ...completed,
      traceId: '0af7651916cd43dd8448eb211c80319c',
      timings: {
        wallMs: 2_500,
        planningMs: 120,
        totals,
        executors: 1,
        executorSlots: 1,
        executorBusyShare: 0.9,
        hosts: [{ host: 'db1:5432', ...totals, atLimitShare: 0 }],
      },
      bottleneck: {
        kind: 'coordination',
        label: 'coordination',
        mode: 'waiting',
        summary: 'Tenants waited 1.0 s on average.',
        lever: 'Add executor replicas.',
        figures: {},
      },
    }).join('\n');
    expect(text).toContain('trace     0af7651916cd43dd8448eb211c80319c');
    expect(text).toContain('per tenant: queued 1.0 s, connect 10 ms, journal 2 ms, SQL 100 ms (database 75 ms)');
    expect(text).toContain('executors 1 (1 slots, busy 90%), planning 120 ms');
    expect(text).toContain(
      'host      db1:5432: 4 tenants, queued 1.0 s, SQL 100 ms per tenant, at its limit 0% of the time',
    );
    expect(text).toContain('bottleneck coordination (waiting)');
    expect(text).toContain('lever: Add executor replicas.');
  });

  it("prints each host's effective concurrency next to its limit", () => {
    const text = formatCompleted({
      ...completed,
      timings: {
        wallMs: 2_500,
        planningMs: null,
        totals,
        executors: 1,
        executorSlots: 16,
        executorBusyShare: 0.9,
        hosts: [{ host: 'db1:5432', ...totals, atLimitShare: 0.5, effectiveConcurrency: 7.44, limit: 8 }],
      },
    }).join('\n');
    expect(text).toContain(
      'host      db1:5432: 4 tenants, queued 1.0 s, SQL 100 ms per tenant, 7.4 in flight on average (limit 8), at its limit 50% of the time',
    );
  });

  it("prints each host's signals, each executor's load, the what-if and the report's notes", () => {
    const text = formatCompleted({
      ...completed,
      timings: {
        wallMs: 2_500,
        planningMs: null,
        totals,
        executors: 1,
        executorSlots: 16,
        executorBusyShare: 0.9,
        hosts: [
          {
            host: 'db1:5432',
            ...totals,
            atLimitShare: 0.5,
            signals: {
              baselineRttMs: 1.2,
              baselineConnectMs: 6,
              tenants: 4,
              roundTrips: 8,
              networkFloorMs: 33.6,
              latencyInflation: 9.4,
              activity: { samples: 2, active: 7, onCpu: 5, lock: 0, lwlock: 1, io: 1, client: 0, replayLagMs: null },
              activityUnavailable: 0,
              limitRange: [8, 16],
            },
          },
        ],
        executorLoad: [{ executorId: 'x1', tenants: 4, cpu: 0.12, loopDelayMs: 2 }],
      },
      bottleneck: {
        kind: 'hostSaturated',
        label: 'host saturated',
        mode: 'waiting',
        summary: 'Connect and journal reads took 9.4× their unloaded time.',
        lever: 'Do not raise the limit.',
        figures: {},
        whatIf: [
          {
            host: 'db1:5432',
            model: 'usl',
            points: [
              { concurrency: 4, throughput: 40, tenants: 10 },
              { concurrency: 16, throughput: 42, tenants: 30 },
            ],
            sigma: 0.9,
            kappa: 0,
            observedConcurrency: 14,
            peakLimit: 6,
            stillRising: false,
            peakThroughput: 41,
            wallMs: 2_500,
            predictedWallMs: 2_400,
          },
        ],
        notes: ['pg_stat_activity was not readable on db2:5432.'],
      },
    }).join('\n');
    expect(text).toContain(
      'round trip 1 ms unloaded, connect 6 ms; latency 9.4× that; sessions active 7.0 (on CPU 5.0, Lock 0.0, LWLock 1.0, IO 1.0)',
    );
    expect(text).toContain('executor  x1: CPU 12% of a core, event loop 2 ms late on average');
    expect(text).toContain('bottleneck host saturated (waiting)');
    expect(text).toContain(
      'what-if   db1:5432: peaks at limit 6 (USL σ=0.9 κ=0); run 2.5 s -> predicted 2.4 s at that limit',
    );
    expect(text).toContain('in flight → tenants/s: 4.0→40.0/s, 16.0→42.0/s');
    expect(text).toContain('note      pg_stat_activity was not readable on db2:5432.');
  });

  it('prints no time report for a run without timings', () => {
    expect(formatCompleted(completed).join('\n')).not.toContain('bottleneck');
  });
});
