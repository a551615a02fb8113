import { z } from 'zod';

import { RunIdSchema, TenantIdSchema, VersionSchema } from './request.js';

/** A PostgreSQL URL with no password in it: what may travel on the bus. */
export const SafeDatabaseUrlSchema = z
  .string()
  .max(2048)
  .refine((value) => {
    try {
      const url = new URL(value);
      const secretParam = [...url.searchParams.keys()].some((k) =>
        ['password', 'sslpassword'].includes(k.toLowerCase()),
      );
      return (url.protocol === 'postgres:' || url.protocol === 'postgresql:') && url.password === '' && !secretParam;
    } catch {
      return false;
    }
  }, 'databaseUrl must be a postgres:// URL without a password');

/** Internal: one tenant's work in a run, on `sluice.tasks.<host>`. */
export const TenantTaskSchema = z.object({
  runId: RunIdSchema,
  tenantId: TenantIdSchema,
  /** `postgres://user@host:port/db`, never with a password. */
  databaseUrl: SafeDatabaseUrlSchema,
  /** `host:port`, the unit of flow control. */
  host: z.string().min(1),
  /** The resolved target version (a run's `latest` is pinned when it is planned). */
  target: VersionSchema,
  /** Digest of the migration set the run was planned with; executors with another set apply nothing. */
  digest: z.string().regex(/^[0-9a-f]{64}$/),
  dryRun: z.boolean(),
  plannedAt: z.string(),
  /**
   * Staged rollouts only: `canary` tasks go first; `fleet` tasks wait (executors park them) until
   * the run is promoted. Absent: no staging.
   */
  stage: z.enum(['canary', 'fleet']).optional(),
  /** The tenant's registry tags, carried into its outcome for the fleet state (absent: none). */
  tags: z.record(z.string(), z.string()).optional(),
});
export type TenantTask = z.infer<typeof TenantTaskSchema>;

/**
 * The message id of a tenant's task in a run (`<runId>:<tenantId>`): a re-plan publishes nothing
 * twice, and a second registry row with the same tenantId comes back as a duplicate.
 */
export function taskMsgId(runId: string, tenantId: string): string {
  return `${runId}:${tenantId}`;
}

/**
 * The message id of a task published again in place of the copy announced by ledger entry
 * `supersedes` (`<runId>:<tenantId>:x<seq>`): new to the work queue's duplicate window, and the
 * same on every reporter replica, so two of them doing it at once publish it once.
 */
export function republishedTaskMsgId(runId: string, tenantId: string, supersedes: number): string {
  return `${runId}:${tenantId}:x${supersedes}`;
}
