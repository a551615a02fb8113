import type { RunTimings, Timings } from '@sluice/contracts';
import { describe, expect, it } from 'vitest';

import { classifyBottleneck } from '../src/bottleneck.js';
import { splitTime } from '../src/bottleneck-signals.js';
import { RunTimingBook } from '../src/run-timings.js';

interface Fleet {
  tenants: number;
  timings: Timings;
  host?: string;
  hosts?: string[];
  executors?: Array<{ id: string; slots: number }>;
}

/** A run's timings as the reporter would build them from `tenants` identical outcomes. */
function runOf(
  fleet: Fleet,
  clock: { wallMs: number; planningMs?: number | null },
  samples: Array<[string, { pending: number; inFlight: number; limit: number }]> = [],
): RunTimings {
  const book = new RunTimingBook();
  const executors = fleet.executors ?? [{ id: 'x1', slots: 8 }];
  const hosts = fleet.hosts ?? [fleet.host ?? 'db1:5432'];
  for (let i = 0; i < fleet.tenants; i++) {
    const ex = executors[i % executors.length]!;
    book.add({ host: hosts[i % hosts.length], executorId: ex.id, executorSlots: ex.slots, timings: fleet.timings });
  }
  for (const [host, sample] of samples) book.addQueueSample(host, sample);
  return book.snapshot({ wallMs: clock.wallMs, planningMs: clock.planningMs ?? null });
}

const localWork: Timings = {
  connectMs: 7,
  journalMs: 1,
  executeMs: 40,
  serverMs: 37,
  totalMs: 50,
  workMs: 50,
  queuedMs: 0,
};

describe('where the time went', () => {
  it('sums timings per run and per host, and the executors busy share', () => {
    const t = runOf(
      {
        tenants: 10,
        timings: { ...localWork, queuedMs: 5 },
        hosts: ['a:1', 'b:1'],
        executors: [
          { id: 'x1', slots: 2 },
          { id: 'x2', slots: 3 },
        ],
      },
      { wallMs: 100 },
    );
    expect(t.totals.tenants).toBe(10);
    expect(t.totals.connectMs).toBe(70);
    expect(t.totals.queuedMs).toBe(50);
    expect(t.hosts.map((h) => [h.host, h.tenants])).toEqual([
      ['a:1', 5],
      ['b:1', 5],
    ]);
    expect(t.executors).toBe(2);
    expect(t.executorSlots).toBe(5);
    // 10 x 50 ms of work over 5 slots x 100 ms.
    expect(t.executorBusyShare).toBe(1);
  });

  it('counts a host at its limit only when work waited and the whole limit was in flight', () => {
    const book = new RunTimingBook();
    book.add({ host: 'a:1', timings: localWork });
    book.addQueueSample('a:1', { pending: 3, inFlight: 4, limit: 4 });
    book.addQueueSample('a:1', { pending: 0, inFlight: 4, limit: 4 });
    book.addQueueSample('a:1', { pending: 3, inFlight: 2, limit: 4 });
    book.addQueueSample('a:1', { pending: 9, inFlight: 4, limit: 4 });
    // A host with nothing to do in this run is not tracked at all.
    book.addQueueSample('idle:1', { pending: 0, inFlight: 0, limit: 4 });
    const t = book.snapshot({ wallMs: 10, planningMs: null });
    expect(t.hosts.map((h) => [h.host, h.atLimitShare])).toEqual([['a:1', 0.5]]);
  });

  it("gives each host's effective concurrency (mean tenants in flight over the run) next to its limit", () => {
    const book = new RunTimingBook();
    // Three tenants on a:1 busy 400 ms each over a 200 ms run: 6 in flight on average.
    for (let i = 0; i < 3; i++) book.add({ host: 'a:1', timings: { ...localWork, workMs: 400 } });
    book.add({ host: 'b:1', timings: { ...localWork, workMs: 100 } });
    book.addQueueSample('a:1', { pending: 3, inFlight: 6, limit: 4 });
    book.addQueueSample('a:1', { pending: 3, inFlight: 8, limit: 8 });
    const t = book.snapshot({ wallMs: 200, planningMs: null });
    expect(t.hosts.map((h) => [h.host, h.effectiveConcurrency, h.limit])).toEqual([
      ['a:1', 6, 8],
      ['b:1', 0.5, null],
    ]);
  });

  it('splits execute time into network and database time', () => {
    const split = splitTime({
      tenants: 1,
      queuedMs: 0,
      connectMs: 10,
      journalMs: 5,
      executeMs: 100,
      serverMs: 60,
      lockWaitMs: 0,
      unavailableMs: 0,
      retryDelayMs: 0,
      workMs: 115,
    });
    expect(split.ioMs).toBe(55);
    expect(split.computeMs).toBe(60);
  });
});

