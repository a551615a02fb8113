export * from './cpu-meter.js';
export * from './nats-server.js';
export * from './paths.js';
export * from './ports.js';
export * from './postgres-cluster.js';
export * from './run-watch.js';
export * from './service-process.js';
export * from './tenant-fleet.js';
