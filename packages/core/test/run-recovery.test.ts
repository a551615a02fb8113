import { describe, expect, it } from 'vitest';

import { recoveredCompletion } from '../src/run-recovery.js';

const row = (version: number, at: string, status: 'applied' | 'dirty' = 'applied') => ({
  version,
  status,
  appliedAt: `2026-11-30T01:00:0${at}.000Z`,
});

describe('recoveredCompletion', () => {
  it('counts tenants with rows as migrated, a dirty row as failed, and the rest as not reached', () => {
    const event = recoveredCompletion('lost-1', [
      { tenantId: 'a', rows: [row(5, '1'), row(6, '2')] },
      { tenantId: 'b', rows: [row(6, '3')] },
      { tenantId: 'c', rows: [row(5, '4', 'dirty')] },
      { tenantId: 'd', rows: [] },
      { tenantId: 'e', rows: [], unreadable: 'connection refused' },
    ]);
    expect(event).toMatchObject({
      runId: 'lost-1',
      status: 'partial',
      target: 6,
      targetVersion: 6,
      counts: { total: 5, migrated: 2, failed: 1, skipped: 2, upToDate: 0, pending: 0 },
      startedAt: '2026-11-30T01:00:01.000Z',
      finishedAt: '2026-11-30T01:00:04.000Z',
      durationMs: 3000,
      failures: [{ tenantId: 'c', code: 'dirty' }],
      recovered: { notReached: 1, unreadable: 1 },
    });
  });

  it('says nothing was reached when no journal carries the run', () => {
    const event = recoveredCompletion('never', [{ tenantId: 'a', rows: [] }]);
    expect(event).toMatchObject({ status: 'succeeded', target: 'latest', targetVersion: null, durationMs: 0 });
    expect(event.recovered).toEqual({ notReached: 1, unreadable: 0 });
  });
});
