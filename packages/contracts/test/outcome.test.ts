import { describe, expect, it } from 'vitest';

import { failedOutcome, outcomeMsgId, skippedOutcome, tenantOutcome, TenantOutcomeSchema } from '../src/outcome.js';

describe('outcome builders', () => {
  const source = {
    runId: 'r1',
    tenantId: 't1',
    host: 'db:5432',
    executorId: 'x1',
    attempts: 2,
    finishedAt: '2026-01-01T00:00:00.000Z',
  };

  it('build valid outcomes with only the fields that are known', () => {
    const migrated = tenantOutcome(
      { ...source, executorSlots: 4 },
      { status: 'migrated', applied: [1, 2], fromVersion: null, toVersion: 2, timings: { connectMs: 3 } },
    );
    expect(migrated).toEqual({
      runId: 'r1',
      tenantId: 't1',
      status: 'migrated',
      applied: [1, 2],
      fromVersion: null,
      toVersion: 2,
      host: 'db:5432',
      executorId: 'x1',
      executorSlots: 4,
      attempts: 2,
      timings: { connectMs: 3 },
      finishedAt: '2026-01-01T00:00:00.000Z',
    });
    const planned = skippedOutcome({ runId: 'r1', tenantId: 't2', attempts: 0 });
    expect(Object.keys(planned).sort()).toEqual(['applied', 'attempts', 'finishedAt', 'runId', 'status', 'tenantId']);
    expect(Number.isFinite(Date.parse(planned.finishedAt))).toBe(true);
    for (const o of [migrated, planned]) expect(TenantOutcomeSchema.safeParse(o).success).toBe(true);
  });

  it('carry a skip reason as a permanent error, and a failure as given', () => {
    expect(skippedOutcome(source, { code: 'cancelled', message: 'run cancelled' })).toMatchObject({
      status: 'skipped',
      applied: [],
      error: { code: 'cancelled', message: 'run cancelled', transient: false },
    });
    const error = { code: 'sql_error', message: 'boom', transient: false, sqlState: '42P01', version: 3 };
    expect(failedOutcome(source, error)).toMatchObject({ status: 'failed', applied: [], attempts: 2, error });
  });

  it('key every settler of a tenant to one message id', () => {
    expect(outcomeMsgId('r1', 't1')).toBe('r1:t1');
  });
});
