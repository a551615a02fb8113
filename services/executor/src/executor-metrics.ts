import { SluiceError } from '@sluice/core';
import { Counter, Gauge, Histogram, type Registry } from '@sluice/telemetry';

import type { HostScheduler } from './host-scheduler.js';
import type { TaskResult } from './task-handler.js';

const BREAKER_STATES = ['closed', 'open', 'halfOpen'] as const;

/**
 * The executor's Prometheus metrics: per host the adaptive limit, its hard cap, tasks in
 * flight and the breaker state (read from the scheduler at scrape time), and task results.
 */
export function registerExecutorMetrics(registry: Registry, scheduler: () => HostScheduler | undefined) {
  const snapshot = () => scheduler()?.snapshot() ?? [];
  new Gauge({
    name: 'sluice_executor_host_limit',
    help: "This replica's adaptive concurrency limit per database host",
    labelNames: ['host'],
    registers: [registry],
    collect() {
      this.reset();
      for (const h of snapshot()) this.set({ host: h.host }, h.limit);
    },
  });
  new Gauge({
    name: 'sluice_executor_host_max_limit',
    help: 'The configured concurrency cap per database host, across all replicas',
    labelNames: ['host'],
    registers: [registry],
    collect() {
      this.reset();
      for (const h of snapshot()) this.set({ host: h.host }, h.maxLimit);
    },
  });
  new Gauge({
    name: 'sluice_executor_host_in_flight',
    help: 'Tenants this replica is migrating now, per database host (each holds one connection)',
    labelNames: ['host'],
    registers: [registry],
    collect() {
      this.reset();
      for (const h of snapshot()) this.set({ host: h.host }, h.inFlight);
    },
  });
  new Gauge({
    name: 'sluice_executor_breaker_state',
    help: 'Circuit breaker state per database host (1 for the current state)',
    labelNames: ['host', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const h of snapshot()) for (const state of BREAKER_STATES) this.set({ host: h.host, state }, h.breaker === state ? 1 : 0);
    },
  });
  const results = new Counter({
    name: 'sluice_executor_tasks_total',
    help: 'Task deliveries by result (done, retry, dropped) and error code',
    labelNames: ['result', 'code'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'sluice_executor_task_duration_seconds',
    help: 'Time spent on one tenant delivery, connect to unlock',
    labelNames: ['result'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  return (_host: string, result: TaskResult): void => {
    const code = result.error === undefined ? 'none' : result.error instanceof SluiceError ? result.error.code : 'internal';
    results.inc({ result: result.settled, code });
    duration.observe({ result: result.settled }, result.durationMs / 1000);
  };
}
