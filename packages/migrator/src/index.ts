export * from './connect.js';
export * from './journal.js';
export * from './migration-files.js';
export * from './pg-errors.js';
export * from './tenant-migrator.js';
