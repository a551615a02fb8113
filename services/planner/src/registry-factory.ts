import { ConfigError } from '@sluice/core';
import { createFileRegistry, type TenantRegistry } from '@sluice/registry';

import type { PlannerConfig } from './config.js';

/** Builds the registry adapter named by `SLUICE_REGISTRY`. */
export function createRegistry(config: PlannerConfig['registry']): TenantRegistry {
  switch (config.kind) {
    case 'file':
      return createFileRegistry(config.file);
    default:
      throw new ConfigError(`SLUICE_REGISTRY=${config.kind} is not available in this build; use file`);
  }
}
