import type {
  RunAcceptedEvent,
  RunCompletedEvent,
  RunPlannedEvent,
  RunProgressEvent,
  RunStatus,
  TenantOutcome,
} from '@sluice/contracts';
import { finalStatusOf, RunAggregate } from '@sluice/core';

/** Everything the reporter knows of one run. */
export interface RunState {
  runId: string;
  accepted?: RunAcceptedEvent;
  planned?: RunPlannedEvent;
  completed?: RunCompletedEvent;
  aggregate: RunAggregate;
  /** When the first event of the run was seen, for runs whose accepted event is missing. */
  firstSeenAt: number;
  /** `done` at the last progress event. */
  progressDone: number;
}

export function runStatusOf(run: RunState): RunStatus {
  if (run.completed) return run.completed.status;
  return run.planned ? 'running' : 'planning';
}

/**
 * The reporter's book of runs: folds run events and tenant outcomes, in any order and with
 * repeats, into exact run state. Pure; the service feeds it and publishes what it returns.
 */
export class RunBook {
  private readonly runs = new Map<string, RunState>();

  constructor(private readonly now: () => number = Date.now) {}

  private run(runId: string): RunState {
    let run = this.runs.get(runId);
    if (!run) {
      run = { runId, aggregate: new RunAggregate(), firstSeenAt: this.now(), progressDone: 0 };
      this.runs.set(runId, run);
    }
    return run;
  }

  get(runId: string): RunState | undefined {
    return this.runs.get(runId);
  }

  list(): RunState[] {
    return [...this.runs.values()];
  }

  onAccepted(event: RunAcceptedEvent): RunState {
    const run = this.run(event.runId);
    run.accepted ??= event;
    return run;
  }

  onPlanned(event: RunPlannedEvent): RunState {
    const run = this.run(event.runId);
    if (!run.planned) {
      run.planned = event;
      run.aggregate.setTotal(event.total);
    }
    return run;
  }

  /** A completed event seen on the stream (ours or another replica's): the run is closed. */
  onCompleted(event: RunCompletedEvent): RunState {
    const run = this.run(event.runId);
    run.completed ??= event;
    return run;
  }

  /** Returns false for a repeat (the tenant had already settled in this run). */
  onOutcome(outcome: TenantOutcome): boolean {
    return this.run(outcome.runId).aggregate.record(outcome);
  }

  /** The completed event a run is due, or undefined while it is still going (or already closed). */
  completionDue(runId: string): RunCompletedEvent | undefined {
    const run = this.runs.get(runId);
    if (!run || run.completed || !run.planned) return undefined;
    const planningFailed = run.planned.error !== undefined;
    if (!planningFailed && !run.aggregate.complete) return undefined;
    const startedAtMs = run.accepted ? Date.parse(run.accepted.acceptedAt) : run.firstSeenAt;
    const finishedAtMs = this.now();
    return {
      runId,
      status: planningFailed ? 'failed' : finalStatusOf(run.aggregate.counts),
      target: run.accepted?.target ?? 'latest',
      targetVersion: run.accepted?.targetVersion ?? null,
      dryRun: run.accepted?.dryRun ?? false,
      counts: { ...run.aggregate.counts },
      startedAt: new Date(startedAtMs).toISOString(),
      finishedAt: new Date(finishedAtMs).toISOString(),
      durationMs: Math.max(0, finishedAtMs - startedAtMs),
      failures: [...run.aggregate.failures],
      failuresTruncated: run.aggregate.failuresTruncated,
      ...(planningFailed ? { error: run.planned.error } : {}),
    };
  }

  /** A progress event for a run that moved since its last one, or undefined. */
  progressDue(runId: string): RunProgressEvent | undefined {
    const run = this.runs.get(runId);
    if (!run || run.completed) return undefined;
    const done = run.aggregate.done;
    if (done === run.progressDone) return undefined;
    run.progressDone = done;
    const startedAtMs = run.accepted ? Date.parse(run.accepted.acceptedAt) : run.firstSeenAt;
    const elapsedSec = Math.max(0.001, (this.now() - startedAtMs) / 1000);
    const ratePerSec = done / elapsedSec;
    const total = run.aggregate.total;
    return {
      runId,
      status: runStatusOf(run),
      counts: { ...run.aggregate.counts },
      done,
      ratePerSec: Math.round(ratePerSec * 100) / 100,
      etaMs: total !== null && ratePerSec > 0 ? Math.round(((total - done) / ratePerSec) * 1000) : null,
      at: new Date(this.now()).toISOString(),
    };
  }
}
