import { parseArgs } from 'node:util';

import { type Env, envReader, InvalidTenantError, parseTenantRow, SluiceError, type Tenant } from '@sluice/core';
import { connectTenant, loadMigrationDir, TenantMigrator } from '@sluice/migrator';
import { createRegistry, loadRegistryConfig } from '@sluice/registry';

import { CliError, EXIT } from '../cli-error.js';
import type { Output } from '../output.js';

export const REPAIR_USAGE = `sluice repair --tenant ID --version V [--applied] [--database-url URL]

Clears a dirty version (a no-transaction migration that failed midway) after you have inspected
the database. By default the attempt is forgotten and the next run applies the file again;
with --applied the version is recorded as done (you finished it by hand).`;

export const BASELINE_USAGE = `sluice baseline --version V (--tenant ID | --database-url URL)

Records versions up to V as applied, without running them, for a database that already has
that schema. Refused when the database's journal already holds versions.`;

const tenantOptions = {
  tenant: { type: 'string' },
  version: { type: 'string' },
  'database-url': { type: 'string' },
  migrations: { type: 'string' },
  applied: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
} as const;

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
  const e = envReader(env);
  const tenant = await resolveTenant(env, values.tenant, values['database-url']);
  const set = await loadMigrationDir(values.migrations ?? e.string('SLUICE_MIGRATIONS_DIR', 'migrations'));
  const client = await connectTenant({
    databaseUrl: values['database-url'] ?? tenant.databaseUrl,
    host: tenant.host,
    connectTimeoutMs: e.duration('SLUICE_CONNECT_TIMEOUT', 10_000),
    lockTimeoutMs: e.duration('SLUICE_LOCK_TIMEOUT', 5_000),
    statementTimeoutMs: e.duration('SLUICE_STATEMENT_TIMEOUT', 600_000),
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
  const { values } = parseArgs({ args: argv, options: tenantOptions, strict: true });
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
  const { values } = parseArgs({ args: argv, options: tenantOptions, strict: true });
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
