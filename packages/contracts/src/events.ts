import { z } from 'zod';

import { LintReportSchema } from './lint.js';
import { TENANT_STATUSES, TenantStatusSchema } from './outcome.js';
import {
  AuditKindSchema,
  RolloutSchema,
  RunIdSchema,
  TargetSchema,
  TenantSelectorSchema,
  VersionSchema,
} from './request.js';
import { BottleneckSchema, RunTimingsSchema } from './timings.js';

/** Final statuses of a run. `partial`: some tenants failed and the others succeeded. */
export const FINAL_RUN_STATUSES = ['succeeded', 'partial', 'failed', 'cancelled'] as const;
/**
 * Every status of a run: `planning` (accepted, tasks being published), `running`, `paused` (no new
 * tenant starts), `cancelling` (cancelled or stopped by its rollout: remaining tenants are being
 * skipped), then one of the final statuses.
 */
export const RUN_STATUSES = ['planning', 'running', 'paused', 'cancelling', ...FINAL_RUN_STATUSES] as const;
export const RunStatusSchema = z.enum(RUN_STATUSES);
export type RunStatus = z.infer<typeof RunStatusSchema>;
export type FinalRunStatus = (typeof FINAL_RUN_STATUSES)[number];

/** Tenant counts of a run. `total` includes every tenant the registry returned for the selector. */
export const RunCountsSchema = z.object({
  total: z.number().int().nonnegative(),
  migrated: z.number().int().nonnegative(),
  upToDate: z.number().int().nonnegative(),
  pending: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  skipped: z.number().int().nonnegative(),
  /** Tenants whose versions were undone (a rollback). Absent (0) in events from before rollbacks. */
  rolledBack: z.number().int().nonnegative().optional(),
});
export type RunCounts = z.infer<typeof RunCountsSchema>;
export { TENANT_STATUSES, TenantStatusSchema };

/** `sluice.runs.<runId>.accepted`: the planner took the request. */
export const RunAcceptedEventSchema = z.object({
  runId: RunIdSchema,
  /** The target as requested. */
  target: TargetSchema,
  /** The version `target` resolved to. */
  targetVersion: VersionSchema,
  digest: z.string(),
  dryRun: z.boolean(),
  tenants: TenantSelectorSchema.optional(),
  requestedBy: z.string().optional(),
  /** The request's staged rollout, when it has one. */
  rollout: RolloutSchema.optional(),
  /**
   * A rollback: the run it undoes (`target` and `targetVersion` are then 0: each tenant goes back
   * to the version that run found), and whether it was forced.
   */
  rollbackOf: z.object({ runId: RunIdSchema, force: z.boolean() }).optional(),
  /** The migration set's lint report, when the linter found anything (ignored findings included). */
  lint: LintReportSchema.optional(),
  /** `fleet-state` when the request trusted the fleet state (absent: verified, every journal read). */
  trust: z.literal('fleet-state').optional(),
  /** A fleet-state audit run (`verify` or `rebuild`): its outcomes correct or rebuild the fleet records. */
  audit: AuditKindSchema.optional(),
  /** The run's trace (W3C trace id) when tracing is on. */
  traceId: z
    .string()
    .regex(/^[0-9a-f]{32}$/)
    .optional(),
  acceptedAt: z.string(),
});
export type RunAcceptedEvent = z.infer<typeof RunAcceptedEventSchema>;

/** `sluice.runs.<runId>.planned`: every tenant has a task (or an outcome); `total` is final. */
export const RunPlannedEventSchema = z.object({
  runId: RunIdSchema,
  total: z.number().int().nonnegative(),
  /** Tasks published to executors. */
  tasks: z.number().int().nonnegative(),
  /** Tenants settled by the planner itself (suspended, or invalid registry rows). */
  skipped: z.number().int().nonnegative(),
  /** Failed by the planner: invalid registry rows, and ids the request named that the registry lacks. */
  invalid: z.number().int().nonnegative(),
  /** Staged rollouts: how many of the tasks are canaries (`stage: "canary"`). */
  canaries: z.number().int().nonnegative().optional(),
  /** `trust: "fleet-state"` runs: tenants settled `upToDate` from their fleet record, with no task. */
  fromFleetState: z.number().int().nonnegative().optional(),
  /** Set when planning itself failed (registry unavailable); the run then fails. */
  error: z.string().optional(),
  plannedAt: z.string(),
});
export type RunPlannedEvent = z.infer<typeof RunPlannedEventSchema>;

