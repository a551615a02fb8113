import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { jetstream, type JetStreamManager, type PubAck } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { REQUEST_SUBJECT, STREAMS, type TenantOutcome } from '@sluice/contracts';
import {
  createTenantFleet,
  fleetServiceEnv,
  listOutcomes,
  type NatsClusterHandle,
  type NatsServerHandle,
  type ServiceName,
  type ServiceProcess,
  startNatsCluster,
  startNatsServer,
  startService,
  type TenantFleet,
} from '@sluice/testkit';
import pg from 'pg';

/**
 * Migrations for fault tests. A tenant is made slow or poisonous by data, never by a hook in the
 * services: version 2 sleeps while the tenant's database has a table `fx_slow`, and terminates
 * its own backend (a connection error, transient to the executor) while it has `fx_poison`.
 */
export const FAULT_MIGRATIONS: Record<string, string> = {
  '0001_accounts.sql': 'CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL);',
  '0002_backfill.sql': [
    "DO $$ BEGIN IF to_regclass('public.fx_slow') IS NOT NULL THEN PERFORM pg_sleep((SELECT seconds FROM fx_slow LIMIT 1)); END IF; END $$;",
    "DO $$ BEGIN IF to_regclass('public.fx_poison') IS NOT NULL THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF; END $$;",
    "INSERT INTO accounts VALUES (1, 'owner');",
  ].join('\n'),
  '0003_invoices.sql': 'CREATE TABLE invoices (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts (id));',
};
export const FAULT_VERSIONS = [1, 2, 3];

