import { MAX_REPORTED_FAILURES, type RunCounts } from '@sluice/contracts';
import { describe, expect, it } from 'vitest';

import { emptyCounts, finalStatusOf, RunAggregate, settledCount } from '../src/run-aggregate.js';

const counts = (partial: Partial<RunCounts>): RunCounts => ({ ...emptyCounts(), ...partial });

describe('emptyCounts / settledCount', () => {
  it('starts at zero with the given total', () => {
    expect(emptyCounts()).toEqual({ total: 0, migrated: 0, upToDate: 0, pending: 0, failed: 0, skipped: 0 });
    expect(emptyCounts(12).total).toBe(12);
  });

  it('sums every terminal status but not the total', () => {
    expect(settledCount({ total: 100, migrated: 1, upToDate: 2, pending: 3, failed: 4, skipped: 5 })).toBe(15);
  });
});

describe('finalStatusOf', () => {
  it('is succeeded when nothing failed', () => {
    expect(finalStatusOf(counts({ migrated: 3, upToDate: 2 }))).toBe('succeeded');
    expect(finalStatusOf(counts({ pending: 1 }))).toBe('succeeded');
  });

  it('is failed when something failed and nothing succeeded', () => {
    expect(finalStatusOf(counts({ failed: 2 }))).toBe('failed');
    expect(finalStatusOf(counts({ failed: 2, skipped: 5 }))).toBe('failed');
  });

  it('is partial when some failed and some succeeded', () => {
    expect(finalStatusOf(counts({ migrated: 1, failed: 1 }))).toBe('partial');
    expect(finalStatusOf(counts({ upToDate: 1, failed: 9 }))).toBe('partial');
    expect(finalStatusOf(counts({ pending: 1, failed: 1 }))).toBe('partial');
  });

  it('is succeeded for a run where every tenant was skipped, and for an empty run', () => {
    expect(finalStatusOf(counts({ total: 4, skipped: 4 }))).toBe('succeeded');
    expect(finalStatusOf(emptyCounts())).toBe('succeeded');
  });
});

describe('RunAggregate', () => {
  it('counts each status', () => {
    const agg = new RunAggregate();
    agg.record({ tenantId: 'a', status: 'migrated' });
    agg.record({ tenantId: 'b', status: 'upToDate' });
    agg.record({ tenantId: 'c', status: 'pending' });
    agg.record({ tenantId: 'd', status: 'skipped' });
    agg.record({ tenantId: 'e', status: 'failed', error: { code: 'sql_error', message: 'boom', transient: false } });
    agg.record({ tenantId: 'f', status: 'migrated' });
    expect(agg.counts).toEqual({ total: 0, migrated: 2, upToDate: 1, pending: 1, failed: 1, skipped: 1 });
    expect(agg.done).toBe(6);
    expect(agg.statusOf('d')).toBe('skipped');
    expect(agg.statusOf('zzz')).toBeUndefined();
  });

  it('counts only the first outcome of a tenant', () => {
    const agg = new RunAggregate();
    expect(
      agg.record({ tenantId: 'a', status: 'failed', error: { code: 'locked', message: 'held', transient: true } }),
    ).toBe(true);
    expect(agg.record({ tenantId: 'a', status: 'migrated' })).toBe(false);
    expect(agg.record({ tenantId: 'a', status: 'failed' })).toBe(false);
    expect(agg.counts.failed).toBe(1);
    expect(agg.counts.migrated).toBe(0);
    expect(agg.done).toBe(1);
    expect(agg.statusOf('a')).toBe('failed');
    expect(agg.failures).toEqual([{ tenantId: 'a', error: 'held', code: 'locked' }]);
  });

  it('records failures with their message and code, or a default message', () => {
    const agg = new RunAggregate();
    agg.record({
      tenantId: 'a',
      status: 'failed',
      error: { code: 'drift', message: 'drift: checksum_mismatch at 2', transient: false },
    });
    agg.record({ tenantId: 'b', status: 'failed' });
    agg.record({ tenantId: 'c', status: 'failed', error: { code: '', message: 'no code', transient: false } });
    agg.record({ tenantId: 'd', status: 'migrated' });
    expect(agg.failures).toEqual([
      { tenantId: 'a', error: 'drift: checksum_mismatch at 2', code: 'drift' },
      { tenantId: 'b', error: 'failed' },
      { tenantId: 'c', error: 'no code' },
    ]);
    expect(agg.failuresTruncated).toBe(false);
  });

  it(`keeps at most ${MAX_REPORTED_FAILURES} failures and says when it dropped some`, () => {
    const agg = new RunAggregate();
    for (let i = 0; i < MAX_REPORTED_FAILURES; i++) agg.record({ tenantId: `t${i}`, status: 'failed' });
    expect(agg.failures).toHaveLength(MAX_REPORTED_FAILURES);
    expect(agg.failuresTruncated).toBe(false);

    agg.record({ tenantId: 'one-too-many', status: 'failed' });
    agg.record({ tenantId: 't0', status: 'failed' }); // a duplicate is not a dropped failure
    expect(agg.failures).toHaveLength(MAX_REPORTED_FAILURES);
    expect(agg.failures.some((f) => f.tenantId === 'one-too-many')).toBe(false);
    expect(agg.failures[0]?.tenantId).toBe('t0');
    expect(agg.failuresTruncated).toBe(true);
    expect(agg.counts.failed).toBe(MAX_REPORTED_FAILURES + 1);
  });

  it('is complete only once the total is set and every tenant settled', () => {
    const agg = new RunAggregate();
    agg.record({ tenantId: 'a', status: 'migrated' });
    agg.record({ tenantId: 'b', status: 'upToDate' });
    expect(agg.total).toBeNull();
    expect(agg.complete).toBe(false);

    agg.setTotal(3);
    expect(agg.total).toBe(3);
    expect(agg.counts.total).toBe(3);
    expect(agg.complete).toBe(false);

    agg.record({ tenantId: 'b', status: 'failed' });
    expect(agg.complete).toBe(false);

    agg.record({ tenantId: 'c', status: 'skipped' });
    expect(agg.complete).toBe(true);
    expect(finalStatusOf(agg.counts)).toBe('succeeded');
  });

  it('is complete at once for a total of zero', () => {
    const agg = new RunAggregate();
    expect(agg.complete).toBe(false);
    agg.setTotal(0);
    expect(agg.complete).toBe(true);
  });

  it('reaches partial through the aggregate', () => {
    const agg = new RunAggregate();
    agg.setTotal(2);
    agg.record({ tenantId: 'a', status: 'migrated' });
    agg.record({ tenantId: 'b', status: 'failed' });
    expect(agg.complete).toBe(true);
    expect(finalStatusOf(agg.counts)).toBe('partial');
  });
});

describe('rolled back tenants', () => {
  it('count as settled successes, and appear in the counts once there is one', () => {
    const agg = new RunAggregate();
    agg.setTotal(3);
    agg.record({ tenantId: 'a', status: 'rolledBack' });
    agg.record({ tenantId: 'a', status: 'failed' });
    agg.record({ tenantId: 'b', status: 'upToDate' });
    expect(agg.counts).toMatchObject({ rolledBack: 1, upToDate: 1, failed: 0 });
    expect(agg.complete).toBe(false);
    agg.record({
      tenantId: 'c',
      status: 'failed',
      error: { code: 'irreversible', message: 'no down file', transient: false },
    });
    expect(agg.complete).toBe(true);
    expect(finalStatusOf(agg.counts)).toBe('partial');
    expect(emptyCounts()).not.toHaveProperty('rolledBack');
  });
});
