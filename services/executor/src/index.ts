export { type ExecutorConfig, loadExecutorConfig } from './config.js';
export { type DeliveryResult } from './delivery.js';
export { type ExecutorOverrides, type ExecutorService, startExecutorService } from './executor-service.js';
export { retryDelayMs } from './retry-policy.js';
export { type TenantWork } from './tenant-work.js';
