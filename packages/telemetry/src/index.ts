export { createLogger, type Logger } from './logger.js';
export { Counter, createMetricsRegistry, Gauge, Histogram, type Registry, startMetricsServer } from './metrics.js';
export { runService } from './service-runtime.js';
export { startTracing, type Tracing } from './tracing.js';
