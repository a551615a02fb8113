import type { Bottleneck, RunCompletedEvent, RunProgressEvent, RunTimings } from '@sluice/contracts';
import { classifyBottleneck, finalStatusOf } from '@sluice/core';

import { type RunState, runStatusOf, startedAtOf } from './run-state.js';

/** What a staged rollout asks for now: let the fleet start, or stop the run. */
export type RolloutVerdict = { action: 'promote' } | { action: 'stop'; reason: string };

/** How far back the rate of a progress event looks. */
const RATE_WINDOW_MS = 30_000;

/**
 * Applies a run's rollout rules to what has settled so far:
 * - a canary that did not succeed stops the run;
 * - more than `maxFailures` failures stop it;
 * - failures over `maxFailureRate` of the total stop it (that share can no longer be met), and so
 *   does a failed share of settled tenants over the rate once `ceil(1 / rate)` (or all) have settled;
 * - once every canary has succeeded, the fleet is promoted.
 */
export function rolloutVerdict(run: RunState): RolloutVerdict | undefined {
  const rollout = run.accepted?.rollout;
  if (!rollout || run.completed || run.control.state === 'cancelling' || run.planned?.error) return undefined;
  const counts = run.aggregate.counts;
  const settled = run.aggregate.done;
  const total = run.aggregate.total;
  const failed = run.canaries.failed;
  if (failed)
    return {
      action: 'stop',
      reason: `canary ${failed.tenantId} failed${failed.code ? ` [${failed.code}]` : ''}: ${failed.error}`,
    };
  if (rollout.maxFailures !== undefined && counts.failed > rollout.maxFailures) {
    return { action: 'stop', reason: `${counts.failed} tenants failed, more than maxFailures ${rollout.maxFailures}` };
  }
  const rate = rollout.maxFailureRate;
  if (rate !== undefined && counts.failed > 0) {
    const sample = rate > 0 ? Math.ceil(1 / rate) : 1;
    const judged = total !== null ? Math.min(total, sample) : sample;
    if ((total !== null && counts.failed > rate * total) || (settled >= judged && counts.failed / settled > rate)) {
      return {
        action: 'stop',
        reason: `${counts.failed} of ${settled} settled tenants failed, more than maxFailureRate ${rate}`,
      };
    }
  }
  if (run.control.stage === 'canary') {
    const expected = run.planned?.canaries ?? rollout.canary ?? 0;
    const allPlanned = run.planned !== undefined || run.canaries.ids.size >= expected;
    if (allPlanned && run.canaries.succeeded >= expected) return { action: 'promote' };
  }
  return undefined;
}

/**
 * The completed event of a run whose tenants have all settled (or whose planning failed), or
 * undefined. A cancelled run ends `cancelled`; a run stopped by its rollout — or whose failures
 * pass its thresholds by the end — ends `failed`, with the reason in `error`.
 */
export function completionOf(run: RunState, now: number): RunCompletedEvent | undefined {
  if (run.completed || !run.planned) return undefined;
  const planningFailed = run.planned.error !== undefined;
  if (!planningFailed && !run.aggregate.complete) return undefined;
  const stop = run.control.stoppedBy;
  const verdict = stop ? undefined : rolloutVerdict(run);
  const startedAtMs = startedAtOf(run);
  let status: RunCompletedEvent['status'] = finalStatusOf(run.aggregate.counts);
  let error = run.planned.error;
  if (planningFailed) status = 'failed';
  else if (stop?.action === 'cancel') status = 'cancelled';
  else if (stop?.action === 'stop') {
    status = 'failed';
    error = `rollout stopped the run${stop.reason ? `: ${stop.reason}` : ''}`;
  } else if (verdict?.action === 'stop') {
    status = 'failed';
    error = `rollout stopped the run: ${verdict.reason}`;
  }
  return {
    runId: run.runId,
    status,
    target: run.accepted?.target ?? 'latest',
    targetVersion: run.accepted?.targetVersion ?? null,
    dryRun: run.accepted?.dryRun ?? false,
    ...(run.accepted?.rollbackOf ? { rollbackOf: run.accepted.rollbackOf } : {}),
    // A rollback always says how many tenants it took back, 0 included.
    counts: { ...(run.accepted?.rollbackOf ? { rolledBack: 0 } : {}), ...run.aggregate.counts },
    startedAt: new Date(startedAtMs).toISOString(),
    finishedAt: new Date(now).toISOString(),
    durationMs: Math.max(0, now - startedAtMs),
    failures: [...run.aggregate.failures],
    failuresTruncated: run.aggregate.failuresTruncated,
    ...(error !== undefined ? { error } : {}),
    ...timeReportOf(run, now),
    ...(stop && (stop.action === 'cancel' || stop.action === 'stop')
      ? { stoppedBy: { ...stop, action: stop.action } }
      : {}),
    ...(run.planned.fromFleetState !== undefined ? { fromFleetState: run.planned.fromFleetState } : {}),
  };
}

