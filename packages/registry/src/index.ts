export {
  createRegistry,
  loadRegistryConfig,
  REGISTRY_KINDS,
  type RegistryConfig,
  type RegistryKind,
} from './config.js';
export { createFileRegistry } from './file.js';
export { createMemoryRegistry } from './memory.js';
export { type RegistryRow, RegistryUnavailableError, type TenantRegistry } from './registry.js';
// The cloud adapters are subpaths, so that importing this entry loads neither SDK:
// `@sluice/registry/mongodb` (createMongoRegistry) and `@sluice/registry/dynamodb` (createDynamoRegistry).
