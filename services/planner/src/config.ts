import { type BusConfig, loadBusConfig } from '@sluice/bus';
import { type Env, envReader } from '@sluice/core';
import { loadRegistryConfig, type RegistryConfig } from '@sluice/registry';

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
  /** Requests planned at once (`SLUICE_PLANNER_CONCURRENCY`). */
  concurrency: number;
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
    concurrency: e.int('SLUICE_PLANNER_CONCURRENCY', 4, { min: 1, max: 64 }),
  });
}
