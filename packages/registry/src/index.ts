export * from './config.js';
export * from './dynamodb.js';
export * from './file.js';
export * from './memory.js';
export * from './mongodb.js';
export * from './registry.js';
