import type {
  RunAcceptedEvent,
  RunControlEvent,
  RunPlannedEvent,
  TenantLedgerEntry,
  TenantOutcome,
  TenantTask,
} from '@sluice/contracts';
import { describe, expect, it } from 'vitest';

import { RunBook, runStatusOf } from '../src/run-book.js';
import { rolloutVerdict } from '../src/run-verdicts.js';
import { takeProgress } from './book-support.js';

let clock = Date.parse('2026-01-01T00:00:00Z');
const now = () => clock;
const iso = () => new Date(clock).toISOString();

const accepted = (runId: string, rollout?: RunAcceptedEvent['rollout']): RunAcceptedEvent => ({
  runId,
  target: 'latest',
  targetVersion: 6,
  digest: 'd'.repeat(64),
  dryRun: false,
  acceptedAt: iso(),
  ...(rollout ? { rollout } : {}),
});
const planned = (runId: string, total: number, canaries?: number): RunPlannedEvent => ({
  runId,
  total,
  tasks: total,
  skipped: 0,
  invalid: 0,
  plannedAt: iso(),
  ...(canaries !== undefined ? { canaries } : {}),
});
const outcome = (runId: string, tenantId: string, status: TenantOutcome['status'], code?: string): TenantOutcome => ({
  runId,
  tenantId,
  status,
  applied: [],
  attempts: 1,
  finishedAt: iso(),
  ...(code ? { error: { code, message: `${code} happened`, transient: false } } : {}),
});
const control = (runId: string, action: RunControlEvent['action'], reason?: string): RunControlEvent => ({
  runId,
  action,
  at: iso(),
  ...(reason ? { reason } : {}),
});
const task = (runId: string, tenantId: string, stage?: 'canary' | 'fleet'): TenantTask => ({
  runId,
  tenantId,
  databaseUrl: `postgres://u@h:5432/${tenantId}`,
  host: 'h:5432',
  target: 6,
  digest: 'd'.repeat(64),
  dryRun: false,
  plannedAt: iso(),
  ...(stage ? { stage } : {}),
});
const plannedEntry = (
  runId: string,
  tenantId: string,
  taskSeq: number,
  stage?: 'canary' | 'fleet',
): TenantLedgerEntry => ({ kind: 'planned', task: task(runId, tenantId, stage), taskSeq });

describe('run states and controls', () => {
  it('goes planning -> running -> paused -> running -> cancelling -> cancelled, refusing what does not apply', () => {
    const book = new RunBook(now);
    book.onAccepted(accepted('c1'), 1);
    const run = book.get('c1')!;
    expect(runStatusOf(run)).toBe('planning');
    book.onPlanned(planned('c1', 3));
    expect(runStatusOf(run)).toBe('running');
    expect(book.onControl(control('c1', 'resume'), 3)).toBe(false);
    expect(book.onControl(control('c1', 'pause', 'db maintenance'), 4)).toBe(true);
    expect(runStatusOf(run)).toBe('paused');
    expect(run.control).toMatchObject({ state: 'paused', seq: 4, note: { action: 'pause', reason: 'db maintenance' } });
    expect(book.onControl(control('c1', 'pause'), 5)).toBe(false);
    expect(book.onControl(control('c1', 'resume'), 6)).toBe(true);
    expect(runStatusOf(run)).toBe('running');
    book.onOutcome(outcome('c1', 'a', 'migrated'));
    expect(book.onControl(control('c1', 'cancel', 'wrong target'), 7)).toBe(true);
    expect(runStatusOf(run)).toBe('cancelling');
    expect(book.onControl(control('c1', 'resume'), 8)).toBe(false);
    expect(book.completionDue('c1')).toBeUndefined();
    book.onOutcome(outcome('c1', 'b', 'skipped', 'cancelled'));
    book.onOutcome(outcome('c1', 'c', 'skipped', 'cancelled'));
    const done = book.completionDue('c1')!;
    expect(done).toMatchObject({
      status: 'cancelled',
      counts: { migrated: 1, skipped: 2 },
      stoppedBy: { action: 'cancel', reason: 'wrong target' },
    });
    book.onCompleted(done, 9);
    expect(run.control).toMatchObject({ final: 'cancelled', seq: 9 });
    expect(book.onControl(control('c1', 'pause'), 10)).toBe(false);
  });

  it('reports paused and cancelling in progress events, with no ETA while paused', () => {
    const book = new RunBook(now);
    book.onAccepted(accepted('c2'));
    book.onPlanned(planned('c2', 10));
    takeProgress(book, 'c2');
    clock += 1000;
    book.onOutcome(outcome('c2', 'a', 'migrated'));
    expect(takeProgress(book, 'c2')?.etaMs).toBeGreaterThan(0);
    book.onControl(control('c2', 'pause'), 3);
    expect(takeProgress(book, 'c2')).toMatchObject({ status: 'paused', etaMs: null });
    expect(takeProgress(book, 'c2')).toBeUndefined();
  });

  it('computes the rate over the last half minute, not since the start', () => {
    const book = new RunBook(now);
    book.onAccepted(accepted('c3'));
    book.onPlanned(planned('c3', 1000));
    takeProgress(book, 'c3');
    // A slow start: 10 tenants in the first minute ...
    for (let i = 0; i < 10; i++) book.onOutcome(outcome('c3', `s${i}`, 'migrated'));
    clock += 60_000;
    takeProgress(book, 'c3');
    // ... then 10 a second.
    for (let s = 0; s < 40; s++) {
      clock += 1000;
      for (let i = 0; i < 10; i++) book.onOutcome(outcome('c3', `f${s}-${i}`, 'migrated'));
      takeProgress(book, 'c3');
    }
    clock += 1000;
    for (let i = 0; i < 10; i++) book.onOutcome(outcome('c3', `last-${i}`, 'migrated'));
    const p = takeProgress(book, 'c3')!;
    expect(p.ratePerSec).toBeCloseTo(10, 0);
    expect(p.etaMs).toBeCloseTo(((1000 - p.done) / 10) * 1000, -3);
  });
});

