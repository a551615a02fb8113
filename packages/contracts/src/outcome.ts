import { z } from 'zod';

import { RunIdSchema, VersionSchema } from './request.js';

/**
 * A tenant's final state in a run.
 * - `migrated`: versions were applied; `upToDate`: nothing was pending;
 * - `rolledBack`: versions were undone by their down files (a lower target, or a rollback of a run);
 * - `pending`: a dry run found versions to apply (nothing was applied);
 * - `failed`: the tenant could not be migrated (see `error`); `skipped`: not attempted (suspended, cancelled).
 */
export const TENANT_STATUSES = ['migrated', 'upToDate', 'pending', 'failed', 'skipped', 'rolledBack'] as const;
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

/**
 * Where a tenant's time went, in milliseconds. From `plannedAt` to `finishedAt` the parts add up:
 * `queuedMs + lockWaitMs + unavailableMs + retryDelayMs + totalMs` (the last attempt), give or
 * take clock skew between planner and executor. Each `...WaitMs` part holds both the failed
 * attempts of that cause and the back-off that followed them.
 */
export const TimingsSchema = z.object({
  /** From planning to the first pickup by an executor, less any time the host's breaker was open. */
  queuedMs: z.number().nonnegative().optional(),
  /** Opening the connection (TCP, TLS, startup, authentication) on the last attempt. */
  connectMs: z.number().nonnegative().optional(),
  /** Journal read and advisory lock on the last attempt (one round trip when up to date). */
  journalMs: z.number().nonnegative().optional(),
  /** Executing migration SQL with its journal rows, as the executor saw it (network included). */
  executeMs: z.number().nonnegative().optional(),
  /** The part of `executeMs` the database itself spent (from the journal rows); the rest is network. */
  serverMs: z.number().nonnegative().optional(),
  /** Time lost to contention: attempts that hit a lock or a full connection table, and the waits after them. */
  lockWaitMs: z.number().nonnegative().optional(),
  /** Time lost to an unreachable host: failed connects, an open breaker, and the waits after them. */
  unavailableMs: z.number().nonnegative().optional(),
  /** Time lost to other transient failures and their back-off. */
  retryDelayMs: z.number().nonnegative().optional(),
  /** Executor slot time spent on this tenant over all attempts (busy time). */
  workMs: z.number().nonnegative().optional(),
  /** The last attempt, connect to unlock. */
  totalMs: z.number().nonnegative().optional(),
});
export type Timings = z.infer<typeof TimingsSchema>;

/**
 * The host's own view at one instant, sampled from `pg_stat_activity` (client backends other than
 * the sampler) and `pg_stat_replication`: how many sessions were active, and on what they waited.
 */
export const HostActivitySchema = z.object({
  /** Sessions in state `active`. */
  active: z.number().int().nonnegative(),
  /** Active with no wait event: running on a CPU, or waiting for one. */
  onCpu: z.number().int().nonnegative(),
  /** Active and waiting on a heavyweight lock, a lightweight lock, I/O, or the client. */
  lock: z.number().int().nonnegative(),
  lwlock: z.number().int().nonnegative(),
  io: z.number().int().nonnegative(),
  client: z.number().int().nonnegative(),
  /** Sessions whose state the role may not read (no `pg_read_all_stats`). */
  hidden: z.number().int().nonnegative(),
  /** The largest replay lag of the host's replicas, when it has any. */
  replayLagMs: z.number().nonnegative().optional(),
});
export type HostActivity = z.infer<typeof HostActivitySchema>;

/**
 * What the executor saw around one tenant's last attempt that tells a saturated host from a slow
 * network or a saturated executor (issue 15). All optional: older executors send none.
 */
export const AttemptSignalsSchema = z.object({
  /** Messages sent on the tenant's connection after connecting (each one round trip), the journal read included. */
  roundTrips: z.number().int().nonnegative().optional(),
  /** The executor's CPU use over its last sampling window, as a share of one core. */
  executorCpu: z.number().nonnegative().optional(),
  /** The executor's mean event-loop delay over its last sampling window. */
  loopDelayMs: z.number().nonnegative().optional(),
  /** Share of that window the executor's event loop spent running callbacks (0–1). */
  loopBusy: z.number().min(0).max(1).optional(),
  /** The executor's adaptive limit for the host when the tenant settled. */
  hostLimit: z.number().int().nonnegative().optional(),
  /** A sample of the host's sessions taken on this tenant's connection (at most one per host per interval). */
  hostActivity: HostActivitySchema.optional(),
  /** `true` when the sample was asked for and the role could not read it. */
  hostActivityUnavailable: z.boolean().optional(),
});
export type AttemptSignals = z.infer<typeof AttemptSignalsSchema>;

