import { AckPolicy, type Bus, connectBus, DeliverPolicy, ensureTopology, type JsMsg, startPullLoop } from '@sluice/bus';
import { STREAMS } from '@sluice/contracts';
import { loadMigrationDir } from '@sluice/migrator';
import type { Logger } from '@sluice/telemetry';

import type { ExecutorConfig } from './config.js';
import { createTaskHandler } from './task-handler.js';

export const EXECUTOR_CONSUMER = 'sluice-executors';

export interface ExecutorService {
  /** Stops pulling, lets in-flight migrations finish within the grace period, puts back the rest. */
  stop(): Promise<{ putBack: number }>;
}

export async function startExecutorService(config: ExecutorConfig, logger: Logger): Promise<ExecutorService> {
  const migrations = await loadMigrationDir(config.migrationsDir);
  const bus: Bus = await connectBus(config.bus, logger);
  await ensureTopology(bus.jsm, { replicas: config.streamReplicas });
  await ensureTaskConsumer(bus, config);
  const consumer = await bus.js.consumers.get(STREAMS.tasks.name, EXECUTOR_CONSUMER);
  const handleTask = createTaskHandler({ bus, migrations, logger, config });
  const inFlight = new Set<JsMsg>();
  const loop = startPullLoop(consumer, { concurrency: config.concurrency, logger }, async (msg) => {
    inFlight.add(msg);
    try {
      await handleTask(msg);
    } finally {
      inFlight.delete(msg);
    }
  });
  logger.info({ executorId: config.executorId, digest: migrations.digest, concurrency: config.concurrency }, 'executor ready');
  return {
    async stop() {
      const { unfinished } = await loop.stop(config.shutdownGraceMs);
      // What could not finish goes back at once for another replica; its transaction dies with our connection.
      for (const msg of inFlight) msg.nak();
      if (unfinished > 0) logger.warn({ putBack: unfinished }, 'in-flight tasks put back');
      await bus.close();
      return { putBack: unfinished };
    },
  };
}

async function ensureTaskConsumer(bus: Bus, config: ExecutorConfig): Promise<void> {
  try {
    await bus.jsm.consumers.info(STREAMS.tasks.name, EXECUTOR_CONSUMER);
  } catch {
    await bus.jsm.consumers.add(STREAMS.tasks.name, {
      durable_name: EXECUTOR_CONSUMER,
      filter_subject: 'sluice.tasks.>',
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: config.ackWaitMs * 1_000_000,
      // Attempts are counted by the executor (it publishes the final outcome), not by the server.
      max_deliver: -1,
      max_ack_pending: 10_000,
    });
  }
}
