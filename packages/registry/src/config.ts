import { ConfigError, type Env, envReader } from '@sluice/core';

import { createFileRegistry } from './file.js';
import type { TenantRegistry } from './registry.js';

export const REGISTRY_KINDS = ['file', 'mongodb', 'dynamodb'] as const;
export type RegistryKind = (typeof REGISTRY_KINDS)[number];

/** Which registry to read and where (from `SLUICE_REGISTRY` and the adapter's own variables). */
export type RegistryConfig = { kind: 'file'; file: string } | { kind: 'mongodb' } | { kind: 'dynamodb' };

/** Resolves the registry settings; a missing or wrong `SLUICE_REGISTRY` fails naming the variable. */
export function loadRegistryConfig(env: Env): RegistryConfig {
  const e = envReader(env);
  const kind = e.oneOf('SLUICE_REGISTRY', REGISTRY_KINDS);
  if (kind === 'file') return Object.freeze({ kind, file: e.string('SLUICE_TENANTS_FILE') });
  return Object.freeze({ kind });
}

/** Builds the adapter a configuration names. */
export function createRegistry(config: RegistryConfig): TenantRegistry {
  switch (config.kind) {
    case 'file':
      return createFileRegistry(config.file);
    default:
      throw new ConfigError(`SLUICE_REGISTRY=${config.kind} is not available in this build; use file`);
  }
}
