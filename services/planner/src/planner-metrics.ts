import { Counter, Histogram, type Registry } from '@sluice/telemetry';

import type { PlannerObserver } from './tenant-planner.js';

/** Planning takes milliseconds for a handful of tenants and minutes for a million. */
const PLANNING_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/**
 * The planner's Prometheus metrics: requests by how they ended, tasks published, registry rows by
 * what became of them, and planning time. Returns the observer the planner reports to.
 */
export function registerPlannerMetrics(registry: Registry): PlannerObserver {
  const runs = new Counter({
    name: 'sluice_planner_runs_total',
    help: 'Migration requests by how they ended: planned, rejected (invalid or runId taken) or failed (registry unreadable)',
    labelNames: ['result'],
    registers: [registry],
  });
  const tasks = new Counter({
    name: 'sluice_planner_tasks_published_total',
    help: 'Tenant tasks published to the per-host queues (a re-plan after a planner crash publishes its run again; JetStream drops the repeats)',
    registers: [registry],
  });
  const rows = new Counter({
    name: 'sluice_planner_registry_rows_total',
    help: 'Registry rows of planned runs by what became of them: ok (a task), suspended (skipped) or invalid (failed as invalid_tenant)',
    labelNames: ['result'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'sluice_planner_planning_duration_seconds',
    help: 'Time to read the registry and publish every task of a run',
    buckets: PLANNING_BUCKETS,
    registers: [registry],
  });
  // Every label set from the start, so rates work from the first request on.
  for (const result of ['planned', 'rejected', 'failed']) runs.inc({ result }, 0);
  for (const result of ['ok', 'suspended', 'invalid']) rows.inc({ result }, 0);

  return {
    rejected() {
      runs.inc({ result: 'rejected' });
    },
    planned(result, ms) {
      duration.observe(ms / 1000);
      if ('error' in result) {
        runs.inc({ result: 'failed' });
        return;
      }
      runs.inc({ result: 'planned' });
      tasks.inc(result.tasks);
      rows.inc({ result: 'ok' }, result.tasks);
      rows.inc({ result: 'suspended' }, result.skipped);
      rows.inc({ result: 'invalid' }, result.invalid);
    },
  };
}
