import { HostUnavailableError, LockTimeoutError, MigrationSqlError } from '@sluice/core';
import { describe, expect, it } from 'vitest';

import { AttemptLedger, lossCauseOf } from '../src/attempt-ledger.js';

const noBreaker = (): number => 0;

describe('AttemptLedger', () => {
  it('charges failed attempts and the waits after them to their cause, so the parts add up', () => {
    const ledger = new AttemptLedger();
    // Planned at 0, picked up at 100: 100 ms queued.
    ledger.begin({ key: 'r:t', now: 100, plannedAt: 0, breakerOpenMs: noBreaker });
    ledger.retry('r:t', 300, new LockTimeoutError('lock timeout', '55P03'), 400);
    // Redelivered at 900: 500 ms of back-off after a lock failure.
    ledger.begin({ key: 'r:t', now: 900, plannedAt: 0, breakerOpenMs: noBreaker });
    ledger.retry('r:t', 50, new HostUnavailableError('refused', 'db:5432'), 950);
    ledger.begin({ key: 'r:t', now: 1_150, plannedAt: 0, breakerOpenMs: noBreaker });
    const parts = ledger.settle('r:t', 40);
    expect(parts).toEqual({ queuedMs: 100, lockWaitMs: 800, unavailableMs: 250, retryDelayMs: 0, workMs: 390 });
    // planned 0 -> finished 1190 = queued + lock + unavailable + the last attempt.
    expect(parts.queuedMs! + parts.lockWaitMs! + parts.unavailableMs! + 40).toBe(1_190);
    expect(ledger.size).toBe(0);
  });

  it('charges the part of the queue wait when the host breaker was open to the host', () => {
    const ledger = new AttemptLedger();
    ledger.begin({ key: 'k', now: 5_000, plannedAt: 0, breakerOpenMs: (from, to) => (from === 0 && to === 5_000 ? 3_000 : -1) });
    expect(ledger.settle('k', 10)).toMatchObject({ queuedMs: 2_000, unavailableMs: 3_000, workMs: 10 });
  });

  it('reports only this attempt for a redelivery it never saw, and forgets the oldest entries when full', () => {
    const ledger = new AttemptLedger(2);
    expect(ledger.settle('unknown', 25)).toEqual({ workMs: 25 });
    for (const key of ['a', 'b', 'c']) ledger.begin({ key, now: 1, plannedAt: 0, breakerOpenMs: noBreaker });
    expect(ledger.size).toBe(2);
    expect(ledger.settle('a', 1)).toEqual({ workMs: 1 });
  });

  it('classifies causes: locks and a full connection table are contention, other host errors unavailability', () => {
    expect(lossCauseOf(new LockTimeoutError('x', '55P03'))).toBe('lock');
    expect(lossCauseOf(new HostUnavailableError('too many connections', 'h', '53300'))).toBe('lock');
    expect(lossCauseOf(new HostUnavailableError('refused', 'h'))).toBe('unavailable');
    expect(lossCauseOf(new MigrationSqlError('boom', '42601', { version: 1 }))).toBe('other');
  });
});