describe('staged rollout', () => {
  it('promotes the fleet once every canary has succeeded, whatever order ledger and outcomes come in', () => {
    const book = new RunBook(now);
    book.onAccepted(accepted('s1', { canary: 2 }), 1);
    const run = book.get('s1')!;
    expect(run.control.stage).toBe('canary');
    // An outcome before its ledger entry.
    book.onOutcome(outcome('s1', 'c1', 'migrated'));
    book.onLedger('s1', plannedEntry('s1', 'c1', 1, 'canary'), 1, clock);
    expect(rolloutVerdict(run)).toBeUndefined();
    book.onLedger('s1', plannedEntry('s1', 'c2', 2, 'canary'), 2, clock);
    book.onLedger('s1', plannedEntry('s1', 'f1', 3, 'fleet'), 3, clock);
    expect(rolloutVerdict(run)).toBeUndefined();
    book.onOutcome(outcome('s1', 'c2', 'upToDate'));
    expect(rolloutVerdict(run)).toEqual({ action: 'promote' });
    book.onControl(control('s1', 'promote'), 5);
    expect(run.control.stage).toBe('fleet');
    expect(rolloutVerdict(run)).toBeUndefined();
  });

  it('waits for the planned event when the fleet is smaller than the canary count', () => {
    const book = new RunBook(now);
    book.onAccepted(accepted('s2', { canary: 5 }), 1);
    book.onLedger('s2', plannedEntry('s2', 'c1', 1, 'canary'), 1, clock);
    book.onOutcome(outcome('s2', 'c1', 'migrated'));
    expect(rolloutVerdict(book.get('s2')!)).toBeUndefined();
    book.onPlanned(planned('s2', 1, 1));
    // Every tenant was a canary and has settled: the run completes, no promotion needed.
    expect(book.completionDue('s2')?.status).toBe('succeeded');
  });

  it('stops the run when a canary fails, and the run then ends failed with the reason', () => {
    const book = new RunBook(now);
    book.onAccepted(accepted('s3', { canary: 2 }), 1);
    book.onPlanned(planned('s3', 4, 2));
    book.onLedger('s3', plannedEntry('s3', 'c1', 1, 'canary'), 1, clock);
    book.onOutcome(outcome('s3', 'c1', 'failed', 'sql_error'));
    const run = book.get('s3')!;
    expect(rolloutVerdict(run)).toEqual({ action: 'stop', reason: 'canary c1 failed [sql_error]: sql_error happened' });
    book.onControl(control('s3', 'stop', 'canary c1 failed'), 4);
    expect(runStatusOf(run)).toBe('cancelling');
    for (const t of ['c2', 'f1', 'f2']) book.onOutcome(outcome('s3', t, 'skipped', 'rollout_stopped'));
    expect(book.completionDue('s3')).toMatchObject({
      status: 'failed',
      error: 'rollout stopped the run: canary c1 failed',
      stoppedBy: { action: 'stop' },
    });
  });

  it('stops on maxFailures', () => {
    const book = new RunBook(now);
    book.onAccepted(accepted('s4', { maxFailures: 1 }));
    book.onPlanned(planned('s4', 100));
    book.onOutcome(outcome('s4', 'a', 'failed', 'x'));
    expect(rolloutVerdict(book.get('s4')!)).toBeUndefined();
    book.onOutcome(outcome('s4', 'b', 'failed', 'x'));
    expect(rolloutVerdict(book.get('s4')!)).toMatchObject({
      action: 'stop',
      reason: expect.stringContaining('maxFailures 1') as string,
    });
  });

  it('judges maxFailureRate on a sample of ceil(1/rate) settled tenants, or at once when the total can no longer meet it', () => {
    const book = new RunBook(now);
    book.onAccepted(accepted('s5', { maxFailureRate: 0.1 }));
    book.onPlanned(planned('s5', 100));
    const run = book.get('s5')!;
    book.onOutcome(outcome('s5', 'x0', 'failed', 'x'));
    // One failure in one settled tenant is 100 %, but one tenant is no sample.
    expect(rolloutVerdict(run)).toBeUndefined();
    for (let i = 1; i < 10; i++) book.onOutcome(outcome('s5', `ok${i}`, 'migrated'));
    // 1 of 10: exactly the rate, not over it.
    expect(rolloutVerdict(run)).toBeUndefined();
    book.onOutcome(outcome('s5', 'x1', 'failed', 'x'));
    expect(rolloutVerdict(run)).toMatchObject({ action: 'stop', reason: expect.stringContaining('2 of 11') as string });

    const small = new RunBook(now);
    small.onAccepted(accepted('s6', { maxFailureRate: 0.5 }));
    small.onPlanned(planned('s6', 4));
    small.onOutcome(outcome('s6', 'a', 'failed', 'x'));
    small.onOutcome(outcome('s6', 'b', 'failed', 'x'));
    small.onOutcome(outcome('s6', 'c', 'failed', 'x'));
    // 3 failures of 4 tenants can never be 50 % or less.
    expect(rolloutVerdict(small.get('s6')!)?.action).toBe('stop');
  });

  it('ends a run failed when its thresholds are passed by its last tenants', () => {
    const book = new RunBook(now);
    book.onAccepted(accepted('s7', { maxFailures: 0 }));
    book.onPlanned(planned('s7', 2));
    book.onOutcome(outcome('s7', 'a', 'migrated'));
    book.onOutcome(outcome('s7', 'b', 'failed', 'x'));
    expect(book.completionDue('s7')).toMatchObject({
      status: 'failed',
      error: expect.stringContaining('maxFailures 0') as string,
    });
  });
});

