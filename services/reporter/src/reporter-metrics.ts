import type { FleetStore } from '@sluice/bus';
import { FLEET_STATUSES } from '@sluice/contracts';
import { Counter, Gauge, Histogram, type Registry } from '@sluice/telemetry';

import type { QueueSampler, QueueSampleSet } from './queue-sampler.js';
import type { RunBook, RunState } from './run-book.js';
import { rateOf } from './run-verdicts.js';

/** A tenant takes milliseconds (up to date) to many minutes (a long backfill). */
const TENANT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];

export interface ReporterMetricsSource {
  /** The run book: its runs are read at scrape time, and the outcomes it counts are heard as it counts them. */
  book: Pick<RunBook, 'list' | 'events'>;
  /** The queue sampler, whose latest sample set is read at scrape time. */
  sampler: Pick<QueueSampler, 'latest'>;
  /** The fleet state, whose summary is read at scrape time (absent: no fleet gauge). */
  fleet?: Pick<FleetStore, 'summary'>;
  now?: () => number;
}

/** Runs the reporter is still following: seen accepted or planned, not completed. */
export function activeRuns(runs: RunState[]): RunState[] {
  return runs.filter((r) => !r.completed && (r.accepted !== undefined || r.planned !== undefined));
}

/**
 * The reporter's Prometheus metrics: every host's queue (waiting, in flight over all executors,
 * limit) from the queue sampler, outcomes and tenant durations by status, and per active run its
 * throughput. Queue and run gauges are read at scrape time, so a host or run that is gone leaves
 * no stale series behind.
 */
export function registerReporterMetrics(registry: Registry, source: ReporterMetricsSource): void {
  const now = source.now ?? Date.now;
  const queueGauge = (name: string, help: string, pick: (h: QueueSampleSet['hosts'][number]) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['host'],
      registers: [registry],
      collect() {
        this.reset();
        for (const h of source.sampler.latest()?.hosts ?? []) this.set({ host: h.host }, pick(h));
      },
    });
  };
  queueGauge(
    'sluice_queue_pending',
    "Tasks waiting for an executor, per database host (the host consumer's num_pending)",
    (h) => h.pending,
  );
  queueGauge(
    'sluice_queue_in_flight',
    'Tasks delivered and not yet acknowledged, per database host, over all executors (num_ack_pending)',
    (h) => h.inFlight,
  );
  queueGauge(
    'sluice_queue_limit',
    'Concurrency limit per database host, over all executors (max_ack_pending)',
    (h) => h.limit,
  );
  new Gauge({
    name: 'sluice_run_tenants_per_second',
    help: 'Tenants settled per second in each active run (recent rate; the series ends when the run completes)',
    labelNames: ['run_id'],
    registers: [registry],
    collect() {
      this.reset();
      const at = now();
      for (const run of activeRuns(source.book.list()))
        if (run.planned) this.set({ run_id: run.runId }, rateOf(run, at));
    },
  });
  new Gauge({
    name: 'sluice_reporter_runs_active',
    help: 'Runs accepted and not yet completed (planning, running, paused or cancelling)',
    registers: [registry],
    collect() {
      this.set(activeRuns(source.book.list()).length);
    },
  });
  const fleet = source.fleet;
  if (fleet)
    new Gauge({
      name: 'sluice_fleet_tenants',
      help: "Tenants by fleet status (current, behind, failed, dirty, drift), from the fleet state's summary",
      labelNames: ['status'],
      registers: [registry],
      // One KV read per scrape; an unreadable summary leaves the series out rather than at zero.
      async collect() {
        const summary = await fleet.summary().catch(() => undefined);
        this.reset();
        if (summary) for (const status of FLEET_STATUSES) this.set({ status }, summary.statuses[status]);
      },
    });
  const outcomes = new Counter({
    name: 'sluice_reporter_outcomes_total',
    help: 'Tenant outcomes counted (the first terminal one per tenant and run), by status',
    labelNames: ['status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'sluice_reporter_tenant_duration_seconds',
    help: "A tenant's last attempt, connect to unlock (timings.totalMs), by status; outcomes the planner settles have none",
    labelNames: ['status'],
    buckets: TENANT_BUCKETS,
    registers: [registry],
  });
  // Exactly the outcomes runs count: the first terminal one of each tenant.
  source.book.events.on('outcomeCounted', (outcome) => {
    outcomes.inc({ status: outcome.status });
    const ms = outcome.timings?.totalMs;
    if (ms !== undefined) duration.observe({ status: outcome.status }, ms / 1000);
  });
}
