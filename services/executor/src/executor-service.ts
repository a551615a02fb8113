import { type Bus, connectBus, ensureTopology, openBundleStore } from '@sluice/bus';
import { loadMigrationDir } from '@sluice/migrator';
import { createMetricsRegistry, type Logger, startMetricsServer } from '@sluice/telemetry';

import type { ExecutorConfig } from './config.js';
import { registerExecutorMetrics } from './executor-metrics.js';
import { HostBreakers } from './host-breakers.js';
import { type HostScheduler, startHostScheduler } from './host-scheduler.js';
import { createMigrationSets } from './migration-sets.js';
import { createRunGate, gateTaskHandler } from './run-gate.js';
import { createTaskHandler, type TenantWork } from './task-handler.js';
import { traceTaskHandler } from './task-tracing.js';

export interface ExecutorService {
  scheduler: HostScheduler;
  metricsPort: number;
  /** Stops pulling, lets in-flight migrations finish within the grace period, puts back the rest. */
  stop(): Promise<{ putBack: number }>;
}

/** Ports a caller may replace: the tenant work (benchmarks measure the pipeline without databases). */
export interface ExecutorOverrides {
  tenantWork?: TenantWork;
}

export async function startExecutorService(config: ExecutorConfig, logger: Logger, overrides: ExecutorOverrides = {}): Promise<ExecutorService> {
  const local = config.migrationsDir ? await loadMigrationDir(config.migrationsDir) : undefined;
  const bus: Bus = await connectBus(config.bus, logger);
  await ensureTopology(bus.jsm, { replicas: config.streamReplicas });
  const migrations = createMigrationSets({ bundles: await openBundleStore(bus, { replicas: config.streamReplicas }), local, logger, executorId: config.executorId });
  const breakers = new HostBreakers(
    {
      errorThresholdPercentage: config.breakerThresholdPercent,
      volumeThreshold: config.breakerVolume,
      resetTimeoutMs: config.breakerResetMs,
      rollingWindowMs: config.breakerWindowMs,
    },
    (host, state) => logger.warn({ host, breaker: state }, `circuit breaker ${state}`),
  );
  const gate = await createRunGate({ bus, logger, executorId: config.executorId, replicas: config.streamReplicas });
  // Gated tasks were not attempted: `dropped`/`retry` without an error leave the host's limiter alone.
  const handleTask = gateTaskHandler(gate, createTaskHandler({ bus, migrations, logger, config, breakerOpenMs: (host, from, to) => breakers.openMs(host, from, to), ...overrides }), (verdict) => ({
    settled: verdict.action === 'defer' ? ('retry' as const) : ('dropped' as const),
    durationMs: 0,
  }));
  const registry = createMetricsRegistry('executor');
  const holder: { scheduler?: HostScheduler } = {};
  const executorMetrics = registerExecutorMetrics(registry, { scheduler: () => holder.scheduler, slots: config.concurrency });
  const metrics = await startMetricsServer(registry, { port: config.metricsPort, host: config.metricsHost });
  const scheduler = startHostScheduler({
    onResult: executorMetrics.onResult,
    bus,
    logger,
    breakers,
    handleTask: traceTaskHandler(executorMetrics.countConnections(handleTask)),
    concurrency: config.concurrency,
    initialHostLimit: config.hostStartLimit,
    discoveryIntervalMs: config.discoveryIntervalMs,
  });
  holder.scheduler = scheduler;
  logger.info({ executorId: config.executorId, localDigest: local?.digest, concurrency: config.concurrency, metricsPort: metrics.port }, 'executor ready');
  return {
    scheduler,
    metricsPort: metrics.port,
    async stop() {
      const putBack = await scheduler.stop(config.shutdownGraceMs);
      if (putBack > 0) logger.warn({ putBack }, 'in-flight tasks put back');
      await gate.stop();
      breakers.shutdown();
      metrics.server.close();
      await bus.close();
      logger.info({ putBack }, 'executor stopped');
      return { putBack };
    },
  };
}
