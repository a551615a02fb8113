import { type Bus, readLastJson } from '@sluice/bus';
import {
  type MigrateRequest,
  RunAcceptedEventSchema,
  runEventSubject,
  STREAMS,
  type TenantSelector,
} from '@sluice/contracts';

/** Where a rollback finds the run it undoes: that run's events. */
export interface RunEventLookup {
  /** The run's `accepted` event as stored, or null when there is none. */
  accepted(runId: string): Promise<unknown>;
  /** Whether the run has its `completed` event. */
  completed(runId: string): Promise<boolean>;
}

/** The run events in `SLUICE_RUNS`. */
export function busRunEventLookup(bus: Bus): RunEventLookup {
  return {
    accepted: (runId) => readLastJson(bus, STREAMS.runs.name, runEventSubject(runId, 'accepted')),
    completed: async (runId) =>
      (await readLastJson(bus, STREAMS.runs.name, runEventSubject(runId, 'completed'))) !== null,
  };
}

export type RollbackScope = { ok: true; tenants: TenantSelector | undefined } | { ok: false; reasons: string[] };

/**
 * Checks that a rollback request names a run that can be undone — one that exists, changed
 * something (not a dry run, not itself a rollback) and has completed — and returns the tenants it
 * covers: the request's own selector, else the undone run's. Each executor then decides from the
 * tenant's journal what, if anything, that run did there.
 */
export async function rollbackScope(request: MigrateRequest, runs: RunEventLookup): Promise<RollbackScope> {
  const undone = request.rollback!.runId;
  if (undone === request.runId) return { ok: false, reasons: ['rollback.runId: a run cannot roll itself back'] };
  const parsed = RunAcceptedEventSchema.safeParse(await runs.accepted(undone));
  if (!parsed.success) return { ok: false, reasons: [`rollback.runId: run ${undone} does not exist`] };
  const accepted = parsed.data;
  if (accepted.dryRun)
    return { ok: false, reasons: [`rollback.runId: run ${undone} was a dry run; it changed nothing`] };
  if (accepted.rollbackOf) {
    return {
      ok: false,
      reasons: [
        `rollback.runId: run ${undone} is itself a rollback (of ${accepted.rollbackOf.runId}); migrate forward to redo what it undid`,
      ],
    };
  }
  if (!(await runs.completed(undone))) {
    return {
      ok: false,
      reasons: [
        `rollback.runId: run ${undone} has not completed; cancel it (sluice cancel ${undone}) and wait for it to end`,
      ],
    };
  }
  return { ok: true, tenants: request.tenants ?? accepted.tenants };
}
