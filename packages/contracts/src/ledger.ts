import { z } from 'zod';

import { TenantIdSchema } from './request.js';
import { TenantTaskSchema } from './task.js';

const SeqSchema = z.number().int().positive();

/**
 * Internal: one entry of a run's task ledger, on `sluice.ledger.<runId>`. The ledger is how the
 * reporter knows every task of a run without reading the work queue: it can tell whether a task is
 * still queued (its sequence in SLUICE_TASKS), and publish a lost or parked task again.
 */
export const TaskLedgerEntrySchema = z.discriminatedUnion('kind', [
  /** The planner published the task (message id `<runId>:<tenantId>`) at `taskSeq` in SLUICE_TASKS. */
  z.object({ kind: z.literal('planned'), task: TenantTaskSchema, taskSeq: SeqSchema }),
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
  /** The reporter published the task again, replacing the ledger entry `supersedes` (a lost or parked task). */
  z.object({
    kind: z.literal('republished'),
    tenantId: TenantIdSchema,
    taskSeq: SeqSchema,
    supersedes: SeqSchema,
    cause: z.enum(['lost', 'parked']),
    at: z.string(),
  }),
]);
export type TaskLedgerEntry = z.infer<typeof TaskLedgerEntrySchema>;

/**
 * The message id of a ledger entry, derived from what it records, so a repeat (another replica, a
 * retry, a redelivered park) is one entry: `planned` per tenant, `parked` per delivered copy,
 * `republished` per copy replaced.
 */
export function ledgerEntryMsgId(runId: string, entry: TaskLedgerEntry): string {
  switch (entry.kind) {
    case 'planned':
      return `${runId}:planned:${entry.task.tenantId}`;
    case 'parked':
      return `${runId}:parked:${entry.taskSeq}`;
    case 'republished':
      return `${runId}:republished:${entry.supersedes}`;
  }
}
