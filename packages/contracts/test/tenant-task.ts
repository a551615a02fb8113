import type { TenantTask } from '../src/task.js';

/** A valid task for `tenantId` (its database named after it), with `patch` on top: the contract tests' one task builder. */
export function tenantTask(tenantId = 'acme', patch: Partial<TenantTask> = {}): TenantTask {
  return {
    runId: 'run-1',
    tenantId,
    databaseUrl: `postgres://app@db:5432/${tenantId}`,
    host: 'db:5432',
    target: 4,
    digest: 'a'.repeat(64),
    dryRun: false,
    plannedAt: '2024-01-01T00:00:00.000Z',
    ...patch,
  };
}
