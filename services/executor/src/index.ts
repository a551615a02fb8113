export * from './config.js';
export * from './executor-service.js';
export * from './retry-policy.js';
export * from './task-handler.js';
