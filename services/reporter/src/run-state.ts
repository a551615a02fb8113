import {
  type RunAcceptedEvent,
  type RunCompletedEvent,
  type RunControlState,
  type RunPlannedEvent,
  type RunStatus,
  runStatus,
} from '@sluice/contracts';
import type { RunAggregate, RunTimingBook } from '@sluice/core';

import type { TenantTracker } from './tenant-tracker.js';

/** The canaries of a staged rollout, as far as the ledger and the outcomes tell. */
export interface CanaryTally {
  ids: Set<string>;
  succeeded: number;
  /** The first canary that did not succeed. */
  failed?: { tenantId: string; error: string; code?: string };
}

/** Everything the reporter knows of one run. */
export interface RunState {
  runId: string;
  accepted?: RunAcceptedEvent;
  planned?: RunPlannedEvent;
  completed?: RunCompletedEvent;
  /** Control state folded from the run's events (what executors obey). */
  control: RunControlState;
  aggregate: RunAggregate;
  /** Where the run's time went, summed from its outcomes' timings and the queue samples. */
  timings: RunTimingBook;
  /** When the last counted outcome finished (ms), for the run's wall time. */
  lastOutcomeAt: number | null;
  /** Unsettled tenants, from the task ledger (empty once the run has completed). */
  tenants: TenantTracker;
  canaries: CanaryTally;
  /** When the first event of the run was seen, for runs whose accepted event is missing. */
  firstSeenAt: number;
  /** What the last progress event said, and recent (time, done) samples for the rate. */
  progress: { done: number; status: RunStatus; samples: Array<{ at: number; done: number }> };
}

export function runStatusOf(run: RunState): RunStatus {
  return runStatus(run.control, { planned: run.planned !== undefined, completed: run.completed?.status });
}

export function startedAtOf(run: RunState): number {
  return run.accepted ? Date.parse(run.accepted.acceptedAt) : run.firstSeenAt;
}
