import { z } from 'zod';

import { RunIdSchema, TenantIdSchema, VersionSchema } from './request.js';

/** A PostgreSQL URL with no password in it: what may travel on the bus. */
export const SafeDatabaseUrlSchema = z
  .string()
  .max(2048)
  .refine((value) => {
    try {
      const url = new URL(value);
      const secretParam = [...url.searchParams.keys()].some((k) => ['password', 'sslpassword'].includes(k.toLowerCase()));
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
});
export type TenantTask = z.infer<typeof TenantTaskSchema>;
