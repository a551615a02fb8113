import { connectBus, ensureTopology, followStream } from '@sluice/bus';
import { STREAMS } from '@sluice/contracts';
import type { Logger } from '@sluice/telemetry';

import type { ReporterConfig } from './config.js';
import { startHttpApi } from './http-api.js';
import { createReporter } from './reporter.js';

export interface ReporterService {
  httpPort: number;
  stop(): Promise<void>;
}

export async function startReporterService(config: ReporterConfig, logger: Logger): Promise<ReporterService> {
  const bus = await connectBus(config.bus, logger);
  await ensureTopology(bus.jsm, { replicas: config.streamReplicas });
  const reporter = createReporter({ bus, logger });
  let ready = false;
  const http = await startHttpApi(reporter.book, { port: config.httpPort, host: config.httpHost, ready: () => ready });
  const runs = await followStream(bus, STREAMS.runs.name, logger, (msg) => reporter.onRunEvent(msg));
  const outcomes = await followStream(bus, STREAMS.outcomes.name, logger, (msg) => reporter.onOutcome(msg));
  await Promise.all([runs.caughtUp, outcomes.caughtUp]);
  await reporter.goLive();
  ready = true;
  const progress = setInterval(() => {
    reporter.publishProgress().catch((error: unknown) => logger.warn({ err: error }, 'progress publish failed'));
  }, config.progressIntervalMs);
  logger.info({ httpPort: http.port, runs: reporter.book.list().length }, 'reporter ready');
  return {
    httpPort: http.port,
    async stop() {
      clearInterval(progress);
      http.server.close();
      await runs.stop();
      await outcomes.stop();
      await bus.close();
    },
  };
}
