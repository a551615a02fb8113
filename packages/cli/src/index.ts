export * from './cli-error.js';
export * from './output.js';
