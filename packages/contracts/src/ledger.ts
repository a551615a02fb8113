import { z } from 'zod';

import { TenantIdSchema } from './request.js';
import { TenantTaskSchema } from './task.js';

const SeqSchema = z.number().int().positive();

/** Most tasks one `plannedBatch` ledger entry holds. */
export const LEDGER_BATCH_MAX = 256;

const PlannedTaskSchema = z.object({ task: TenantTaskSchema, taskSeq: SeqSchema });
/** A task as the planner published it, and where (its sequence in SLUICE_TASKS). */
export type PlannedTask = z.infer<typeof PlannedTaskSchema>;

/**
 * Internal: one entry of a run's task ledger, on `sluice.ledger.<runId>`. The ledger is how the
 * reporter knows every task of a run without reading the work queue: it can tell whether a task is
 * still queued (its sequence in SLUICE_TASKS), and publish a lost or parked task again.
 */
export const TaskLedgerEntrySchema = z.discriminatedUnion('kind', [
  /** The planner published the task (message id `<runId>:<tenantId>`) at `taskSeq` in SLUICE_TASKS. */
  z.object({ kind: z.literal('planned'), task: TenantTaskSchema, taskSeq: SeqSchema }),
  /**
   * The same for many tasks at once (the planner's form): one ledger message per batch of up to
   * `LEDGER_BATCH_MAX` tasks instead of one per tenant.
   */
  z.object({ kind: z.literal('plannedBatch'), tasks: z.array(PlannedTaskSchema).min(1).max(LEDGER_BATCH_MAX) }),
  /**
   * An executor took the task while the run was paused, or before its canaries succeeded, and
   * acknowledged it without starting the tenant: the reporter publishes it again when the run may go on.
   */
  z.object({
    kind: z.literal('parked'),
    task: TenantTaskSchema,
    taskSeq: SeqSchema,
    reason: z.enum(['paused', 'canary']),
    executorId: z.string().optional(),
    at: z.string(),
  }),
  /**
   * The reporter published the task again, replacing the ledger entry `supersedes`: a task lost
   * from the work queue, a parked one, or a stranded one (still queued, but below its host
   * consumer's ack floor: never to be delivered; that copy is removed).
   */
  z.object({
    kind: z.literal('republished'),
    tenantId: TenantIdSchema,
    taskSeq: SeqSchema,
    supersedes: SeqSchema,
    cause: z.enum(['lost', 'parked', 'stranded']),
    at: z.string(),
  }),
]);
export type TaskLedgerEntry = z.infer<typeof TaskLedgerEntrySchema>;
/** An entry about one tenant (a `plannedBatch` is read as one `planned` entry per task). */
export type TenantLedgerEntry = Exclude<TaskLedgerEntry, { kind: 'plannedBatch' }>;

/**
 * The message id of a ledger entry, derived from what it records, so a repeat (another replica, a
 * retry, a redelivered park) is one entry: `planned` per tenant, `plannedBatch` per batch (its
 * first task's sequence and its size), `parked` per delivered copy, `republished` per tenant and
 * copy replaced (tenants of one batch share the entry their copies are announced by).
 */
export function ledgerEntryMsgId(runId: string, entry: TaskLedgerEntry): string {
  switch (entry.kind) {
    case 'planned':
      return `${runId}:planned:${entry.task.tenantId}`;
    case 'plannedBatch':
      return `${runId}:plannedBatch:${entry.tasks[0]!.taskSeq}:${entry.tasks.length}`;
    case 'parked':
      return `${runId}:parked:${entry.taskSeq}`;
    case 'republished':
      return `${runId}:republished:${entry.tenantId}:${entry.supersedes}`;
  }
}

/** The tasks a ledger entry says were planned: one for `planned`, each of a `plannedBatch`, none otherwise. */
export function plannedTasksOf(entry: TaskLedgerEntry): PlannedTask[] {
  if (entry.kind === 'planned') return [{ task: entry.task, taskSeq: entry.taskSeq }];
  if (entry.kind === 'plannedBatch') return entry.tasks;
  return [];
}

/** A ledger entry as entries about one tenant each: a `plannedBatch` as one `planned` per task. */
export function tenantLedgerEntries(entry: TaskLedgerEntry): TenantLedgerEntry[] {
  return entry.kind === 'plannedBatch' ? entry.tasks.map((p) => ({ kind: 'planned', ...p })) : [entry];
}
