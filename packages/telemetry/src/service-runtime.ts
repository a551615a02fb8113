import { createLogger, type Logger } from './logger.js';

export interface ServiceDefinition<C extends { logLevel: string }> {
  service: string;
  /** Resolves configuration from the environment; throws naming the bad variable. */
  loadConfig: (env: NodeJS.ProcessEnv) => C;
  start: (config: C, logger: Logger) => Promise<{ stop(): Promise<unknown> }>;
}

/**
 * The whole of a service's `main`: config once, a logger, start, and a clean stop on
 * SIGTERM/SIGINT (exit 0) — or a fatal line naming the problem and exit 1 when it cannot start.
 */
export async function runService<C extends { logLevel: string }>(definition: ServiceDefinition<C>): Promise<void> {
  const { service } = definition;
  let logger = createLogger({ service, level: process.env.LOG_LEVEL ?? 'info' });
  try {
    const config = definition.loadConfig(process.env);
    logger = createLogger({ service, level: config.logLevel });
    const running = await definition.start(config, logger);
    const shutdown = (signal: string): void => {
      logger.info({ signal }, 'stopping');
      running.stop().then(
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
    process.exit(1);
  }
}