/**
 * Where a run's time went and its bottleneck, while it runs or at its end: wall time from its
 * start to its last outcome once every tenant has settled (to now before that), planning from
 * accepted to planned.
 */
export function timeReportOf(run: RunState, now: number): { timings?: RunTimings; bottleneck?: Bottleneck } {
  if (run.timings.totals.tenants === 0) return {};
  const startedAt = startedAtOf(run);
  // A run whose tenants have all settled ended with its last outcome, also when a restarted
  // reporter replays it long after; one still going runs until now.
  const end = run.aggregate.complete && run.lastOutcomeAt !== null ? Math.max(startedAt, run.lastOutcomeAt) : now;
  const plannedAt = run.planned ? Date.parse(run.planned.plannedAt) : Number.NaN;
  const wallMs = Math.max(0, end - startedAt);
  const timings = run.timings.snapshot({
    wallMs,
    planningMs: Number.isFinite(plannedAt) && run.accepted ? Math.max(0, plannedAt - startedAt) : null,
  });
  const bottleneck = classifyBottleneck(timings, run.timings.whatIf(wallMs));
  return { timings, ...(bottleneck ? { bottleneck } : {}) };
}

/** Tenants settled per second over the last half minute (since the start while younger). */
export function rateOf(run: RunState, now: number): number {
  const samples = run.progress.samples;
  const first = samples[0] ?? { at: startedAtOf(run), done: 0 };
  const seconds = (now - first.at) / 1000;
  return seconds > 0 ? Math.max(0, (run.aggregate.done - first.done) / seconds) : 0;
}

/** True when a run's count or status moved since its last progress event. */
export function progressMoved(run: RunState): boolean {
  return !run.completed && (run.aggregate.done !== run.progress.done || runStatusOf(run) !== run.progress.status);
}

/** The run's (time, done) samples within the rate window, keeping one at or before its start so the rate spans it. */
function samplesInWindow(run: RunState, now: number): Array<{ at: number; done: number }> {
  const samples = run.progress.samples.length > 0 ? run.progress.samples : [{ at: startedAtOf(run), done: 0 }];
  let first = 0;
  while (first < samples.length - 1 && samples[first + 1]!.at <= now - RATE_WINDOW_MS) first += 1;
  return samples.slice(first);
}

/**
 * A progress event when a run's count or status moved since its last one (`undefined` otherwise),
 * with the rate over recent samples and the time left at that rate (null while unknown or paused).
 * A query: it changes nothing; {@link recordProgress} notes the event once it is decided.
 */
export function progressOf(run: RunState, now: number): RunProgressEvent | undefined {
  if (!progressMoved(run)) return undefined;
  const done = run.aggregate.done;
  const status = runStatusOf(run);
  const first = samplesInWindow(run, now)[0]!;
  const seconds = (now - first.at) / 1000;
  const rate = seconds > 0 ? Math.max(0, (done - first.done) / seconds) : 0;
  const total = run.aggregate.total;
  const moving = status === 'running' && rate > 0 && total !== null;
  return {
    runId: run.runId,
    status,
    counts: { ...run.aggregate.counts },
    done,
    ratePerSec: Math.round(rate * 100) / 100,
    etaMs: moving ? Math.round(((total - done) / rate) * 1000) : null,
    ...(run.accepted?.rollout?.canary ? { stage: run.control.stage } : {}),
    at: new Date(now).toISOString(),
  };
}

/** Notes a progress event of the run as its last one: what it said, and a sample for the rate. */
export function recordProgress(run: RunState, event: RunProgressEvent): void {
  const at = Date.parse(event.at);
  run.progress = {
    done: event.done,
    status: event.status,
    samples: [...samplesInWindow(run, at), { at, done: event.done }],
  };
}
