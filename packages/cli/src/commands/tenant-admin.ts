import { type Env, envReader, InvalidTenantError, parseTenantRow, SluiceError, type Tenant } from '@sluice/core';
import { connectTenant, loadMigrationDir, TenantMigrator } from '@sluice/migrator';
import { createRegistry, loadRegistryConfig } from '@sluice/registry';

import { CliError, EXIT } from '../cli-error.js';
import { type CommandSpec, type FlagSpec, JSON_FLAG, parseCommand } from '../command-spec.js';
import type { Output } from '../output.js';

const TENANT_FLAGS: Record<string, FlagSpec> = {
  tenant: { type: 'string', value: 'ID', help: 'the tenant, looked up in the registry (SLUICE_REGISTRY)' },
  version: { type: 'string', value: 'V', help: 'the migration version' },
  'database-url': { type: 'string', value: 'URL', help: "the tenant's database, instead of the registry's" },
  migrations: { type: 'string', value: 'DIR', help: 'the migrations folder (default: SLUICE_MIGRATIONS_DIR)' },
};

export const REPAIR: CommandSpec = {
  name: 'repair',
  args: '',
  summary: 'Clears a dirty version (a no-transaction migration that failed midway).',
  description: `Run it after you have inspected the database. By default the attempt is forgotten and the
next run applies the file again; with --applied the version is recorded as done (you finished it
by hand).`,
  flags: {
    ...TENANT_FLAGS,
    applied: { type: 'boolean', default: false, help: 'record the version as applied instead of retrying it' },
    ...JSON_FLAG,
  },
  positionals: { min: 0, max: 0 },
};

export const BASELINE: CommandSpec = {
  name: 'baseline',
  args: '',
  summary: 'Records versions up to --version as applied, without running them.',
  description: `For a database that already has that schema. Refused when the database's journal already
holds versions.`,
  flags: { ...TENANT_FLAGS, ...JSON_FLAG },
  positionals: { min: 0, max: 0 },
};

interface TenantValues extends Record<string, string | boolean | string[] | undefined> {
  tenant?: string;
  version?: string;
  'database-url'?: string;
  migrations?: string;
  applied?: boolean;
  json: boolean;
}

/** Finds a tenant in the configured registry (or takes `--database-url`). */
async function resolveTenant(env: Env, tenantId: string | undefined, databaseUrl: string | undefined): Promise<Tenant> {
  if (databaseUrl) return parseTenantRow({ tenantId: tenantId ?? 'adhoc', databaseUrl });
  if (!tenantId) throw new CliError('name a tenant with --tenant ID (or give --database-url)');
  const registry = await createRegistry(loadRegistryConfig(env));
  try {
    for await (const row of registry.list({ ids: [tenantId] })) {
      if (row.tenantId === tenantId) return parseTenantRow(row);
    }
  } catch (error) {
    if (error instanceof InvalidTenantError) throw new CliError(error.message, EXIT.failure);
    throw error;
  } finally {
    await registry.close();
  }
  throw new CliError(`tenant ${tenantId} is not in the registry`, EXIT.failure);
}

async function withMigrator<T>(
  env: Env,
  values: { tenant?: string; 'database-url'?: string; migrations?: string },
  work: (m: TenantMigrator, t: Tenant) => Promise<T>,
): Promise<T> {
  // Settings first: a bad one is reported before anything is read or connected.
  const e = envReader(env);
  const timeouts = {
    connectTimeoutMs: e.duration('SLUICE_CONNECT_TIMEOUT', 10_000),
    lockTimeoutMs: e.duration('SLUICE_LOCK_TIMEOUT', 5_000),
    statementTimeoutMs: e.duration('SLUICE_STATEMENT_TIMEOUT', 600_000),
  };
  const migrationsDir = values.migrations ?? e.string('SLUICE_MIGRATIONS_DIR', 'migrations');
  const tenant = await resolveTenant(env, values.tenant, values['database-url']);
  const set = await loadMigrationDir(migrationsDir);
  const client = await connectTenant({
    databaseUrl: values['database-url'] ?? tenant.databaseUrl,
    host: tenant.host,
    ...timeouts,
    applicationName: 'sluice-cli',
  });
  try {
    return await work(new TenantMigrator(client, set, tenant.host), tenant);
  } catch (error) {
    if (error instanceof SluiceError) throw new CliError(`${tenant.tenantId}: ${error.message}`, EXIT.failure);
    throw error;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function versionOf(value: string | undefined): number {
  if (!value || !/^\d+$/.test(value)) throw new CliError('--version takes a migration version number');
  return Number(value);
}

export async function repairCommand(argv: string[], env: Env, output: Output): Promise<number> {
  const { values } = parseCommand<TenantValues>(REPAIR, argv);
  const version = versionOf(values.version);
  const resolution = values.applied ? 'applied' : 'retry';
  await withMigrator(env, values, async (migrator, tenant) => {
    await migrator.repair(version, resolution);
    output.out(
      values.json
        ? JSON.stringify({ tenantId: tenant.tenantId, version, resolution })
        : `${tenant.tenantId}: version ${version} ${resolution === 'applied' ? 'recorded as applied' : 'cleared; the next run applies it again'}`,
    );
  });
  return EXIT.ok;
}

export async function baselineCommand(argv: string[], env: Env, output: Output): Promise<number> {
  const { values } = parseCommand<TenantValues>(BASELINE, argv);
  const version = versionOf(values.version);
  await withMigrator(env, values, async (migrator, tenant) => {
    const versions = await migrator.baseline(version, 'sluice-cli');
    output.out(
      values.json
        ? JSON.stringify({ tenantId: tenant.tenantId, baseline: versions })
        : `${tenant.tenantId}: baselined versions ${versions.join(', ')}`,
    );
  });
  return EXIT.ok;
}
