import { createLogger, type Logger, resolveLogFormat } from './logger.js';
import { startTracing } from './tracing.js';

export interface ServiceDefinition<C extends { logLevel: string }> {
  service: string;
  /** Resolves configuration from the environment; throws naming the bad variable. */
  loadConfig: (env: NodeJS.ProcessEnv) => C;
  start: (config: C, logger: Logger) => Promise<{ stop(): Promise<unknown> }>;
}

/**
 * The whole of a service's `main`: tracing (when `OTEL_*` asks for it), config once, a logger,
 * start, and a clean stop on SIGTERM/SIGINT (spans flushed, exit 0) — or a fatal line naming the
 * problem and exit 1 when it cannot start.
 */
export async function runService<C extends { logLevel: string }>(definition: ServiceDefinition<C>): Promise<void> {
  const { service } = definition;
  const env = process.env;
  // Before anything connects, so the pg instrumentation is in place for the first query.
  const tracing = startTracing({ service });
  let logger = createLogger({ service, level: env.LOG_LEVEL ?? 'info' });
  try {
    const format = resolveLogFormat(env, process.stdout.isTTY === true);
    logger = createLogger({ service, level: env.LOG_LEVEL ?? 'info', format });
    const config = definition.loadConfig(env);
    logger = createLogger({ service, level: config.logLevel, format });
    logger.info({ tracing: tracing.enabled, detail: tracing.describe }, tracing.enabled ? 'tracing on' : 'tracing off');
    const running = await definition.start(config, logger);
    const shutdown = (signal: string): void => {
      logger.info({ signal }, 'stopping');
      running
        .stop()
        .finally(() => tracing.shutdown())
        .then(
          () => process.exit(0),
          (error: unknown) => {
            logger.error({ err: error }, 'stop failed');
            process.exit(1);
          },
        );
    };
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
  } catch (error) {
    logger.fatal({ err: error }, `${service} cannot start: ${(error as Error).message}`);
    await tracing.shutdown();
    process.exit(1);
  }
}
