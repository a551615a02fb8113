export * from './config.js';
export * from './planner-service.js';
export * from './request-validation.js';
export * from './tenant-planner.js';
