import type { AttemptSignals, TenantTask } from '@sluice/contracts';
import type { MigrationSet } from '@sluice/core';
import {
  connectTenant,
  type FencedHolder,
  JournalReadHints,
  leaseApplicationName,
  type LockFence,
  type MigrationReport,
  roundTripsOf,
  sampleHostActivity,
  taskLeaseKey,
  TenantMigrator,
} from '@sluice/migrator';

import type { ExecutorConfig } from './config.js';

/** Which delivery of its task a tenant's work runs under (its lease on the tenant). */
export interface DeliveryLease {
  /** The task message's stream sequence. */
  streamSeq: number;
  /** Its delivery count. */
  deliveryCount: number;
}

/**
 * The work of one tenant: connect, migrate, disconnect. A port, so a benchmark can measure the
 * pipeline without databases.
 */
export type TenantWork = (
  task: TenantTask,
  migrations: MigrationSet,
  lease?: DeliveryLease,
) => Promise<{ report: MigrationReport; connectMs: number; signals?: AttemptSignals }>;

/**
 * When a tenant's connection should also sample its host's sessions: at most once per
 * `intervalMs` per host on this replica (0: never), so the cost is one round trip per interval,
 * not per tenant.
 */
export class ActivitySchedule {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Claims the host's next sample when it is due. */
  claim(host: string): boolean {
    if (this.intervalMs <= 0) return false;
    const now = this.now();
    if (now - (this.last.get(host) ?? Number.NEGATIVE_INFINITY) < this.intervalMs) return false;
    this.last.set(host, now);
    return true;
  }
}

/**
 * The tenant's own database through `pg`: a session named after the replica and its lease on the
 * task, the migrator, then close. The session's name lets a later delivery of the same task fence
 * this one (terminate it and take the migration lock) when its lease has expired — a frozen or
 * partitioned executor — see `@sluice/migrator` lock-fencing.
 */
export function postgresTenantWork(
  /** Without `ackWaitMs` sessions are still named, but never fence a stale holder. */
  config: Pick<ExecutorConfig, 'executorId' | 'lockTimeoutMs' | 'statementTimeoutMs' | 'connectTimeoutMs'> &
    Partial<Pick<ExecutorConfig, 'ackWaitMs'>>,
  onFenced?: (task: TenantTask, holder: FencedHolder) => void,
  /** Signals on (round trips, host activity samples); off: the work reports none. */
  signals?: { activity: ActivitySchedule },
): TenantWork {
  // Up-to-date journals are read plainly, the server's cheapest read; a host whose databases have none yet, without errors.
  const journalReads = new JournalReadHints();
  return async (task, migrations, delivery) => {
    const t0 = performance.now();
    const lease = delivery && {
      taskKey: taskLeaseKey(task.runId, task.tenantId),
      streamSeq: delivery.streamSeq,
      deliveryCount: delivery.deliveryCount,
    };
    const client = await connectTenant({
      databaseUrl: task.databaseUrl,
      host: task.host,
      connectTimeoutMs: config.connectTimeoutMs,
      lockTimeoutMs: config.lockTimeoutMs,
      statementTimeoutMs: config.statementTimeoutMs,
      // Names the replica and its lease in pg_stat_activity (63 characters at most).
      applicationName: lease
        ? leaseApplicationName(config.executorId, lease)
        : `sluice-executor:${config.executorId}`.slice(0, 63),
    });
    const connectMs = performance.now() - t0;
    try {
      const fence: LockFence | undefined =
        lease && config.ackWaitMs !== undefined
          ? {
              lease,
              ackWaitMs: config.ackWaitMs,
              ...(onFenced ? { onFenced: (holder: FencedHolder) => onFenced(task, holder) } : {}),
            }
          : undefined;
      const report = await new TenantMigrator(client, migrations, task.host, undefined, fence).migrate({
        targetVersion: task.target,
        runId: task.runId,
        executorId: config.executorId,
        dryRun: task.dryRun,
        journalReads,
        ...(task.rollbackOf !== undefined ? { rollbackOf: task.rollbackOf, force: task.force ?? false } : {}),
        ...(task.allowChangedDown ? { allowChangedDown: true } : {}),
      });
      if (!signals) return { report, connectMs };
      // Counted before the sample, which is the signal's own round trip, not the tenant's.
      const attempt: AttemptSignals = { roundTrips: roundTripsOf(client) };
      if (signals.activity.claim(task.host)) {
        const activity = await sampleHostActivity(client).catch(() => undefined);
        if (activity) attempt.hostActivity = activity;
        else attempt.hostActivityUnavailable = true;
      }
      return { report, connectMs, signals: attempt };
    } finally {
      await client.end().catch(() => undefined);
    }
  };
}
