import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';

import pg from 'pg';

export interface FleetTenant {
  tenantId: string;
  databaseUrl: string;
  database: string;
  tags?: Record<string, string>;
  status?: 'active' | 'suspended';
}

export interface TenantFleet {
  prefix: string;
  tenants: FleetTenant[];
  /** Writes the tenants as a JSON array registry file. */
  writeRegistry(file: string, extraRows?: unknown[]): Promise<void>;
  /** Runs a query in each tenant database, `concurrency` at a time. */
  eachTenant<T>(fn: (client: pg.Client, tenant: FleetTenant) => Promise<T>, concurrency?: number): Promise<T[]>;
  /** Sluice executor sessions open in this fleet's databases now (other fleets on the server are not counted). */
  migrationSessions(): Promise<number>;
  /** Drops every database of the fleet. */
  drop(): Promise<void>;
}

export interface FleetOptions {
  count: number;
  /** `postgres://user@host:port` of the server (default: 127.0.0.1:5432, user postgres). */
  serverUrl?: string;
  /** Database name prefix; random by default so tests never collide. */
  prefix?: string;
  /** Tenant id prefix (`tenant` gives tenant-0001, …); distinct per fleet when fleets share a registry. */
  tenantPrefix?: string;
}

/** Runs `fn` over items with at most `limit` at once, keeping order in the result. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  });
  await Promise.all(workers);
  return results;
}

/** Creates `count` empty tenant databases on a Postgres server (the local one by default). */
export async function createTenantFleet(options: FleetOptions): Promise<TenantFleet> {
  const serverUrl = (options.serverUrl ?? 'postgres://postgres@127.0.0.1:5432').replace(/\/$/, '');
  const prefix = options.prefix ?? `sluice_t_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: `${serverUrl}/postgres` });
  await admin.connect();
  const tenants: FleetTenant[] = Array.from({ length: options.count }, (_, i) => {
    const database = `${prefix}_${String(i + 1).padStart(4, '0')}`;
    return {
      tenantId: `${options.tenantPrefix ?? 'tenant'}-${String(i + 1).padStart(4, '0')}`,
      database,
      databaseUrl: `${serverUrl}/${database}`,
    };
  });
  try {
    // CREATE DATABASE cannot share a transaction; one connection runs them one by one, which is
    // as fast as Postgres allows (they serialise on the template anyway).
    for (const t of tenants) await admin.query(`CREATE DATABASE "${t.database}" TEMPLATE template0`);
  } finally {
    await admin.end();
  }
  const fleet: TenantFleet = {
    prefix,
    tenants,
    async writeRegistry(file, extraRows = []) {
      const rows = [
        ...tenants.map(({ tenantId, databaseUrl, tags, status }) => ({
          tenantId,
          databaseUrl,
          ...(tags ? { tags } : {}),
          ...(status ? { status } : {}),
        })),
        ...extraRows,
      ];
      await writeFile(file, JSON.stringify(rows, null, 1));
    },
    async eachTenant(fn, concurrency = 8) {
      return mapLimit(tenants, concurrency, async (tenant) => {
        const client = new pg.Client({ connectionString: tenant.databaseUrl });
        await client.connect();
        try {
          return await fn(client, tenant);
        } finally {
          await client.end();
        }
      });
    },
    async migrationSessions() {
      const client = new pg.Client({ connectionString: `${serverUrl}/postgres` });
      await client.connect();
      try {
        const r = await client.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'sluice-executor%' AND datname = ANY($1)",
          [tenants.map((t) => t.database)],
        );
        return r.rows[0]!.n;
      } finally {
        await client.end();
      }
    },
    async drop() {
      // A few at once: each DROP waits for its own files to go, and a loaded machine makes that slow.
      const lanes = Array.from({ length: Math.min(4, tenants.length) }, () => [] as FleetTenant[]);
      tenants.forEach((t, i) => lanes[i % lanes.length]!.push(t));
      await Promise.all(
        lanes.map(async (lane) => {
          const client = new pg.Client({ connectionString: `${serverUrl}/postgres` });
          await client.connect();
          try {
            for (const t of lane) await client.query(`DROP DATABASE IF EXISTS "${t.database}" WITH (FORCE)`);
          } finally {
            await client.end();
          }
        }),
      );
    },
  };
  return fleet;
}
