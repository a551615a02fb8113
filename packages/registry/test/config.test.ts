import { ConfigError } from '@sluice/core';
import { describe, expect, it } from 'vitest';

import { createRegistry, loadRegistryConfig } from '../src/config.js';

const fails = (env: Record<string, string>, variable: RegExp) => {
  expect(() => loadRegistryConfig(env)).toThrow(ConfigError);
  expect(() => loadRegistryConfig(env)).toThrow(variable);
};

describe('registry configuration', () => {
  it('needs SLUICE_REGISTRY, one of the three kinds', () => {
    fails({}, /SLUICE_REGISTRY is required \(one of: file, mongodb, dynamodb\)/);
    fails({ SLUICE_REGISTRY: 'postgres' }, /SLUICE_REGISTRY must be one of file, mongodb, dynamodb, got "postgres"/);
  });

  it('file: needs SLUICE_TENANTS_FILE', () => {
    fails({ SLUICE_REGISTRY: 'file' }, /SLUICE_TENANTS_FILE is required/);
    expect(loadRegistryConfig({ SLUICE_REGISTRY: 'file', SLUICE_TENANTS_FILE: 'tenants.ndjson' })).toEqual({
      kind: 'file',
      file: 'tenants.ndjson',
    });
  });

  it('mongodb: needs MONGODB_URI with a database, and defaults the rest', () => {
    fails({ SLUICE_REGISTRY: 'mongodb' }, /MONGODB_URI is required/);
    fails(
      { SLUICE_REGISTRY: 'mongodb', MONGODB_URI: 'postgres://db/x' },
      /MONGODB_URI must be a mongodb:\/\/ or mongodb\+srv:\/\//,
    );
    fails({ SLUICE_REGISTRY: 'mongodb', MONGODB_URI: 'mongodb://db:27017' }, /MONGODB_URI must name the database/);
    fails(
      { SLUICE_REGISTRY: 'mongodb', MONGODB_URI: 'mongodb://db:27017/?replicaSet=rs0' },
      /MONGODB_URI must name the database/,
    );
    fails(
      { SLUICE_REGISTRY: 'mongodb', MONGODB_URI: 'mongodb://db/registry', SLUICE_REGISTRY_PAGE_SIZE: '0' },
      /SLUICE_REGISTRY_PAGE_SIZE must be at least 1/,
    );
    const config = loadRegistryConfig({
      SLUICE_REGISTRY: 'mongodb',
      MONGODB_URI: 'mongodb+srv://app:pw@cluster.example/registry?retryWrites=true',
    });
    expect(config).toEqual({
      kind: 'mongodb',
      uri: 'mongodb+srv://app:pw@cluster.example/registry?retryWrites=true',
      collection: 'tenants',
      pageSize: 1000,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('mongodb: never repeats a password from MONGODB_URI in an error', () => {
    let message = '';
    try {
      loadRegistryConfig({ SLUICE_REGISTRY: 'mongodb', MONGODB_URI: 'mongodb://app:s3cret@db:27017' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/MONGODB_URI/);
    expect(message).not.toMatch(/s3cret/);
  });

  it('mongodb: a connection string the driver refuses fails at start, naming MONGODB_URI', async () => {
    const config = loadRegistryConfig({
      SLUICE_REGISTRY: 'mongodb',
      MONGODB_URI: 'mongodb://db/registry?maxPoolSize=lots',
    });
    await expect(createRegistry(config)).rejects.toThrow(ConfigError);
    await expect(createRegistry(config)).rejects.toThrow(/MONGODB_URI is not a usable connection string/);
  });

  it('dynamodb: defaults everything and checks the numbers', () => {
    const config = loadRegistryConfig({ SLUICE_REGISTRY: 'dynamodb' });
    expect(config).toEqual({ kind: 'dynamodb', table: 'tenants', segments: 1, pageSize: 1000, throttleAttempts: 8 });
    expect(Object.isFrozen(config)).toBe(true);
    expect(
      loadRegistryConfig({
        SLUICE_REGISTRY: 'dynamodb',
        SLUICE_TENANTS_TABLE: 'fleet',
        SLUICE_DYNAMODB_SEGMENTS: '8',
        SLUICE_REGISTRY_PAGE_SIZE: '250',
      }),
    ).toMatchObject({
      table: 'fleet',
      segments: 8,
      pageSize: 250,
    });
    fails(
      { SLUICE_REGISTRY: 'dynamodb', SLUICE_DYNAMODB_SEGMENTS: '0' },
      /SLUICE_DYNAMODB_SEGMENTS must be at least 1/,
    );
    fails(
      { SLUICE_REGISTRY: 'dynamodb', SLUICE_DYNAMODB_SEGMENTS: 'many' },
      /SLUICE_DYNAMODB_SEGMENTS must be a whole number/,
    );
    fails(
      { SLUICE_REGISTRY: 'dynamodb', SLUICE_DYNAMODB_THROTTLE_ATTEMPTS: '0' },
      /SLUICE_DYNAMODB_THROTTLE_ATTEMPTS must be at least 1/,
    );
  });

  it('builds each kind without touching the store', async () => {
    for (const env of [
      { SLUICE_REGISTRY: 'file', SLUICE_TENANTS_FILE: 'tenants.json' },
      { SLUICE_REGISTRY: 'mongodb', MONGODB_URI: 'mongodb://127.0.0.1:1/registry' },
      { SLUICE_REGISTRY: 'dynamodb' },
    ]) {
      const registry = await createRegistry(loadRegistryConfig(env));
      expect(typeof registry.list).toBe('function');
      await registry.close();
    }
  });
});
