import type { TenantTask } from '@sluice/contracts';
import type { MigrationSet } from '@sluice/core';
import { connectTenant, type MigrationReport, TenantMigrator } from '@sluice/migrator';

import type { ExecutorConfig } from './config.js';

/**
 * The work of one tenant: connect, migrate, disconnect. A port, so a benchmark can measure the
 * pipeline without databases.
 */
export type TenantWork = (
  task: TenantTask,
  migrations: MigrationSet,
) => Promise<{ report: MigrationReport; connectMs: number }>;

/** The tenant's own database through `pg`: a session named after the replica and run, the migrator, then close. */
export function postgresTenantWork(
  config: Pick<ExecutorConfig, 'executorId' | 'lockTimeoutMs' | 'statementTimeoutMs' | 'connectTimeoutMs'>,
): TenantWork {
  return async (task, migrations) => {
    const t0 = performance.now();
    const client = await connectTenant({
      databaseUrl: task.databaseUrl,
      host: task.host,
      connectTimeoutMs: config.connectTimeoutMs,
      lockTimeoutMs: config.lockTimeoutMs,
      statementTimeoutMs: config.statementTimeoutMs,
      // Names the replica and run in pg_stat_activity (63 characters at most).
      applicationName: `sluice-executor:${config.executorId}:${task.runId}`.slice(0, 63),
    });
    const connectMs = performance.now() - t0;
    try {
      const report = await new TenantMigrator(client, migrations, task.host).migrate({
        targetVersion: task.target,
        runId: task.runId,
        executorId: config.executorId,
        dryRun: task.dryRun,
      });
      return { report, connectMs };
    } finally {
      await client.end().catch(() => undefined);
    }
  };
}