/** `sluice.runs.<runId>.progress`: at most once a second while a run moves. */
export const RunProgressEventSchema = z.object({
  runId: RunIdSchema,
  status: RunStatusSchema,
  counts: RunCountsSchema,
  done: z.number().int().nonnegative(),
  /** Tenants settled per second since the run was accepted. */
  ratePerSec: z.number().nonnegative(),
  /** Estimated time left, when the total is known and the rate is positive. */
  etaMs: z.number().nonnegative().nullable(),
  /** Staged rollouts: `canary` until every canary has succeeded, then `fleet`. */
  stage: z.enum(['canary', 'fleet']).optional(),
  at: z.string(),
});
export type RunProgressEvent = z.infer<typeof RunProgressEventSchema>;

export const RunFailureSchema = z.object({
  tenantId: z.string(),
  error: z.string(),
  code: z.string().optional(),
});

/** `sluice.runs.<runId>.completed`: published exactly once per run. */
export const RunCompletedEventSchema = z.object({
  runId: RunIdSchema,
  status: z.enum(FINAL_RUN_STATUSES),
  target: TargetSchema,
  targetVersion: VersionSchema.nullable(),
  dryRun: z.boolean(),
  counts: RunCountsSchema,
  startedAt: z.string(),
  finishedAt: z.string(),
  durationMs: z.number().nonnegative(),
  /** The first failures (capped at {@link MAX_REPORTED_FAILURES}); `failuresTruncated` says if there were more. */
  failures: z.array(RunFailureSchema),
  failuresTruncated: z.boolean(),
  /** Why the run failed as a whole (the registry could not be read, its rollout stopped it). */
  error: z.string().optional(),
  /** A rollback: the run it undid (see the `accepted` event). */
  rollbackOf: z.object({ runId: RunIdSchema, force: z.boolean() }).optional(),
  /** The control that ended the run early: a `cancel`, or a `stop` by its rollout. */
  stoppedBy: z
    .object({
      action: z.enum(['cancel', 'stop']),
      reason: z.string().optional(),
      requestedBy: z.string().optional(),
      at: z.string(),
    })
    .optional(),
  /** Where the run's time went (tenants with timings only). */
  timings: RunTimingsSchema.optional(),
  /** The dominant constraint of the run, with the figures behind it and the lever to pull. */
  bottleneck: BottleneckSchema.optional(),
  /** The run's trace (W3C trace id) when tracing is on: open it in Jaeger. */
  traceId: z
    .string()
    .regex(/^[0-9a-f]{32}$/)
    .optional(),
  /** Of `counts.upToDate`, the tenants taken as current from the fleet state (`trust: "fleet-state"`), journals unread. */
  fromFleetState: z.number().int().nonnegative().optional(),
  /**
   * Set by `sluice runs recover`: computed from the journal rows carrying the runId after the run's
   * events were lost. `notReached`: tenants without such rows (never reached, or found up to date,
   * or failed in a rolled-back file: a journal cannot tell them apart), counted as `skipped`;
   * `unreadable`: tenants whose journal could not be read (also counted as `skipped`).
   */
  recovered: z
    .object({
      notReached: z.number().int().nonnegative(),
      unreadable: z.number().int().nonnegative(),
    })
    .optional(),
});
export type RunCompletedEvent = z.infer<typeof RunCompletedEventSchema>;

export const MAX_REPORTED_FAILURES = 100;

/** The message id of a run event published once per run (`<runId>:accepted`, `:planned`, `:completed`, `:lost`). */
export function runEventMsgId(runId: string, event: 'accepted' | 'planned' | 'completed' | 'lost'): string {
  return `${runId}:${event}`;
}

/** The command that rebuilds a lost run's `completed` event from the tenant journals. */
export function recoverCommand(runId: string): string {
  return `sluice runs recover ${runId}`;
}

/**
 * `lost`: the JetStream store was lost (every stream deleted, the cluster started empty) while the
 * run was in flight, so its tasks, outcomes and earlier events are gone. Published once per run
 * into the new store by a reporter that was following the run. The tenant journals still say what
 * was applied: `recover` is the command that publishes the run's `completed` from them.
 */
export const RunLostEventSchema = z.object({
  runId: RunIdSchema,
  /** Why: the only cause today. */
  reason: z.literal('store_lost'),
  /** What the reporter knew when the store went: status and counts so far (`total` null before `planned`). */
  lastKnown: z.object({
    status: RunStatusSchema,
    total: z.number().int().nonnegative().nullable(),
    settled: z.number().int().nonnegative(),
    targetVersion: VersionSchema.optional(),
    acceptedAt: z.string().optional(),
  }),
  /** `sluice runs recover <runId>`. */
  recover: z.string(),
  detectedAt: z.string(),
  /** The reporter that noticed. */
  by: z.string().max(200).optional(),
});
export type RunLostEvent = z.infer<typeof RunLostEventSchema>;

/** The message id of a rollout decision (`<runId>:rollout:<action>`): one promote, one stop per run. */
export function rolloutMsgId(runId: string, action: 'promote' | 'stop'): string {
  return `${runId}:rollout:${action}`;
}
