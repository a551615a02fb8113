import {
  AckPolicy,
  type Bus,
  busReadiness,
  connectBus,
  DeliverPolicy,
  openBundleStore,
  openFleetStore,
  openRunClaims,
  type PullLoop,
  startPullLoop,
  startTopologyKeeper,
} from '@sluice/bus';
import { REQUEST_SUBJECT, STREAMS } from '@sluice/contracts';
import { countFindings, describeWithoutDown } from '@sluice/core';
import { loadMigrationDir } from '@sluice/migrator';
import { createRegistry } from '@sluice/registry';
import { loadSqlParser } from '@sluice/sql-parser';
import { createMetricsRegistry, type Logger, startMetricsServer } from '@sluice/telemetry';

import type { PlannerConfig } from './config.js';
import { createLintGate } from './lint-gate.js';
import { registerPlannerMetrics } from './planner-metrics.js';
import { createPlanner } from './tenant-planner.js';

export const PLANNER_CONSUMER = 'sluice-planner';
const ACK_WAIT_MS = 60_000;

export interface PlannerService {
  metricsPort: number;
  stop(): Promise<void>;
}

/** Connects, declares the topology and starts taking requests. */
export async function startPlannerService(config: PlannerConfig, logger: Logger): Promise<PlannerService> {
  const migrations = await loadMigrationDir(config.migrationsDir);
  const registry = await createRegistry(config.registry);
  const bus: Bus = await connectBus(config.bus, logger);
  const keeper = await startTopologyKeeper(bus, {
    replicas: config.streamReplicas,
    ...config.streamLimits,
    logger,
    ...(config.bus.topologyCheckMs !== undefined ? { intervalMs: config.bus.topologyCheckMs } : {}),
  });
  // Every run pins this set's digest; executors load the set from here by that digest.
  const storeBundle = async () => (await openBundleStore(bus, { replicas: config.streamReplicas })).put(migrations);
  const bundle = await storeBundle();
  if (bundle === 'replaced')
    logger.warn({ digest: migrations.digest }, 'stored migration bundle did not match its digest; replaced');
  const claims = await openRunClaims(bus, { replicas: config.streamReplicas });
  const fleet = await openFleetStore(bus, { replicas: config.streamReplicas });
  await ensureRequestConsumer(bus);
  const consumer = await bus.js.consumers.get(STREAMS.requests.name, PLANNER_CONSUMER);
  // After the store was lost: the planner's own consumer and its bundle, or no executor could run a task.
  keeper.onRecovered(async () => {
    await ensureRequestConsumer(bus);
    const stored = await storeBundle();
    return [`consumer ${STREAMS.requests.name}/${PLANNER_CONSUMER}`, `bundle ${migrations.digest} (${stored})`];
  });
  const metricsRegistry = createMetricsRegistry('planner');
  const observer = registerPlannerMetrics(metricsRegistry);
  const metrics = await startMetricsServer(metricsRegistry, {
    port: config.metricsPort,
    host: config.metricsHost,
    // Serving starts after the topology and the bundle are in place: nothing to replay.
    readiness: async () => ({ ...(await busReadiness(bus)), replayed: true }),
  });
  // Linted now, so the first request does not wait for it and the log says what requests will meet.
  const lint = createLintGate(await loadSqlParser(), { sessionLockTimeoutMs: config.sessionLockTimeoutMs });
  const lintCounts = countFindings(lint.findings(migrations));
  const planner = createPlanner({
    bus,
    registry,
    claims,
    fleet,
    migrations,
    logger,
    publishWindow: config.publishWindow,
    registryRetryMs: config.registryRetryMs,
    ackWaitMs: ACK_WAIT_MS,
    hostLimits: config.hostLimits,
    taskAckWaitMs: config.taskAckWaitMs,
    observer,
    maxDeliveries: config.maxDeliveries,
    lint,
  });
  const loop: PullLoop = startPullLoop(
    consumer,
    {
      concurrency: config.concurrency,
      logger,
      onPullError: (error) => keeper.suspect(error, 'planner pull'),
    },
    (msg) => planner.handleRequest(msg),
  );
  logger.info(
    {
      digest: migrations.digest,
      bundle,
      latest: migrations.latest,
      migrations: migrations.migrations.length,
      // Which versions a rollback cannot take a tenant below (no down file).
      withoutDown: describeWithoutDown(migrations) ?? 'every version has a down file',
      registry: config.registry.kind,
      lint: lintCounts,
      metricsPort: metrics.port,
    },
    'planner ready',
  );
  return {
    metricsPort: metrics.port,
    async stop() {
      await keeper.stop();
      await loop.stop();
      metrics.server.close();
      await registry.close();
      await bus.close();
    },
  };
}

async function ensureRequestConsumer(bus: Bus): Promise<void> {
  try {
    await bus.jsm.consumers.info(STREAMS.requests.name, PLANNER_CONSUMER);
  } catch {
    await bus.jsm.consumers.add(STREAMS.requests.name, {
      durable_name: PLANNER_CONSUMER,
      filter_subject: REQUEST_SUBJECT,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: ACK_WAIT_MS * 1_000_000,
      max_ack_pending: 64,
    });
  }
}
