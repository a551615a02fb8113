import { hostname } from 'node:os';

import { type BusConfig, loadBusConfig } from '@sluice/bus';
import { type Env, envReader } from '@sluice/core';
import { DEFAULT_METRICS_PORT } from '@sluice/telemetry';

export interface ExecutorConfig {
  bus: BusConfig;
  logLevel: string;
  /**
   * Folder of `NNNN_name.sql` files (`SLUICE_MIGRATIONS_DIR`), optional: runs are migrated with the
   * set the planner stored in the bundle store under the run's digest; a local set with that digest
   * saves the fetch and serves runs planned before bundles existed.
   */
  migrationsDir?: string;
  /** Identifies this replica in the journal and in outcomes (`SLUICE_EXECUTOR_ID`). */
  executorId: string;
  /** Tenants migrated at once by this replica (`SLUICE_CONCURRENCY`). */
  concurrency: number;
  /** Deliveries of a task before a transient failure becomes final (`SLUICE_MAX_ATTEMPTS`). */
  maxAttempts: number;
  /** First retry delay; doubles per attempt with full jitter (`SLUICE_RETRY_BASE`). */
  retryBaseMs: number;
  /** Longest retry delay (`SLUICE_RETRY_MAX`). */
  retryMaxMs: number;
  /** How long a task may go without a sign of life before it is redelivered (`SLUICE_ACK_WAIT`). */
  ackWaitMs: number;
  /** `lock_timeout` of migration sessions (`SLUICE_LOCK_TIMEOUT`). */
  lockTimeoutMs: number;
  /** `statement_timeout` of migration sessions (`SLUICE_STATEMENT_TIMEOUT`). */
  statementTimeoutMs: number;
  /** Connecting to a tenant database (`SLUICE_CONNECT_TIMEOUT`). */
  connectTimeoutMs: number;
  /** On SIGTERM, how long in-flight migrations may take to finish (`SLUICE_SHUTDOWN_GRACE`). */
  shutdownGraceMs: number;
  /** JetStream stream replicas (`SLUICE_STREAM_REPLICAS`). */
  streamReplicas: number;
  /**
   * Where each host's adaptive limit starts in this replica (`SLUICE_HOST_START_LIMIT`); unset,
   * at the host's limit (the consumer's max_ack_pending), so a run uses it from the first task.
   */
  hostStartLimit: number | undefined;
  /** How often host queues are listed to find work (`SLUICE_DISCOVERY_INTERVAL`). */
  discoveryIntervalMs: number;
  /** Circuit breaker per host: failure percentage that opens it (`SLUICE_BREAKER_THRESHOLD`). */
  breakerThresholdPercent: number;
  /** Calls in the window before a breaker may open (`SLUICE_BREAKER_VOLUME`). */
  breakerVolume: number;
  /** Time an open breaker waits before a probe (`SLUICE_BREAKER_RESET`). */
  breakerResetMs: number;
  /** The breaker's rolling window (`SLUICE_BREAKER_WINDOW`). */
  breakerWindowMs: number;
  /**
   * Port of `GET /metrics`, `/healthz` and `/readyz` (`SLUICE_METRICS_PORT`, default 9464, fixed so
   * probes and scrape configs can name it; 0 = any free port, logged at start).
   */
  metricsPort: number;
  /** Interface of the metrics server (`SLUICE_METRICS_HOST`). */
  metricsHost: string;
  /**
   * Bottleneck signals in outcomes (`SLUICE_SIGNALS`, `on` or `off`): round trips per tenant, this
   * replica's CPU share and event-loop delay, host activity samples. Off: none is measured or sent.
   */
  signals: boolean;
  /**
   * How often a tenant's connection also samples its host's `pg_stat_activity` and
   * `pg_stat_replication`, per host on this replica (`SLUICE_HOST_ACTIVITY_INTERVAL`; 0 = never).
   */
  hostActivityIntervalMs: number;
  /**
   * A host whose replicas replay further behind than this cuts its adaptive limit
   * (`SLUICE_MAX_REPLAY_LAG`; 0 = never; read from the activity samples).
   */
  maxReplayLagMs: number;
}

/** Resolves the executor's settings once; throws naming the bad variable. */
export function loadExecutorConfig(env: Env): ExecutorConfig {
  const e = envReader(env);
  const migrationsDir = e.optional('SLUICE_MIGRATIONS_DIR');
  return Object.freeze({
    bus: loadBusConfig(env, 'sluice-executor'),
    logLevel: e.string('LOG_LEVEL', 'info'),
    ...(migrationsDir ? { migrationsDir } : {}),
    executorId: e.string('SLUICE_EXECUTOR_ID', `${hostname()}-${process.pid}`),
    concurrency: e.int('SLUICE_CONCURRENCY', 8, { min: 1, max: 1024 }),
    maxAttempts: e.int('SLUICE_MAX_ATTEMPTS', 5, { min: 1, max: 100 }),
    retryBaseMs: e.duration('SLUICE_RETRY_BASE', 1_000),
    retryMaxMs: e.duration('SLUICE_RETRY_MAX', 60_000),
    ackWaitMs: e.duration('SLUICE_ACK_WAIT', 30_000),
    lockTimeoutMs: e.duration('SLUICE_LOCK_TIMEOUT', 5_000),
    statementTimeoutMs: e.duration('SLUICE_STATEMENT_TIMEOUT', 600_000),
    connectTimeoutMs: e.duration('SLUICE_CONNECT_TIMEOUT', 10_000),
    shutdownGraceMs: e.duration('SLUICE_SHUTDOWN_GRACE', 30_000),
    streamReplicas: e.int('SLUICE_STREAM_REPLICAS', 1, { min: 1, max: 5 }),
    hostStartLimit:
      e.optional('SLUICE_HOST_START_LIMIT') === undefined
        ? undefined
        : e.int('SLUICE_HOST_START_LIMIT', 1, { min: 1, max: 1024 }),
    discoveryIntervalMs: e.duration('SLUICE_DISCOVERY_INTERVAL', 1_000),
    breakerThresholdPercent: e.int('SLUICE_BREAKER_THRESHOLD', 50, { min: 1, max: 100 }),
    breakerVolume: e.int('SLUICE_BREAKER_VOLUME', 3, { min: 1, max: 10_000 }),
    breakerResetMs: e.duration('SLUICE_BREAKER_RESET', 5_000),
    breakerWindowMs: e.duration('SLUICE_BREAKER_WINDOW', 10_000),
    metricsPort: e.int('SLUICE_METRICS_PORT', DEFAULT_METRICS_PORT, { min: 0, max: 65_535 }),
    metricsHost: e.string('SLUICE_METRICS_HOST', '127.0.0.1'),
    signals: e.oneOf('SLUICE_SIGNALS', ['on', 'off'], 'on') === 'on',
    hostActivityIntervalMs: e.duration('SLUICE_HOST_ACTIVITY_INTERVAL', 2_000),
    maxReplayLagMs: e.duration('SLUICE_MAX_REPLAY_LAG', 30_000),
  });
}
