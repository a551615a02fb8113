export * from './logger.js';
export * from './service-runtime.js';
