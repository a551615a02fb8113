import { ConfigError, type Env, envReader } from '@sluice/core';

import type { DynamoRegistrySettings } from './dynamodb.js';
import { createFileRegistry } from './file.js';
import type { MongoRegistrySettings } from './mongodb.js';
import type { TenantRegistry } from './registry.js';

export const REGISTRY_KINDS = ['file', 'mongodb', 'dynamodb'] as const;
export type RegistryKind = (typeof REGISTRY_KINDS)[number];

/** Which registry to read (`SLUICE_REGISTRY`) and that adapter's settings, fully defaulted. */
export type RegistryConfig =
  | { kind: 'file'; /** `SLUICE_TENANTS_FILE`: a JSON array or NDJSON file. */ file: string }
  | ({ kind: 'mongodb' } & MongoRegistrySettings)
  | ({ kind: 'dynamodb' } & DynamoRegistrySettings);

/** Resolves the registry settings once; a missing or malformed variable fails naming it. */
export function loadRegistryConfig(env: Env): RegistryConfig {
  const e = envReader(env);
  const kind = e.oneOf('SLUICE_REGISTRY', REGISTRY_KINDS);
  const pageSize = () => e.int('SLUICE_REGISTRY_PAGE_SIZE', 1_000, { min: 1, max: 10_000 });
  switch (kind) {
    case 'file':
      return Object.freeze({ kind, file: e.string('SLUICE_TENANTS_FILE') });
    case 'mongodb':
      return Object.freeze({
        kind,
        uri: mongoUri(e.string('MONGODB_URI')),
        collection: e.string('SLUICE_TENANTS_COLLECTION', 'tenants'),
        pageSize: pageSize(),
      });
    case 'dynamodb':
      return Object.freeze({
        kind,
        table: e.string('SLUICE_TENANTS_TABLE', 'tenants'),
        segments: e.int('SLUICE_DYNAMODB_SEGMENTS', 1, { min: 1, max: 1_000 }),
        pageSize: pageSize(),
        throttleAttempts: e.int('SLUICE_DYNAMODB_THROTTLE_ATTEMPTS', 8, { min: 1, max: 100 }),
      });
  }
}

/** Checks the shape only (the driver parses the rest); never echoes the URI, which may hold a password. */
function mongoUri(uri: string): string {
  const match = /^mongodb(?:\+srv)?:\/\/[^/?#]+(?:\/([^?#]*))?/.exec(uri);
  if (!match) throw new ConfigError('MONGODB_URI must be a mongodb:// or mongodb+srv:// connection string');
  if (!match[1])
    throw new ConfigError('MONGODB_URI must name the database in its path, as in mongodb://host:27017/registry');
  return uri;
}

/**
 * Builds the adapter a configuration names; a connection string the driver refuses fails here, at
 * start. A cloud adapter (and its SDK) is loaded only when it is the one chosen: the file registry
 * never loads the MongoDB driver or the AWS SDK.
 */
export async function createRegistry(config: RegistryConfig): Promise<TenantRegistry> {
  switch (config.kind) {
    case 'file':
      return createFileRegistry(config.file);
    case 'mongodb': {
      const { createMongoRegistry } = await import('./mongodb.js');
      try {
        return createMongoRegistry(config);
      } catch (error) {
        throw new ConfigError(`MONGODB_URI is not a usable connection string: ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
    case 'dynamodb': {
      const { createDynamoRegistry } = await import('./dynamodb.js');
      return createDynamoRegistry(config);
    }
  }
}
