import {
  type FinalRunStatus,
  MAX_REPORTED_FAILURES,
  type RunCounts,
  type TenantOutcome,
  type TenantStatus,
} from '@sluice/contracts';

export interface RunFailure {
  tenantId: string;
  error: string;
  code?: string;
}

export function emptyCounts(total = 0): RunCounts {
  // `rolledBack` appears once a tenant is rolled back: the counts of other runs keep their shape.
  return { total, migrated: 0, upToDate: 0, pending: 0, failed: 0, skipped: 0 };
}

/** Tenants with a terminal outcome. */
export function settledCount(counts: RunCounts): number {
  return counts.migrated + counts.upToDate + counts.pending + counts.failed + counts.skipped + (counts.rolledBack ?? 0);
}

/**
 * The final status a set of counts implies: `succeeded` when nothing failed, `failed` when
 * nothing succeeded, `partial` in between. Skipped tenants neither succeed nor fail.
 */
export function finalStatusOf(counts: RunCounts): Exclude<FinalRunStatus, 'cancelled'> {
  const succeeded = counts.migrated + counts.upToDate + counts.pending + (counts.rolledBack ?? 0);
  if (counts.failed === 0) return 'succeeded';
  return succeeded === 0 ? 'failed' : 'partial';
}

/**
 * Exact aggregation of one run's tenant outcomes: the first terminal outcome of a tenant counts,
 * redeliveries and duplicates do not. Pure and in memory; the reporter decides where it lives.
 */
export class RunAggregate {
  private readonly settled = new Map<string, TenantStatus>();
  private readonly failureList: RunFailure[] = [];
  private failuresDropped = 0;
  readonly counts: RunCounts = emptyCounts();
  /** The total, once the planner has announced it. */
  total: number | null = null;

  /** Records an outcome; returns false when the tenant had already settled (a duplicate). */
  record(outcome: Pick<TenantOutcome, 'tenantId' | 'status' | 'error'>): boolean {
    if (this.settled.has(outcome.tenantId)) return false;
    this.settled.set(outcome.tenantId, outcome.status);
    this.counts[outcome.status] = (this.counts[outcome.status] ?? 0) + 1;
    if (outcome.status === 'failed') {
      if (this.failureList.length < MAX_REPORTED_FAILURES) {
        this.failureList.push({
          tenantId: outcome.tenantId,
          error: outcome.error?.message ?? 'failed',
          ...(outcome.error?.code ? { code: outcome.error.code } : {}),
        });
      } else {
        this.failuresDropped += 1;
      }
    }
    return true;
  }

  setTotal(total: number): void {
    this.total = total;
    this.counts.total = total;
  }

  statusOf(tenantId: string): TenantStatus | undefined {
    return this.settled.get(tenantId);
  }

  get done(): number {
    return settledCount(this.counts);
  }

  /** True once the total is known and every tenant has settled. */
  get complete(): boolean {
    return this.total !== null && this.done >= this.total;
  }

  get failures(): readonly RunFailure[] {
    return this.failureList;
  }

  get failuresTruncated(): boolean {
    return this.failuresDropped > 0;
  }
}
