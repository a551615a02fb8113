export * from './config.js';
export * from './http-api.js';
export * from './reporter.js';
export * from './reporter-service.js';
export * from './run-book.js';
