import { EventEmitter } from 'node:events';

import {
  applyControl,
  initialControlState,
  type RunAcceptedEvent,
  type RunCompletedEvent,
  type RunControlEvent,
  type RunPlannedEvent,
  type RunProgressEvent,
  type TenantLedgerEntry,
  type TenantOutcome,
} from '@sluice/contracts';
import { type QueueSample, RunAggregate, RunTimingBook } from '@sluice/core';

import type { RunState } from './run-state.js';
import { completionOf, progressOf, recordProgress } from './run-verdicts.js';
import { TenantTracker } from './tenant-tracker.js';

export { type CanaryTally, type RunState, runStatusOf, startedAtOf } from './run-state.js';

const SUCCESS = new Set(['migrated', 'upToDate', 'pending', 'rolledBack']);

/** What the book tells listeners (metrics) as it folds. */
export interface RunBookEvents {
  /** An outcome counted: the first terminal outcome of a tenant in a run that is still open. */
  outcomeCounted: [outcome: TenantOutcome];
}

/**
 * The reporter's book of runs: folds run events, control events, tenant outcomes and task ledger
 * entries — in any order across streams, with repeats — into exact run state. No I/O: the service
 * feeds it and publishes what its queries (`completionDue`, `progressDue`) return; queries change
 * nothing.
 */
export class RunBook {
  private readonly runs = new Map<string, RunState>();
  /** Listeners see exactly what the runs count. */
  readonly events = new EventEmitter<RunBookEvents>();

  constructor(private readonly now: () => number = Date.now) {}

  private run(runId: string): RunState {
    let run = this.runs.get(runId);
    if (!run) {
      const at = this.now();
      run = {
        runId,
        control: initialControlState(runId, undefined, 0, new Date(at).toISOString()),
        aggregate: new RunAggregate(),
        timings: new RunTimingBook(),
        lastOutcomeAt: null,
        tenants: new TenantTracker(),
        canaries: { ids: new Set(), succeeded: 0 },
        firstSeenAt: at,
        progress: { done: 0, status: 'planning', samples: [] },
      };
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

  onAccepted(event: RunAcceptedEvent, seq = 0): RunState {
    const run = this.run(event.runId);
    if (!run.accepted) {
      run.accepted = event;
      // Controls folded before the accepted event (none in practice) keep their effect.
      if (run.control.seq === 0) run.control = initialControlState(event.runId, event.rollout, seq, event.acceptedAt);
    }
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

  /** A control event at `seq` in SLUICE_RUNS. True when it changed the run's control state. */
  onControl(event: RunControlEvent, seq: number): boolean {
    const run = this.run(event.runId);
    if (run.completed) return false;
    const next = applyControl(run.control, event, seq);
    if (next === run.control) return false;
    run.control = next;
    return true;
  }

  /** A completed event seen on the stream (ours or another replica's): the run is closed. */
  onCompleted(event: RunCompletedEvent, seq = 0): RunState {
    const run = this.run(event.runId);
    if (!run.completed) {
      run.completed = event;
      run.control = {
        ...run.control,
        final: event.status,
        seq: Math.max(run.control.seq, seq),
        updatedAt: event.finishedAt,
      };
      // The per-tenant detail is no longer needed: the completed event holds the result.
      run.tenants = new TenantTracker();
      run.aggregate = new RunAggregate();
      run.timings = new RunTimingBook();
      run.canaries = { ids: new Set(), succeeded: run.canaries.succeeded };
    }
    // Our own completion is folded before the stream's copy, which brings its sequence.
    if (seq > run.control.seq) run.control = { ...run.control, seq };
    return run;
  }

  /** Returns false for a repeat (the tenant had already settled in this run) or a closed run. */
  onOutcome(outcome: TenantOutcome): boolean {
    const run = this.run(outcome.runId);
    if (run.completed) return false;
    if (!run.aggregate.record(outcome)) return false;
    run.timings.add(outcome);
    const finishedAt = Date.parse(outcome.finishedAt);
    if (Number.isFinite(finishedAt)) run.lastOutcomeAt = Math.max(run.lastOutcomeAt ?? 0, finishedAt);
    run.tenants.settle(outcome.tenantId);
    if (run.canaries.ids.has(outcome.tenantId)) this.tallyCanary(run, outcome.tenantId);
    this.events.emit('outcomeCounted', outcome);
    return true;
  }

  /** A sample of one host's queue (from its consumer), counted for every run still going. */
  onQueueSample(host: string, sample: QueueSample): void {
    for (const run of this.runs.values()) if (run.planned && !run.completed) run.timings.addQueueSample(host, sample);
  }

  /** A task ledger entry at `seq` (ledger stream), written at `at` (ms). True when it changed something. */
  onLedger(runId: string, entry: TenantLedgerEntry, seq: number, at: number): boolean {
    const run = this.run(runId);
    if (run.completed) return false;
    if (entry.kind === 'planned' && entry.task.stage === 'canary' && !run.canaries.ids.has(entry.task.tenantId)) {
      run.canaries.ids.add(entry.task.tenantId);
      if (run.aggregate.statusOf(entry.task.tenantId)) this.tallyCanary(run, entry.task.tenantId);
    }
    return run.tenants.apply(entry, seq, at);
  }

  private tallyCanary(run: RunState, tenantId: string): void {
    const status = run.aggregate.statusOf(tenantId);
    if (status && SUCCESS.has(status)) {
      run.canaries.succeeded += 1;
    } else if (status && !run.canaries.failed) {
      const failure = run.aggregate.failures.find((f) => f.tenantId === tenantId);
      run.canaries.failed = {
        tenantId,
        error: failure?.error ?? status,
        ...(failure?.code ? { code: failure.code } : {}),
      };
    }
  }

  /** The completed event a run is due, or undefined while it is still going (or already closed). */
  completionDue(runId: string): RunCompletedEvent | undefined {
    const run = this.runs.get(runId);
    return run ? completionOf(run, this.now()) : undefined;
  }

  /** A progress event for a run whose count or status moved since its last one, or undefined. */
  progressDue(runId: string): RunProgressEvent | undefined {
    const run = this.runs.get(runId);
    return run ? progressOf(run, this.now()) : undefined;
  }

  /** A progress event was decided for its run: the next one is due when the run moves again. */
  onProgress(event: RunProgressEvent): void {
    const run = this.runs.get(event.runId);
    if (run) recordProgress(run, event);
  }
}
