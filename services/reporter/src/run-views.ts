import { type Bus, readCountedOutcomes } from '@sluice/bus';
import type { RunLostEvent, TenantOutcome, TenantStatus } from '@sluice/contracts';
import { settledCount } from '@sluice/core';

import { type RunState, runStatusOf } from './run-state.js';
import { rateOf, timeReportOf } from './run-verdicts.js';

/** How a run looks over HTTP (`GET /runs`, `GET /runs/:id`). */
export function runSummary(run: RunState, now: number) {
  const counts = run.completed ? { ...run.completed.counts } : { ...run.aggregate.counts };
  const done = settledCount(counts);
  const status = runStatusOf(run);
  const live = !run.completed;
  const rate = live ? rateOf(run, now) : 0;
  const total = run.planned?.total ?? null;
  const parked = live ? run.tenants.parkedCount : 0;
  return {
    runId: run.runId,
    status,
    ...(run.accepted?.rollout?.canary ? { stage: run.control.stage } : {}),
    target: run.accepted?.target ?? null,
    targetVersion: run.accepted?.targetVersion ?? null,
    dryRun: run.accepted?.dryRun ?? false,
    tenants: run.accepted?.tenants ?? null,
    requestedBy: run.accepted?.requestedBy ?? null,
    rollout: run.accepted?.rollout ?? null,
    lint: run.accepted?.lint ?? null,
    counts,
    done,
    total,
    ratePerSec: Math.round(rate * 100) / 100,
    etaMs:
      live && status === 'running' && rate > 0 && total !== null ? Math.round(((total - done) / rate) * 1000) : null,
    parked,
    acceptedAt: run.accepted?.acceptedAt ?? null,
    plannedAt: run.planned?.plannedAt ?? null,
    finishedAt: run.completed?.finishedAt ?? null,
    control: {
      state: run.control.state,
      ...(run.control.note ? { note: run.control.note } : {}),
      ...(run.control.stoppedBy ? { stoppedBy: run.control.stoppedBy } : {}),
    },
    ...(run.completed
      ? { timings: run.completed.timings ?? null, bottleneck: run.completed.bottleneck ?? null }
      : liveTimeReport(run, now)),
    completed: run.completed ?? null,
  };
}

function liveTimeReport(run: RunState, now: number) {
  const report = timeReportOf(run, now);
  return { timings: report.timings ?? null, bottleneck: report.bottleneck ?? null };
}

export type RunSummary = ReturnType<typeof runSummary>;

/**
 * How a run lost with the JetStream store looks over HTTP, as `sluice status` tells it: status
 * `lost`, what the reporter had counted when the store went (`lastKnown`, also as `total`/`done`),
 * and the command that publishes its `completed` from the tenant journals. Its other events,
 * outcomes and tasks went with the store: nothing else is known until it is recovered.
 */
export function lostRunSummary(lost: RunLostEvent) {
  return {
    runId: lost.runId,
    status: 'lost' as const,
    targetVersion: lost.lastKnown.targetVersion ?? null,
    total: lost.lastKnown.total,
    done: lost.lastKnown.settled,
    acceptedAt: lost.lastKnown.acceptedAt ?? null,
    finishedAt: null,
    completed: null,
    lost,
    recover: lost.recover,
  };
}

export type LostRunSummary = ReturnType<typeof lostRunSummary>;

/** One tenant of a run, as listed by `GET /runs/:id/tenants`. */
export interface TenantRow {
  tenantId: string;
  status: TenantStatus | 'unsettled';
  host?: string;
  applied?: number[];
  attempts?: number;
  error?: TenantOutcome['error'];
  finishedAt?: string;
  /** Unsettled tenants: where their task is (`queued`, `parked`, `skipping`). */
  task?: string;
  /** Unsettled tenants: since when (ISO time). */
  since?: string;
}

/**
 * Every settled tenant of a run with `status` (all when undefined), read from the outcome stream:
 * the first terminal outcome of each tenant, as counted. Costs one pass over the run's outcomes.
 */
export async function settledTenants(bus: Bus, runId: string, status: TenantStatus | undefined): Promise<TenantRow[]> {
  const rows: TenantRow[] = [];
  for (const o of await readCountedOutcomes(bus, runId)) {
    if (status && o.status !== status) continue;
    rows.push({
      tenantId: o.tenantId,
      status: o.status,
      ...(o.host ? { host: o.host } : {}),
      applied: o.applied,
      attempts: o.attempts,
      ...(o.error ? { error: o.error } : {}),
      finishedAt: o.finishedAt,
    });
  }
  return rows;
}

/** The tenants of a live run that have no outcome yet, with where their task is. */
export function unsettledTenants(run: RunState): TenantRow[] {
  return [...run.tenants.values()].map((t) => ({
    tenantId: t.tenantId,
    status: 'unsettled' as const,
    host: t.host,
    task: t.copy.kind === 'parked' ? `parked (${t.copy.reason})` : t.copy.kind,
    since: new Date(t.since).toISOString(),
  }));
}
