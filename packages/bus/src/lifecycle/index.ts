export * from './publish-once.js';
export * from './run-control-store.js';
export * from './subject-reader.js';
export * from './task-ledger.js';
