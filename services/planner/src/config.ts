import { type BusConfig, loadBusConfig, loadStreamLimits, type StreamLimits } from '@sluice/bus';
import { ConfigError, type Env, envReader } from '@sluice/core';
import { loadRegistryConfig, type RegistryConfig } from '@sluice/registry';
import { DEFAULT_METRICS_PORT } from '@sluice/telemetry';

export interface PlannerConfig {
  bus: BusConfig;
  logLevel: string;
  /** Folder of `NNNN_name.sql` files (`SLUICE_MIGRATIONS_DIR`). */
  migrationsDir: string;
  /** Which tenant registry to read (`SLUICE_REGISTRY`). */
  registry: RegistryConfig;
  /** Tasks published before waiting for acks (`SLUICE_PUBLISH_WINDOW`). */
  publishWindow: number;
  /** How long to keep retrying an unreadable registry before failing the run (`SLUICE_REGISTRY_RETRY`). */
  registryRetryMs: number;
  /** JetStream stream replicas (`SLUICE_STREAM_REPLICAS`). */
  streamReplicas: number;
  /** Retention and bytes per stream (`SLUICE_RETENTION`, `SLUICE_STREAM_MAX_BYTES`), applied to the streams at start. */
  streamLimits: Required<StreamLimits>;
  /** Requests planned at once (`SLUICE_PLANNER_CONCURRENCY`). */
  concurrency: number;
  /** Concurrent migrations per database host, across all executors (`SLUICE_HOST_LIMIT`, `SLUICE_HOST_LIMITS`). */
  hostLimits: HostLimits;
  /** A task with no sign of life for this long is redelivered (`SLUICE_ACK_WAIT`, as the executors). */
  taskAckWaitMs: number;
  /**
   * Port of `GET /metrics`, `/healthz` and `/readyz` (`SLUICE_METRICS_PORT`, default 9464, fixed so
   * probes and scrape configs can name it; 0 = any free port, logged at start).
   */
  metricsPort: number;
  /** Interface of the metrics server (`SLUICE_METRICS_HOST`). */
  metricsHost: string;
  /**
   * Deliveries of a task before the server gives up on it (`SLUICE_MAX_ATTEMPTS`, as the
   * executors'): bounds a task whose executor dies every time; the reporter then fails the tenant.
   */
  maxDeliveries: number;
  /**
   * The executors' session `lock_timeout` (`SLUICE_LOCK_TIMEOUT`, as theirs): the lint rule
   * `missing-lock-timeout` asks files that take strong locks for a lower one.
   */
  sessionLockTimeoutMs: number;
}

export interface HostLimits {
  default: number;
  /** `host:port` (lower case) -> limit. */
  overrides: ReadonlyMap<string, number>;
}

/** Parses `db1:5432=8,db2.internal:6432=2`. */
export function parseHostLimits(text: string | undefined, variable = 'SLUICE_HOST_LIMITS'): Map<string, number> {
  const out = new Map<string, number>();
  for (const part of (text ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.lastIndexOf('=');
    const host = part.slice(0, eq).trim().toLowerCase();
    const limit = Number(part.slice(eq + 1));
    if (eq <= 0 || !/^[^:\s]+:\d+$/.test(host) || !Number.isInteger(limit) || limit < 1) {
      throw new ConfigError(`${variable} takes host:port=N pairs separated by commas, got "${part}"`);
    }
    out.set(host, limit);
  }
  return out;
}

/** The limit for one host in one run: the configured one, lowered by the request's `maxPerHost`. */
export function hostLimitFor(limits: HostLimits, host: string, requested?: number): number {
  const configured = limits.overrides.get(host) ?? limits.default;
  return requested === undefined ? configured : Math.min(configured, requested);
}

/** Resolves the planner's settings once; throws naming the bad variable. */
export function loadPlannerConfig(env: Env): PlannerConfig {
  const e = envReader(env);
  return Object.freeze({
    bus: loadBusConfig(env, 'sluice-planner'),
    logLevel: e.string('LOG_LEVEL', 'info'),
    migrationsDir: e.string('SLUICE_MIGRATIONS_DIR', 'migrations'),
    registry: loadRegistryConfig(env),
    publishWindow: e.int('SLUICE_PUBLISH_WINDOW', 512, { min: 1, max: 65_536 }),
    registryRetryMs: e.duration('SLUICE_REGISTRY_RETRY', 60_000),
    streamReplicas: e.int('SLUICE_STREAM_REPLICAS', 1, { min: 1, max: 5 }),
    streamLimits: loadStreamLimits(env),
    concurrency: e.int('SLUICE_PLANNER_CONCURRENCY', 4, { min: 1, max: 64 }),
    hostLimits: {
      default: e.int('SLUICE_HOST_LIMIT', 8, { min: 1, max: 1024 }),
      overrides: parseHostLimits(e.optional('SLUICE_HOST_LIMITS')),
    },
    taskAckWaitMs: e.duration('SLUICE_ACK_WAIT', 30_000),
    metricsPort: e.int('SLUICE_METRICS_PORT', DEFAULT_METRICS_PORT, { min: 0, max: 65_535 }),
    metricsHost: e.string('SLUICE_METRICS_HOST', '127.0.0.1'),
    maxDeliveries: e.int('SLUICE_MAX_ATTEMPTS', 5, { min: 1, max: 100 }),
    sessionLockTimeoutMs: e.duration('SLUICE_LOCK_TIMEOUT', 5_000),
  });
}
