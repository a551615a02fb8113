import type { RunAcceptedEvent, RunPlannedEvent, TenantOutcome } from '@sluice/contracts';
import { describe, expect, it } from 'vitest';

import { RunBook, runStatusOf } from '../src/run-book.js';
import { takeProgress } from './book-support.js';

let clock = Date.parse('2026-01-01T00:00:00Z');
const now = () => clock;

const accepted = (runId: string): RunAcceptedEvent => ({
  runId,
  target: 'latest',
  targetVersion: 6,
  digest: 'd'.repeat(64),
  dryRun: false,
  acceptedAt: new Date(clock).toISOString(),
});
const planned = (runId: string, total: number, error?: string): RunPlannedEvent => ({
  runId,
  total,
  tasks: total,
  skipped: 0,
  invalid: 0,
  plannedAt: new Date(clock).toISOString(),
  ...(error ? { error } : {}),
});
const outcome = (
  runId: string,
  tenantId: string,
  status: TenantOutcome['status'],
  message?: string,
): TenantOutcome => ({
  runId,
  tenantId,
  status,
  applied: status === 'migrated' ? [1, 2] : [],
  attempts: 1,
  finishedAt: new Date(clock).toISOString(),
  ...(message ? { error: { code: 'sql_error', message, transient: false } } : {}),
});

describe('RunBook', () => {
  it('completes a run once every planned tenant has settled, whatever the order of events', () => {
    const book = new RunBook(now);
    book.onOutcome(outcome('r1', 't1', 'migrated'));
    expect(book.completionDue('r1')).toBeUndefined();
    book.onAccepted(accepted('r1'));
    book.onPlanned(planned('r1', 2));
    expect(runStatusOf(book.get('r1')!)).toBe('running');
    expect(book.completionDue('r1')).toBeUndefined();
    clock += 1500;
    book.onOutcome(outcome('r1', 't2', 'upToDate'));
    const done = book.completionDue('r1');
    expect(done).toMatchObject({
      status: 'succeeded',
      counts: { total: 2, migrated: 1, upToDate: 1, failed: 0 },
      durationMs: 1500,
      targetVersion: 6,
    });
    book.onCompleted(done!);
    expect(book.completionDue('r1')).toBeUndefined();
    expect(runStatusOf(book.get('r1')!)).toBe('succeeded');
  });

  it('counts a tenant once however often its outcome arrives', () => {
    const book = new RunBook(now);
    book.onAccepted(accepted('r2'));
    book.onPlanned(planned('r2', 2));
    expect(book.onOutcome(outcome('r2', 't1', 'failed', 'boom'))).toBe(true);
    expect(book.onOutcome(outcome('r2', 't1', 'migrated'))).toBe(false);
    book.onOutcome(outcome('r2', 't2', 'migrated'));
    const done = book.completionDue('r2')!;
    expect(done.status).toBe('partial');
    expect(done.counts).toMatchObject({ migrated: 1, failed: 1 });
    expect(done.failures).toEqual([{ tenantId: 't1', error: 'boom', code: 'sql_error' }]);
  });

  it('fails a run whose planning failed, with the reason', () => {
    const book = new RunBook(now);
    book.onAccepted(accepted('r3'));
    book.onPlanned(planned('r3', 0, 'planning failed: registry down'));
    expect(book.completionDue('r3')).toMatchObject({ status: 'failed', error: 'planning failed: registry down' });
  });

  it('completes an empty run at once', () => {
    const book = new RunBook(now);
    book.onAccepted(accepted('r4'));
    book.onPlanned(planned('r4', 0));
    expect(book.completionDue('r4')?.status).toBe('succeeded');
  });

  it('answers progressDue without changing the run: the event is noted only by onProgress', () => {
    const book = new RunBook(now);
    book.onAccepted(accepted('rq'));
    book.onPlanned(planned('rq', 2));
    const first = book.progressDue('rq');
    expect(first).toMatchObject({ status: 'running', done: 0 });
    expect(book.progressDue('rq')).toEqual(first);
    expect(book.get('rq')!.progress).toEqual({ done: 0, status: 'planning', samples: [] });
    book.onProgress(first!);
    expect(book.progressDue('rq')).toBeUndefined();
  });

  it('emits progress only when a run moved, with rate and ETA', () => {
    const book = new RunBook(now);
    book.onAccepted(accepted('r5'));
    book.onPlanned(planned('r5', 4));
    // planning -> running is news; nothing after it until something moves.
    expect(takeProgress(book, 'r5')).toMatchObject({ status: 'running', done: 0, etaMs: null });
    expect(takeProgress(book, 'r5')).toBeUndefined();
    clock += 2000;
    book.onOutcome(outcome('r5', 'a', 'migrated'));
    book.onOutcome(outcome('r5', 'b', 'migrated'));
    const p = takeProgress(book, 'r5')!;
    expect(p).toMatchObject({ done: 2, ratePerSec: 1, etaMs: 2000, status: 'running' });
    expect(takeProgress(book, 'r5')).toBeUndefined();
  });

  it("measures a finished run's wall time to its last outcome, even when the book reads it much later", () => {
    const book = new RunBook(now);
    const start = clock;
    book.onAccepted(accepted('rw'));
    book.onPlanned(planned('rw', 2));
    const timed = (tenantId: string): TenantOutcome => ({
      ...outcome('rw', tenantId, 'migrated'),
      executorId: 'x1',
      executorSlots: 2,
      timings: { workMs: 400, totalMs: 400 },
    });
    clock = start + 1_000;
    book.onOutcome(timed('t1'));
    clock = start + 2_000;
    book.onOutcome(timed('t2'));
    // A reporter replaying the run an hour later (after a restart) completes it then.
    clock = start + 3_600_000;
    const done = book.completionDue('rw')!;
    expect(done.timings!.wallMs).toBe(2_000);
    // 800 ms of work on 2 slots over 2 s: busy 20%, not ~0% as over an hour.
    expect(done.timings!.executorBusyShare).toBeCloseTo(0.2, 5);
  });
});