describe('classifyBottleneck', () => {
  it('is undefined without timings', () => {
    expect(classifyBottleneck(new RunTimingBook().snapshot({ wallMs: 1, planningMs: null }))).toBeUndefined();
  });

  it('io: working, with network round trips dominating the work', () => {
    const remote: Timings = {
      connectMs: 120,
      journalMs: 40,
      executeMs: 300,
      serverMs: 20,
      totalMs: 460,
      workMs: 460,
      queuedMs: 10,
    };
    const b = classifyBottleneck(runOf({ tenants: 8, timings: remote }, { wallMs: 600 }))!;
    expect(b.kind).toBe('io');
    expect(b.mode).toBe('working');
    expect(b.label).toBe('network I/O');
    expect(b.lever).toMatch(/concurrency/i);
    expect(b.figures.ioShareOfWork).toBeGreaterThan(0.9);
  });

  it('compute: working, with database time dominating', () => {
    const heavy: Timings = {
      connectMs: 7,
      journalMs: 1,
      executeMs: 2_000,
      serverMs: 1_990,
      totalMs: 2_010,
      workMs: 2_010,
      queuedMs: 20,
    };
    const b = classifyBottleneck(runOf({ tenants: 8, timings: heavy }, { wallMs: 2_100 }))!;
    expect(b.kind).toBe('compute');
    expect(b.mode).toBe('working');
  });

  it('contention: time lost to locks', () => {
    const locked: Timings = { ...localWork, lockWaitMs: 3_000 };
    const b = classifyBottleneck(runOf({ tenants: 4, timings: locked, host: 'db9:5432' }, { wallMs: 3_500 }))!;
    expect(b.kind).toBe('contention');
    expect(b.host).toBe('db9:5432');
    expect(b.summary).toMatch(/lock/);
    expect(b.summary).toContain('most on db9:5432');
  });

  it('external: time lost to an unreachable host wins over everything else', () => {
    const down: Timings = { ...localWork, unavailableMs: 4_000, lockWaitMs: 1_000, queuedMs: 9_000 };
    const b = classifyBottleneck(runOf({ tenants: 4, timings: down, host: 'down:5432' }, { wallMs: 10_000 }))!;
    expect(b.kind).toBe('external');
    expect(b.host).toBe('down:5432');
  });

  it('coordination: busy executors with a small window, hosts not at their limit', () => {
    const waited: Timings = { ...localWork, queuedMs: 2_000 };
    const run = runOf({ tenants: 100, timings: waited, executors: [{ id: 'x1', slots: 1 }] }, { wallMs: 5_500 }, [
      ['db1:5432', { pending: 90, inFlight: 1, limit: 8 }],
    ]);
    const b = classifyBottleneck(run)!;
    expect(b.kind).toBe('coordination');
    expect(b.mode).toBe('waiting');
    expect(b.lever).toMatch(/replicas|SLUICE_CONCURRENCY/);
  });

  it('waiting with idle executors: I/O-bound work says raise per-host concurrency, cheap work says coordination', () => {
    const ioWork: Timings = {
      connectMs: 100,
      journalMs: 40,
      executeMs: 300,
      serverMs: 20,
      totalMs: 440,
      workMs: 440,
      queuedMs: 600,
    };
    const io = classifyBottleneck(
      runOf({ tenants: 6, timings: ioWork, executors: [{ id: 'x1', slots: 8 }] }, { wallMs: 1_500 }),
    )!;
    expect(io).toMatchObject({ kind: 'io', mode: 'waiting' });
    expect(io.lever).toMatch(/SLUICE_HOST_START_LIMIT/);
    const cheap: Timings = {
      connectMs: 2,
      journalMs: 1,
      executeMs: 30,
      serverMs: 28,
      totalMs: 33,
      workMs: 33,
      queuedMs: 900,
    };
    const idle = classifyBottleneck(
      runOf({ tenants: 6, timings: cheap, executors: [{ id: 'x1', slots: 8 }] }, { wallMs: 1_500 }),
    )!;
    expect(idle).toMatchObject({ kind: 'coordination', mode: 'waiting' });
    expect(idle.summary).toMatch(/idled/);
  });

  it('coordination: a slow planner starving idle executors', () => {
    const waited: Timings = { ...localWork, queuedMs: 10 };
    const slowPlan: Timings = { ...waited, queuedMs: 1_000 };
    const b = classifyBottleneck(
      runOf(
        { tenants: 50, timings: slowPlan, executors: [{ id: 'x1', slots: 16 }] },
        { wallMs: 10_000, planningMs: 9_000 },
      ),
    )!;
    expect(b.kind).toBe('coordination');
    expect(b.summary).toMatch(/planner/);
  });

  it('a host at its limit: I/O-bound work says raise the limit, database-bound work says contention', () => {
    const ioWork: Timings = {
      connectMs: 100,
      journalMs: 30,
      executeMs: 200,
      serverMs: 20,
      totalMs: 330,
      workMs: 330,
      queuedMs: 3_000,
    };
    const atLimit: Array<[string, { pending: number; inFlight: number; limit: number }]> = [
      ['db1:5432', { pending: 50, inFlight: 4, limit: 4 }],
    ];
    const io = classifyBottleneck(
      runOf({ tenants: 60, timings: ioWork, executors: [{ id: 'x1', slots: 64 }] }, { wallMs: 5_000 }, atLimit),
    )!;
    expect(io.kind).toBe('io');
    expect(io.host).toBe('db1:5432');
    const dbWork: Timings = {
      connectMs: 5,
      journalMs: 1,
      executeMs: 300,
      serverMs: 295,
      totalMs: 306,
      workMs: 306,
      queuedMs: 3_000,
    };
    const busy = classifyBottleneck(
      runOf({ tenants: 60, timings: dbWork, executors: [{ id: 'x1', slots: 64 }] }, { wallMs: 5_000 }, atLimit),
    )!;
    expect(busy.kind).toBe('contention');
    expect(busy.summary).toMatch(/limit/);
  });

  it('is deterministic and keeps its figures in the verdict', () => {
    const run = runOf({ tenants: 8, timings: localWork }, { wallMs: 100 });
    expect(classifyBottleneck(run)).toEqual(classifyBottleneck(run));
    expect(classifyBottleneck(run)!.figures.tenants).toBe(8);
  });
});
