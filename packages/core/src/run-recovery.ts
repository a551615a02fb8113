import { MAX_REPORTED_FAILURES, type RunCompletedEvent } from '@sluice/contracts';

import { emptyCounts, finalStatusOf } from './run-aggregate.js';

/** What one tenant's journal holds of a run: the rows carrying its runId, or why it could not be read. */
export interface JournalRowsOfRun {
  tenantId: string;
  rows: Array<{ version: number; status: 'applied' | 'dirty'; appliedAt: string }>;
  /** The journal could not be read (connection refused, permissions): the tenant counts as skipped. */
  unreadable?: string;
}

/**
 * The `completed` event of a run whose events were lost, from the journal rows that carry its
 * runId. A journal records what a run applied, so: rows all applied → `migrated`; a `dirty` row →
 * `failed` (code `dirty`); no row → not reached (nor can a journal tell that from a tenant the run
 * found up to date, or one whose failed file rolled back), counted `skipped`. The target is the
 * highest version the run applied; the times are its first and last journal rows. Pure.
 */
export function recoveredCompletion(runId: string, tenants: readonly JournalRowsOfRun[]): RunCompletedEvent {
  const counts = emptyCounts(tenants.length);
  const failures: RunCompletedEvent['failures'] = [];
  let notReached = 0;
  let unreadable = 0;
  let target: number | null = null;
  let first: string | undefined;
  let last: string | undefined;
  for (const t of tenants) {
    if (t.unreadable !== undefined) {
      unreadable += 1;
      counts.skipped += 1;
      continue;
    }
    if (t.rows.length === 0) {
      notReached += 1;
      counts.skipped += 1;
      continue;
    }
    for (const row of t.rows) {
      target = Math.max(target ?? 0, row.version);
      if (first === undefined || row.appliedAt < first) first = row.appliedAt;
      if (last === undefined || row.appliedAt > last) last = row.appliedAt;
    }
    const dirty = t.rows.find((r) => r.status === 'dirty');
    if (dirty) {
      counts.failed += 1;
      failures.push({
        tenantId: t.tenantId,
        code: 'dirty',
        error: `version ${dirty.version} is dirty (a no-transaction file failed midway)`,
      });
    } else {
      counts.migrated += 1;
    }
  }
  const startedAt = first ?? new Date(0).toISOString();
  const finishedAt = last ?? startedAt;
  return {
    runId,
    status: finalStatusOf(counts),
    target: target ?? 'latest',
    targetVersion: target,
    dryRun: false,
    counts,
    startedAt,
    finishedAt,
    durationMs: Math.max(0, Date.parse(finishedAt) - Date.parse(startedAt)),
    failures: failures.slice(0, MAX_REPORTED_FAILURES),
    failuresTruncated: failures.length > MAX_REPORTED_FAILURES,
    recovered: { notReached, unreadable },
  };
}
