export * from './control.js';
export * from './events.js';
export * from './ledger.js';
export * from './outcome.js';
export * from './request.js';
export * from './subjects.js';
export * from './task.js';
export * from './timings.js';