describe('task ledger tracking', () => {
  it('follows each unsettled tenant through planned, parked and re-published entries; repeats and stale ones change nothing', () => {
    const book = new RunBook(now);
    book.onAccepted(accepted('l1'));
    expect(book.onLedger('l1', plannedEntry('l1', 'a', 11), 1, clock)).toBe(true);
    expect(book.onLedger('l1', plannedEntry('l1', 'a', 11), 1, clock)).toBe(false);
    const tenants = book.get('l1')!.tenants;
    expect(tenants.get('a')?.copy).toEqual({ kind: 'queued', taskSeq: 11, entrySeq: 1 });
    book.onLedger('l1', { kind: 'parked', task: task('l1', 'a'), taskSeq: 11, reason: 'paused', at: iso() }, 5, clock);
    expect(tenants.get('a')?.copy).toMatchObject({ kind: 'parked', reason: 'paused', taskSeq: 11, entrySeq: 5 });
    expect(tenants.parked().map((t) => t.tenantId)).toEqual(['a']);
    book.onLedger(
      'l1',
      { kind: 'republished', tenantId: 'a', taskSeq: 20, supersedes: 5, cause: 'parked', at: iso() },
      7,
      clock,
    );
    // A stale entry arriving late (replay and live overlap) is ignored.
    book.onLedger('l1', { kind: 'parked', task: task('l1', 'a'), taskSeq: 11, reason: 'paused', at: iso() }, 5, clock);
    expect(tenants.get('a')).toMatchObject({ payloadSeq: 5, copy: { kind: 'queued', taskSeq: 20, entrySeq: 7 } });
    book.onOutcome(outcome('l1', 'a', 'migrated'));
    expect(tenants.get('a')).toBeUndefined();
    // Nothing brings a settled tenant back.
    expect(
      book.onLedger(
        'l1',
        { kind: 'parked', task: task('l1', 'a'), taskSeq: 21, reason: 'paused', at: iso() },
        9,
        clock,
      ),
    ).toBe(false);
  });

  it('matches entries by the copy they name when writers race: a copy parked before it was announced stays parked', () => {
    const book = new RunBook(now);
    book.onAccepted(accepted('l3'));
    const tenants = book.get('l3')!.tenants;
    // An executor parked task 4 before the planner wrote the entry announcing it.
    book.onLedger(
      'l3',
      { kind: 'parked', task: task('l3', 'a', 'fleet'), taskSeq: 4, reason: 'canary', at: iso() },
      8,
      clock,
    );
    expect(book.onLedger('l3', plannedEntry('l3', 'a', 4, 'fleet'), 10, clock)).toBe(false);
    expect(tenants.get('a')?.copy).toMatchObject({ kind: 'parked', taskSeq: 4, entrySeq: 8 });
    // The reporter publishes it again as task 20 and folds its own entry (seq 12) ...
    const republished: TenantLedgerEntry = {
      kind: 'republished',
      tenantId: 'a',
      taskSeq: 20,
      supersedes: 8,
      cause: 'parked',
      at: iso(),
    };
    book.onLedger('l3', republished, 12, clock);
    // ... but an executor had already parked task 20 (seq 11, written before 12): the copy is parked.
    expect(
      book.onLedger(
        'l3',
        { kind: 'parked', task: task('l3', 'a', 'fleet'), taskSeq: 20, reason: 'canary', at: iso() },
        11,
        clock,
      ),
    ).toBe(true);
    expect(tenants.get('a')?.copy).toMatchObject({ kind: 'parked', taskSeq: 20, entrySeq: 11 });
    // The same entries in the other order end the same way.
    const other = new RunBook(now);
    other.onAccepted(accepted('l3'));
    other.onLedger(
      'l3',
      { kind: 'parked', task: task('l3', 'a', 'fleet'), taskSeq: 4, reason: 'canary', at: iso() },
      8,
      clock,
    );
    other.onLedger(
      'l3',
      { kind: 'parked', task: task('l3', 'a', 'fleet'), taskSeq: 20, reason: 'canary', at: iso() },
      11,
      clock,
    );
    other.onLedger('l3', republished, 12, clock);
    expect(other.get('l3')!.tenants.get('a')?.copy).toEqual(tenants.get('a')?.copy);
  });

  it('finds overdue queued tasks, never parked ones', () => {
    const book = new RunBook(now);
    book.onAccepted(accepted('l2'));
    book.onLedger('l2', plannedEntry('l2', 'a', 1), 1, clock);
    book.onLedger('l2', plannedEntry('l2', 'b', 2), 2, clock);
    book.onLedger('l2', { kind: 'parked', task: task('l2', 'b'), taskSeq: 2, reason: 'canary', at: iso() }, 3, clock);
    const tenants = book.get('l2')!.tenants;
    expect(tenants.overdue(clock + 1000, 5000, 10)).toEqual([]);
    expect(tenants.overdue(clock + 5000, 5000, 10).map((t) => t.tenantId)).toEqual(['a']);
    tenants.markAlive('a', clock + 5000);
    expect(tenants.overdue(clock + 6000, 5000, 10)).toEqual([]);
  });
});
