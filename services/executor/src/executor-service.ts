import { type Bus, busReadiness, connectBus, openBundleStore, startTopologyKeeper } from '@sluice/bus';
import { everyRunFilter } from '@sluice/contracts';
import { loadMigrationDir } from '@sluice/migrator';
import { createMetricsRegistry, type Logger, startMetricsServer } from '@sluice/telemetry';

import { AckBatcher } from './ack-batcher.js';
import type { ExecutorConfig } from './config.js';
import { createDelivery } from './delivery.js';
import { ExecutorLoadMonitor } from './executor-load.js';
import { registerExecutorMetrics } from './executor-metrics.js';
import { HostBreakers } from './host-breakers.js';
import { type HostScheduler, startHostScheduler } from './host-scheduler.js';
import { createMigrationSets } from './migration-sets.js';
import { createRunGate } from './run-gate.js';
import { ActivitySchedule, postgresTenantWork, type TenantWork } from './tenant-work.js';

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

/**
 * Wires the executor, each part after what it needs: the bus, the migration sets, the hosts'
 * breakers and the run gate; the delivery pipeline over them (`delivery.ts`); the host scheduler
 * that feeds it; the metrics that read the scheduler and listen to the deliveries.
 */
export async function startExecutorService(
  config: ExecutorConfig,
  logger: Logger,
  overrides: ExecutorOverrides = {},
): Promise<ExecutorService> {
  const local = config.migrationsDir ? await loadMigrationDir(config.migrationsDir) : undefined;
  const bus: Bus = await connectBus(config.bus, logger);
  // Executors only create what is missing (they do not know the configured limits) and, after the
  // store was lost, watch the control bucket anew; the planner re-creates the host consumers.
  const keeper = await startTopologyKeeper(bus, {
    replicas: config.streamReplicas,
    logger,
    ...(config.bus.topologyCheckMs !== undefined ? { intervalMs: config.bus.topologyCheckMs } : {}),
  });
  const migrations = createMigrationSets({
    bundles: await openBundleStore(bus, { replicas: config.streamReplicas }),
    local,
    logger,
    executorId: config.executorId,
  });
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
  keeper.onRecovered(async () => ((await gate.rewatch()) ? ['run control watch'] : []));
  const load = config.signals ? new ExecutorLoadMonitor() : undefined;
  // Bound late: the scheduler that holds the limits is built after the pipeline it feeds.
  let hostLimit: (host: string) => number | undefined = () => undefined;
  // Acks go out with the next pull request (one socket write for both).
  const acks = new AckBatcher();
  const delivery = createDelivery({
    bus,
    logger,
    ack: (msg) => acks.ack(msg),
    config,
    migrations,
    gate,
    breakers,
    ...(load ? { signals: { load: () => load.current(), hostLimit: (host) => hostLimit(host) } } : {}),
    tenantWork:
      overrides.tenantWork ??
      postgresTenantWork(
        config,
        (task, holder) =>
          logger.warn(
            { runId: task.runId, tenantId: task.tenantId, host: task.host, holder },
            'stale holder of the migration lock terminated; lock taken over',
          ),
        config.signals ? { activity: new ActivitySchedule(config.hostActivityIntervalMs) } : undefined,
      ),
  });
  const registry = createMetricsRegistry('executor');
  const scheduler = startHostScheduler({
    bus,
    logger,
    breakers,
    handleTask: delivery.handle,
    concurrency: config.concurrency,
    initialHostLimit: config.hostStartLimit,
    discoveryIntervalMs: config.discoveryIntervalMs,
    maxReplayLagMs: config.maxReplayLagMs,
    onBusError: (error) => keeper.suspect(error, 'executor pull'),
    acks,
  });
  hostLimit = (host) => scheduler.limitOf(host);
  // A run accepted, planned or resumed means tasks are being published: look for them at once.
  const wakeups = (['accepted', 'planned', 'control'] as const).map((event) =>
    bus.nc.subscribe(everyRunFilter(event), { callback: () => scheduler.nudge() }),
  );
  // Registered in the same tick as the scheduler starts: no delivery can settle before it listens.
  registerExecutorMetrics(registry, {
    scheduler,
    slots: config.concurrency,
    deliveries: delivery.events,
    ...(load ? { load: () => load.current() } : {}),
  });
  const metrics = await startMetricsServer(registry, {
    port: config.metricsPort,
    host: config.metricsHost,
    readiness: async () => ({ ...(await busReadiness(bus)), replayed: true }),
  });
  logger.info(
    {
      executorId: config.executorId,
      localDigest: local?.digest,
      concurrency: config.concurrency,
      metricsPort: metrics.port,
    },
    'executor ready',
  );
  return {
    scheduler,
    metricsPort: metrics.port,
    async stop() {
      await keeper.stop();
      for (const sub of wakeups) sub.unsubscribe();
      const putBack = await scheduler.stop(config.shutdownGraceMs);
      acks.flush();
      if (putBack > 0) logger.warn({ putBack }, 'in-flight tasks put back');
      await gate.stop();
      breakers.shutdown();
      load?.stop();
      metrics.server.close();
      await bus.close();
      logger.info({ putBack }, 'executor stopped');
      return { putBack };
    },
  };
}