/** A folder with the fault migrations, and a place for registries; removed by `dispose()`. */
export async function faultWorkspace(name: string) {
  const dir = await mkdtemp(path.join(tmpdir(), `sluice-${name}-`));
  const migrationsDir = path.join(dir, 'migrations');
  await mkdir(migrationsDir);
  for (const [file, sql] of Object.entries(FAULT_MIGRATIONS)) await writeFile(path.join(migrationsDir, file), sql);
  const fleets: TenantFleet[] = [];
  const services: ServiceProcess[] = [];
  return {
    dir,
    migrationsDir,
    services,
    /** `serverUrl`: the Postgres to create the databases on (default: the local one). */
    async fleet(prefix: string, count: number, serverUrl?: string): Promise<{ fleet: TenantFleet; registry: string }> {
      const fleet = await createTenantFleet({
        count,
        ...(serverUrl ? { serverUrl } : {}),
        prefix: `${prefix}_${process.pid}`,
        tenantPrefix: prefix.replace(/_/g, '-'),
      });
      fleets.push(fleet);
      const registry = path.join(dir, `${prefix}.json`);
      await fleet.writeRegistry(registry);
      return { fleet, registry };
    },
    async start(name: ServiceName, env: Record<string, string>): Promise<ServiceProcess> {
      const s = await startService(name, env);
      services.push(s);
      return s;
    },
    async dispose(): Promise<void> {
      for (const s of services.splice(0).reverse()) await s.stop();
      for (const f of fleets) await f.drop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export type FaultWorkspace = Awaited<ReturnType<typeof faultWorkspace>>;

/**
 * What most fault tests start with: a private NATS (one server, or a cluster of `clusterSize`),
 * a client on it, a fault workspace and one fleet of `tenants` databases named after `name`.
 * `env()` gives the services' environment for it; `dispose()` stops all of it, services first.
 */
export async function faultStack<N extends NatsServerHandle | NatsClusterHandle = NatsServerHandle>(
  name: string,
  tenants: number,
  options: { clusterSize?: number } = {},
) {
  const nats = (
    options.clusterSize ? await startNatsCluster({ size: options.clusterSize }) : await startNatsServer()
  ) as N;
  let client: Awaited<ReturnType<typeof natsClient>> | undefined;
  let ws: FaultWorkspace | undefined;
  const dispose = async (): Promise<void> => {
    await client?.nc.close();
    await ws?.dispose();
    await nats.dispose();
  };
  try {
    client = await natsClient(nats.url);
    ws = await faultWorkspace(name);
    const { fleet, registry } = await ws.fleet(`sluice_${name.replace(/-/g, '_')}`, tenants);
    const workspace = ws;
    const { nc } = client;
    return {
      nats,
      ...client,
      ws: workspace,
      fleet,
      registry,
      /** Publishes a migration request as any client would (as `FleetStack.publishRequest`). */
      publishRequest: (payload: unknown, msgId?: string): Promise<PubAck> =>
        jetstream(nc).publish(REQUEST_SUBJECT, JSON.stringify(payload), msgId ? { msgID: msgId } : {}),
      /** The services' environment for this stack, with the test's own settings on top. */
      env: (overrides: Record<string, string> = {}) =>
        fleetServiceEnv(
          { natsUrl: nats.url, registryFile: registry, migrationsDir: workspace.migrationsDir },
          overrides,
        ),
      dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}

export type FaultStack<N extends NatsServerHandle | NatsClusterHandle = NatsServerHandle> = Awaited<
  ReturnType<typeof faultStack<N>>
>;

/** Marks tenants (`'all'`: every one) slow (`seconds` in migration 2) or poisonous, through their own databases. */
export async function markTenants(
  fleet: TenantFleet,
  ids: Set<string> | 'all',
  mark: { slowSeconds?: number; poison?: boolean },
): Promise<void> {
  await fleet.eachTenant(async (c, t) => {
    if (ids !== 'all' && !ids.has(t.tenantId)) return;
    if (mark.slowSeconds !== undefined)
      await c.query(`CREATE TABLE fx_slow (seconds float8); INSERT INTO fx_slow VALUES (${mark.slowSeconds})`);
    if (mark.poison) await c.query('CREATE TABLE fx_poison ()');
  });
}

/** Each tenant's journal as `version -> rows`. */
export async function journals(
  fleet: TenantFleet,
): Promise<Map<string, Array<{ version: number; n: number; run_id: string }>>> {
  const rows = await fleet.eachTenant(async (c, t) => {
    const exists = (await c.query<{ r: string | null }>("SELECT to_regclass('public.sluice_migrations')::text AS r"))
      .rows[0]!.r;
    if (!exists) return [t.tenantId, []] as const;
    const r = await c.query<{ version: number; n: number; run_id: string }>(
      'SELECT version::int, count(*)::int AS n, min(run_id) AS run_id FROM sluice_migrations GROUP BY version ORDER BY version',
    );
    return [t.tenantId, r.rows] as const;
  });
  return new Map(rows.map(([id, r]) => [id, [...r]]));
}

/** Tenants whose journal is not exactly each version once (by this run). */
export async function journalProblems(
  fleet: TenantFleet,
  runId: string,
  except: Set<string> = new Set(),
): Promise<string[]> {
  const problems: string[] = [];
  for (const [tenantId, rows] of await journals(fleet)) {
    if (except.has(tenantId)) continue;
    const ok =
      rows.length === FAULT_VERSIONS.length &&
      rows.every((r, i) => r.version === FAULT_VERSIONS[i] && r.n === 1 && r.run_id === runId);
    if (!ok) problems.push(`${tenantId}: ${JSON.stringify(rows)}`);
  }
  return problems;
}

/** A run's outcomes grouped by tenant (every message in the outcomes stream, repeats included). */
export async function outcomesByTenant(nc: NatsConnection, runId: string): Promise<Map<string, TenantOutcome[]>> {
  const by = new Map<string, TenantOutcome[]>();
  for (const o of await listOutcomes(nc, runId)) by.set(o.tenantId, [...(by.get(o.tenantId) ?? []), o]);
  return by;
}

/**
 * How many tenants have outcomes in a run's stream, and the outcomes of those with more than one:
 * `{ tenants: n, repeated: [] }` is one outcome per tenant, what message ids must make of repeats.
 */
export async function outcomeCopies(
  nc: NatsConnection,
  runId: string,
): Promise<{ tenants: number; repeated: TenantOutcome[][] }> {
  const by = await outcomesByTenant(nc, runId);
  return { tenants: by.size, repeated: [...by.values()].filter((o) => o.length !== 1) };
}

export async function natsClient(url: string): Promise<{ nc: NatsConnection; jsm: JetStreamManager }> {
  const nc = await connect({ servers: url.split(','), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  return { nc, jsm: await jetstream(nc).jetstreamManager() };
}

export async function subjectCount(jsm: JetStreamManager, stream: string, filter: string): Promise<number> {
  const info = await jsm.streams.info(stream, { subjects_filter: filter });
  return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
}

/** Executor sessions open on a tenant database right now. */
export async function sessionsOn(database: string): Promise<Array<{ pid: number; app: string }>> {
  const c = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await c.connect();
  try {
    return (
      await c.query<{ pid: number; app: string }>(
        "SELECT pid, application_name AS app FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'sluice-executor%'",
        [database],
      )
    ).rows;
  } finally {
    await c.end();
  }
}

export { STREAMS };
