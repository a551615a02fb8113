import { HostUnavailableError, LockTimeoutError, MigrationSqlError } from '@sluice/core';
import { describe, expect, it } from 'vitest';

import { AttemptTimings, lossCauseOf } from '../src/attempt-timings.js';

const noBreaker = (): number => 0;

describe('AttemptTimings', () => {
  it('charges failed attempts and the waits after them to their cause, so the parts add up', () => {
    const timings = new AttemptTimings();
    // Planned at 0, picked up at 100: 100 ms queued.
    timings.begin({ key: 'r:t', now: 100, plannedAt: 0, breakerOpenMs: noBreaker });
    timings.retry('r:t', 300, new LockTimeoutError('lock timeout', '55P03'), 400);
    // Redelivered at 900: 500 ms of back-off after a lock failure.
    timings.begin({ key: 'r:t', now: 900, plannedAt: 0, breakerOpenMs: noBreaker });
    timings.retry('r:t', 50, new HostUnavailableError('refused', 'db:5432'), 950);
    timings.begin({ key: 'r:t', now: 1_150, plannedAt: 0, breakerOpenMs: noBreaker });
    const parts = timings.settle('r:t', 40);
    expect(parts).toEqual({ queuedMs: 100, lockWaitMs: 800, unavailableMs: 250, retryDelayMs: 0, workMs: 390 });
    // planned 0 -> finished 1190 = queued + lock + unavailable + the last attempt.
    expect(parts.queuedMs! + parts.lockWaitMs! + parts.unavailableMs! + 40).toBe(1_190);
    expect(timings.size).toBe(0);
  });

  it('charges the part of the queue wait when the host breaker was open to the host', () => {
    const timings = new AttemptTimings();
    timings.begin({
      key: 'k',
      now: 5_000,
      plannedAt: 0,
      breakerOpenMs: (from, to) => (from === 0 && to === 5_000 ? 3_000 : -1),
    });
    expect(timings.settle('k', 10)).toMatchObject({ queuedMs: 2_000, unavailableMs: 3_000, workMs: 10 });
  });

  it('reports only this attempt for a redelivery it never saw, and forgets the oldest entries when full', () => {
    const timings = new AttemptTimings(2);
    expect(timings.settle('unknown', 25)).toEqual({ workMs: 25 });
    for (const key of ['a', 'b', 'c']) timings.begin({ key, now: 1, plannedAt: 0, breakerOpenMs: noBreaker });
    expect(timings.size).toBe(2);
    expect(timings.settle('a', 1)).toEqual({ workMs: 1 });
  });

  it('classifies causes: locks and a full connection table are contention, other host errors unavailability', () => {
    expect(lossCauseOf(new LockTimeoutError('x', '55P03'))).toBe('lock');
    expect(lossCauseOf(new HostUnavailableError('too many connections', 'h', '53300'))).toBe('lock');
    expect(lossCauseOf(new HostUnavailableError('refused', 'h'))).toBe('unavailable');
    expect(lossCauseOf(new MigrationSqlError('boom', '42601', { version: 1 }))).toBe('other');
  });
});
