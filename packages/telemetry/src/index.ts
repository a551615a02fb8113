export * from './logger.js';
export * from './metrics.js';
export * from './service-runtime.js';
export * from './tracing.js';