/** Internal: the terminal outcome of one tenant in a run, on `sluice.outcomes.<runId>`. */
export const TenantOutcomeSchema = z.object({
  runId: RunIdSchema,
  tenantId: z.string().max(1000),
  status: TenantStatusSchema,
  /** Versions applied by this run (for `migrated`), or that would be (for `pending`). */
  applied: z.array(VersionSchema),
  /** Versions undone by this run, newest first (for `rolledBack`), or that would be (for `pending`). */
  rolledBack: z.array(VersionSchema).optional(),
  /** Highest applied version before and after, when the journal was read. */
  fromVersion: VersionSchema.nullable().optional(),
  toVersion: VersionSchema.nullable().optional(),
  host: z.string().optional(),
  executorId: z.string().optional(),
  /** The executor's global concurrency (slots), for its busy/idle share. */
  executorSlots: z.number().int().positive().optional(),
  attempts: z.number().int().nonnegative(),
  error: OutcomeErrorSchema.optional(),
  timings: TimingsSchema.optional(),
  signals: AttemptSignalsSchema.optional(),
  finishedAt: z.string(),
  /** The tenant's registry tags, as its task carried them (for the fleet state). */
  tags: z.record(z.string(), z.string()).optional(),
  /** `fleet-state`: settled from the fleet state by a `trust: "fleet-state"` run; the journal was not read. */
  from: z.literal('fleet-state').optional(),
});
export type TenantOutcome = z.infer<typeof TenantOutcomeSchema>;

/**
 * The message id of a tenant's outcome in a run (`<runId>:<tenantId>`). Every service that settles
 * a tenant — the planner, an executor, a reporter — publishes under it, so whichever outcome comes
 * first is the one stored: a repeat inside the duplicate window is dropped by the server.
 */
export function outcomeMsgId(runId: string, tenantId: string): string {
  return `${runId}:${tenantId}`;
}

/** Who settled a tenant, and after how many attempts: what every outcome says besides its result. */
export interface OutcomeSource {
  runId: string;
  tenantId: string;
  host?: string;
  executorId?: string;
  executorSlots?: number;
  attempts: number;
  /** ISO time; now when absent. */
  finishedAt?: string;
  /** The tenant's registry tags (from its task). */
  tags?: Record<string, string>;
}

/** What became of the tenant. */
export interface OutcomeResult {
  status: TenantStatus;
  applied?: number[];
  /** Versions undone (or, in a dry run, that would be), newest first. */
  rolledBack?: number[];
  fromVersion?: number | null;
  toVersion?: number | null;
  error?: OutcomeError;
  timings?: Timings;
  signals?: AttemptSignals;
  /** `fleet-state`: taken from the tenant's fleet record, its journal unread. */
  from?: 'fleet-state';
}

/** Builds an outcome (`applied` defaults to none, `finishedAt` to now): the one shape every settler uses. */
export function tenantOutcome(source: OutcomeSource, result: OutcomeResult): TenantOutcome {
  return {
    runId: source.runId,
    tenantId: source.tenantId,
    status: result.status,
    applied: result.applied ?? [],
    ...(result.rolledBack && result.rolledBack.length > 0 ? { rolledBack: result.rolledBack } : {}),
    ...(result.fromVersion !== undefined ? { fromVersion: result.fromVersion } : {}),
    ...(result.toVersion !== undefined ? { toVersion: result.toVersion } : {}),
    ...(source.host !== undefined ? { host: source.host } : {}),
    ...(source.executorId !== undefined ? { executorId: source.executorId } : {}),
    ...(source.executorSlots !== undefined ? { executorSlots: source.executorSlots } : {}),
    attempts: source.attempts,
    ...(result.error ? { error: result.error } : {}),
    ...(result.timings ? { timings: result.timings } : {}),
    ...(result.signals ? { signals: result.signals } : {}),
    finishedAt: source.finishedAt ?? new Date().toISOString(),
    ...(source.tags && Object.keys(source.tags).length > 0 ? { tags: source.tags } : {}),
    ...(result.from ? { from: result.from } : {}),
  };
}

/** A `failed` outcome with the error that ended the tenant. */
export function failedOutcome(source: OutcomeSource, error: OutcomeError): TenantOutcome {
  return tenantOutcome(source, { status: 'failed', error });
}

/**
 * A `skipped` outcome: not attempted. With a reason (a cancelled or stopped run), it is carried as
 * a permanent error with that code; without one (a suspended tenant), there is no error.
 */
export function skippedOutcome(source: OutcomeSource, reason?: { code: string; message: string }): TenantOutcome {
  return tenantOutcome(source, { status: 'skipped', ...(reason ? { error: { ...reason, transient: false } } : {}) });
}
