import { type BusConfig, loadBusConfig } from '@sluice/bus';
import { type Env, envReader } from '@sluice/core';

export interface ReporterConfig {
  bus: BusConfig;
  logLevel: string;
  /** HTTP port for status and health (`SLUICE_REPORTER_PORT`; 0 picks a free one). */
  httpPort: number;
  /** Interface the HTTP server binds to (`SLUICE_REPORTER_HOST`). */
  httpHost: string;
  /** Least time between two progress events of a run (`SLUICE_PROGRESS_INTERVAL`). */
  progressIntervalMs: number;
  /** JetStream stream replicas (`SLUICE_STREAM_REPLICAS`). */
  streamReplicas: number;
  /**
   * A tenant whose task shows no outcome for this long is looked up in the work queue and, when
   * it is gone, published again (`SLUICE_RECONCILE_AFTER`).
   */
  reconcileAfterMs: number;
  /** How often unfinished runs are swept for lost tasks (`SLUICE_RECONCILE_INTERVAL`). */
  reconcileIntervalMs: number;
  /** How often every host's queue is sampled from its consumer while runs are active (`SLUICE_QUEUE_SAMPLE_INTERVAL`). */
  queueSampleIntervalMs: number;
}

export function loadReporterConfig(env: Env): ReporterConfig {
  const e = envReader(env);
  return Object.freeze({
    bus: loadBusConfig(env, 'sluice-reporter'),
    logLevel: e.string('LOG_LEVEL', 'info'),
    httpPort: e.int('SLUICE_REPORTER_PORT', 8080, { min: 0, max: 65_535 }),
    httpHost: e.string('SLUICE_REPORTER_HOST', '127.0.0.1'),
    progressIntervalMs: e.duration('SLUICE_PROGRESS_INTERVAL', 1_000),
    streamReplicas: e.int('SLUICE_STREAM_REPLICAS', 1, { min: 1, max: 5 }),
    reconcileAfterMs: e.duration('SLUICE_RECONCILE_AFTER', 120_000),
    reconcileIntervalMs: e.duration('SLUICE_RECONCILE_INTERVAL', 10_000),
    queueSampleIntervalMs: e.duration('SLUICE_QUEUE_SAMPLE_INTERVAL', 1_000),
  });
}
