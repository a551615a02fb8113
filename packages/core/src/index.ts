export * from './duration.js';
export * from './env.js';
export * from './errors.js';
export * from './migration-plan.js';
export * from './migration-set.js';
export * from './run-aggregate.js';
export * from './sql-splitter.js';
export * from './tenant.js';
