import { z } from 'zod';

import { RunIdSchema, VersionSchema } from './request.js';

/**
 * A tenant's final state in a run.
 * - `migrated`: versions were applied; `upToDate`: nothing was pending;
 * - `pending`: a dry run found versions to apply (nothing was applied);
 * - `failed`: the tenant could not be migrated (see `error`); `skipped`: not attempted (suspended, cancelled).
 */
export const TENANT_STATUSES = ['migrated', 'upToDate', 'pending', 'failed', 'skipped'] as const;
export const TenantStatusSchema = z.enum(TENANT_STATUSES);
export type TenantStatus = z.infer<typeof TenantStatusSchema>;

/** A failure, as data: what went wrong, whether a retry could help, and where. */
export const OutcomeErrorSchema = z.object({
  /** Stable machine-readable code (`sql_error`, `locked`, `drift`, `dirty`, `invalid_tenant`, ...). */
  code: z.string(),
  message: z.string(),
  transient: z.boolean(),
  sqlState: z.string().optional(),
  /** The migration version involved, when there is one. */
  version: VersionSchema.optional(),
  /** Versions involved in drift. */
  versions: z.array(VersionSchema).optional(),
});
export type OutcomeError = z.infer<typeof OutcomeErrorSchema>;

/** Where a tenant's time went, in milliseconds. */
export const TimingsSchema = z.object({
  /** From planning to the first time an executor picked the task up. */
  queuedMs: z.number().nonnegative().optional(),
  connectMs: z.number().nonnegative().optional(),
  /** Journal read and advisory lock. */
  journalMs: z.number().nonnegative().optional(),
  /** Executing migration SQL (including the journal rows written with it). */
  executeMs: z.number().nonnegative().optional(),
  totalMs: z.number().nonnegative().optional(),
});
export type Timings = z.infer<typeof TimingsSchema>;

/** Internal: the terminal outcome of one tenant in a run, on `sluice.outcomes.<runId>`. */
export const TenantOutcomeSchema = z.object({
  runId: RunIdSchema,
  tenantId: z.string().max(1000),
  status: TenantStatusSchema,
  /** Versions applied by this run (for `migrated`), or that would be (for `pending`). */
  applied: z.array(VersionSchema),
  /** Highest applied version before and after, when the journal was read. */
  fromVersion: VersionSchema.nullable().optional(),
  toVersion: VersionSchema.nullable().optional(),
  host: z.string().optional(),
  executorId: z.string().optional(),
  attempts: z.number().int().nonnegative(),
  error: OutcomeErrorSchema.optional(),
  timings: TimingsSchema.optional(),
  finishedAt: z.string(),
});
export type TenantOutcome = z.infer<typeof TenantOutcomeSchema>;
