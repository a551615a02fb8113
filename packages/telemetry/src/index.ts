export { createLogger, type Logger } from './logger.js';
export {
  Counter,
  createMetricsRegistry,
  DEFAULT_METRICS_PORT,
  Gauge,
  Histogram,
  type ReadinessChecks,
  type Registry,
  serveHealth,
  startMetricsServer,
} from './metrics.js';
export { runService } from './service-runtime.js';
export { startTracing, type Tracing } from './tracing.js';
