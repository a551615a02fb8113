import type { EventEmitter } from 'node:events';

import { SluiceError } from '@sluice/core';
import { Counter, Gauge, Histogram, type Registry } from '@sluice/telemetry';

import type { DeliveryEvents } from './delivery.js';
import type { ExecutorLoadSample } from './executor-load.js';
import type { HostScheduler } from './host-scheduler.js';

const BREAKER_STATES = ['closed', 'open', 'halfOpen'] as const;
/** Connect, journal and execute times are milliseconds to minutes. */
const DB_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const DB_PHASES = [
  ['connect', 'connectMs'],
  ['journal', 'journalMs'],
  ['execute', 'executeMs'],
] as const;

export interface ExecutorMetricsSource {
  /** Per-host limits, in-flight counts and breakers, read at scrape time. */
  scheduler: Pick<HostScheduler, 'snapshot' | 'inFlight'>;
  /** This replica's global concurrency (`SLUICE_CONCURRENCY`). */
  slots: number;
  /** The deliveries' events: each settled delivery, and each tenant's work (its connection) per host. */
  deliveries: Pick<EventEmitter<DeliveryEvents>, 'on'>;
  /** The replica's CPU share and event-loop delay (signals on); none: the two gauges are absent. */
  load?: () => ExecutorLoadSample;
}

/**
 * The executor's Prometheus metrics: per host the adaptive limit, its hard cap, tasks in flight
 * and the breaker state (read from the scheduler at scrape time), connections open, database time
 * by phase and errors by class; for the replica its slots, and every task's result and duration.
 */
export function registerExecutorMetrics(registry: Registry, source: ExecutorMetricsSource): void {
  const snapshot = () => source.scheduler.snapshot();
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
      for (const h of snapshot())
        for (const state of BREAKER_STATES) this.set({ host: h.host, state }, h.breaker === state ? 1 : 0);
    },
  });
  new Gauge({
    name: 'sluice_executor_slots',
    help: "This replica's global concurrency: tenants it migrates at once over all hosts",
    registers: [registry],
    collect() {
      this.set(source.slots);
    },
  });
  new Gauge({
    name: 'sluice_executor_slots_busy',
    help: 'Slots holding a task now (over all hosts)',
    registers: [registry],
    collect() {
      this.set(source.scheduler.inFlight);
    },
  });
  const connections = new Gauge({
    name: 'sluice_executor_db_connections',
    help: 'Tenant database connections this replica has open (or is opening) now, per database host',
    labelNames: ['host'],
    registers: [registry],
  });
  const dbSeconds = new Histogram({
    name: 'sluice_executor_db_seconds',
    help: 'Database time of settled tenants by phase: connect, journal (lock and read) and execute (migration SQL)',
    labelNames: ['host', 'phase'],
    buckets: DB_BUCKETS,
    registers: [registry],
  });
  const errors = new Counter({
    name: 'sluice_executor_errors_total',
    help: 'Failed attempts per database host, by class (transient: retried; permanent: the tenant failed) and error code',
    labelNames: ['host', 'class', 'code'],
    registers: [registry],
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

  const load = source.load;
  if (load) {
    new Gauge({
      name: 'sluice_executor_cpu_share',
      help: "This replica's CPU over the last second, as a share of one core (its event loop's)",
      registers: [registry],
      collect() {
        this.set(load().executorCpu);
      },
    });
    new Gauge({
      name: 'sluice_executor_event_loop_delay_seconds',
      help: "This replica's mean event-loop delay over the last second",
      registers: [registry],
      collect() {
        this.set(load().loopDelayMs / 1000);
      },
    });
    new Gauge({
      name: 'sluice_executor_event_loop_utilization',
      help: "Share of the last second this replica's event loop spent running callbacks (0-1)",
      registers: [registry],
      collect() {
        this.set(load().loopBusy);
      },
    });
  }

  source.deliveries.on('workStarted', (host) => connections.inc({ host }));
  source.deliveries.on('workEnded', (host) => connections.dec({ host }));
  source.deliveries.on('settled', (host, result) => {
    const error = result.error;
    const code = error === undefined ? 'none' : error instanceof SluiceError ? error.code : 'internal';
    results.inc({ result: result.settled, code });
    duration.observe({ result: result.settled }, result.durationMs / 1000);
    // The delivery treats anything that is not a SluiceError as permanent; so do we.
    if (error !== undefined)
      errors.inc({ host, class: error instanceof SluiceError && error.transient ? 'transient' : 'permanent', code });
    const timings = result.outcome?.timings;
    if (timings) {
      for (const [phase, field] of DB_PHASES) {
        const ms = timings[field];
        if (ms !== undefined) dbSeconds.observe({ host, phase }, ms / 1000);
      }
    }
  });
}
