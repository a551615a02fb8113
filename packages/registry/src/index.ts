export * from './config.js';
export * from './file.js';
export * from './memory.js';
export * from './registry.js';
