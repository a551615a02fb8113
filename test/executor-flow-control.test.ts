import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { REQUEST_SUBJECT } from '@sluice/contracts';
import {
  countOutcomes,
  createTenantFleet,
  listOutcomes,
  type NatsServerHandle,
  type PostgresClusterHandle,
  type ServiceProcess,
  startNatsServer,
  startPostgresCluster,
  startService,
  type TenantFleet,
  waitForCompleted,
} from '@sluice/testkit';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

// Every tenant spends ~150 ms inside migration 2, so concurrency is visible from outside.
const MIGRATIONS = {
  '0001_accounts.sql': 'CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL);',
  '0002_slow_backfill.sql': "SELECT pg_sleep(0.15);\nINSERT INTO accounts VALUES (1, 'owner');",
  '0003_invoices.sql': 'CREATE TABLE invoices (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts (id));',
};
const HOST_A = '127.0.0.1:5432';

describe('executor flow control: per-host limits, breakers, retries, shutdown', () => {
  let nats: NatsServerHandle;
  let hostB: PostgresClusterHandle;
  let nc: NatsConnection;
  let dir: string;
  let migrationsDir: string;
  const services: ServiceProcess[] = [];
  const fleets: TenantFleet[] = [];

  beforeAll(async () => {
    [nats, hostB] = await Promise.all([startNatsServer(), startPostgresCluster({ max_connections: '60' })]);
    nc = await connect({ servers: nats.url });
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-flow-'));
    migrationsDir = path.join(dir, 'migrations');
    await mkdir(migrationsDir);
    for (const [file, sql] of Object.entries(MIGRATIONS)) await writeFile(path.join(migrationsDir, file), sql);
  });

  afterEach(async () => {
    for (const s of services.splice(0)) await s.stop();
  });

  afterAll(async () => {
    await nc?.close();
    for (const f of fleets) await f.drop().catch(() => undefined);
    await hostB?.dispose();
    await nats?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const hostBKey = () => `127.0.0.1:${hostB.port}`;

  /** A fleet on both hosts and a registry file naming all of it. */
  async function twoHostFleet(
    name: string,
    perHost: number,
  ): Promise<{ registry: string; a: TenantFleet; b: TenantFleet }> {
    const a = await createTenantFleet({ count: perHost, tenantPrefix: `${name}-a` });
    const b = await createTenantFleet({ count: perHost, serverUrl: hostB.serverUrl, tenantPrefix: `${name}-b` });
    fleets.push(a, b);
    const registry = path.join(dir, `${name}.json`);
    await writeFile(
      registry,
      JSON.stringify([...a.tenants, ...b.tenants].map(({ tenantId, databaseUrl }) => ({ tenantId, databaseUrl }))),
    );
    return { registry, a, b };
  }

  function env(registry: string, extra: Record<string, string> = {}): Record<string, string> {
    return {
      NATS_URL: nats.url,
      SLUICE_MIGRATIONS_DIR: migrationsDir,
      SLUICE_REGISTRY: 'file',
      SLUICE_TENANTS_FILE: registry,
      SLUICE_REPORTER_PORT: '0',
      SLUICE_HOST_LIMITS: `${HOST_A}=3,${hostBKey()}=2`,
      SLUICE_DISCOVERY_INTERVAL: '200ms',
      SLUICE_RETRY_BASE: '300ms',
      SLUICE_RETRY_MAX: '2s',
      SLUICE_MAX_ATTEMPTS: '12',
      SLUICE_ACK_WAIT: '4s',
      SLUICE_BREAKER_RESET: '1s',
      PGUSER: 'postgres',
      ...extra,
    };
  }

  async function startAll(e: Record<string, string>, executors: number): Promise<ServiceProcess[]> {
    services.push(await startService('reporter', e));
    const started: ServiceProcess[] = [];
    for (let i = 1; i <= executors; i++) {
      const x = await startService('executor', { ...e, SLUICE_EXECUTOR_ID: `x${i}`, SLUICE_CONCURRENCY: '4' });
      services.push(x);
      started.push(x);
    }
    services.push(await startService('planner', e));
    return started;
  }

  const publish = (payload: unknown) => jetstream(nc).publish(REQUEST_SUBJECT, JSON.stringify(payload));

  /** Samples the migration sessions in each host's fleet until stopped: the highest count seen. */
  function sampleConcurrency(hosts: Record<string, { url: string; fleet: TenantFleet }>): {
    stop: () => Promise<Record<string, number>>;
  } {
    const peaks: Record<string, number> = Object.fromEntries(Object.keys(hosts).map((k) => [k, 0]));
    let running = true;
    const loops = Object.entries(hosts).map(async ([key, { url, fleet }]) => {
      const client = new pg.Client({ connectionString: `${url}/postgres` });
      await client.connect();
      const databases = fleet.tenants.map((t) => t.database);
      while (running) {
        const r = await client.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'sluice-executor%' AND datname = ANY($1)",
          [databases],
        );
        peaks[key] = Math.max(peaks[key]!, r.rows[0]!.n);
        await new Promise((resolve) => setTimeout(resolve, 15));
      }
      await client.end();
    });
    return {
      async stop() {
        running = false;
        await Promise.all(loops);
        return peaks;
      },
    };
  }

  /** Each version exactly once, in every tenant of the fleets. */
  async function expectJournalsComplete(...fs: TenantFleet[]): Promise<void> {
    for (const f of fs) {
      const rows = await f.eachTenant(
        async (c) =>
          (
            await c.query<{ v: string; n: number }>(
              'SELECT version::text AS v, count(*)::int AS n FROM sluice_migrations GROUP BY 1 ORDER BY 1',
            )
          ).rows,
      );
      for (const r of rows)
        expect(r).toEqual([
          { v: '1', n: 1 },
          { v: '2', n: 1 },
          { v: '3', n: 1 },
        ]);
    }
  }

  it('never runs more migrations on a host than its limit, however many replicas pull', async () => {
    const { registry, a, b } = await twoHostFleet('lim', 24);
    const executors = await startAll(env(registry), 3);
    const sampler = sampleConcurrency({
      [HOST_A]: { url: 'postgres://postgres@127.0.0.1:5432', fleet: a },
      [hostBKey()]: { url: hostB.serverUrl, fleet: b },
    });
    await publish({ runId: 'limits', target: 'latest' });
    const done = await waitForCompleted(nc, 'limits');
    const peaks = await sampler.stop();
    expect(done).toMatchObject({ status: 'succeeded', counts: { total: 48, migrated: 48 } });
    expect(peaks[HOST_A]).toBeLessThanOrEqual(3);
    expect(peaks[hostBKey()]).toBeLessThanOrEqual(2);
    // The limits are used, not just respected: both hosts ran tenants side by side.
    expect(peaks[HOST_A]! + peaks[hostBKey()]!).toBeGreaterThanOrEqual(3);
    await expectJournalsComplete(a, b);

    // Each replica shows its adaptive limit per host, bounded by the host's cap, on /metrics.
    for (const x of executors) {
      const port = (x.logs.find((l) => l.msg === 'executor ready')?.metricsPort ?? 0) as number;
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const gauge = (name: string, host: string): number =>
        Number(new RegExp(`^${name}\\{host="${host.replace(/\./g, '\\.')}"[^}]*\\} (\\d+)`, 'm').exec(text)?.[1]);
      expect(gauge('sluice_executor_host_max_limit', HOST_A)).toBe(3);
      expect(gauge('sluice_executor_host_max_limit', hostBKey())).toBe(2);
      expect(gauge('sluice_executor_host_limit', HOST_A)).toBeGreaterThanOrEqual(1);
      expect(gauge('sluice_executor_host_limit', HOST_A)).toBeLessThanOrEqual(3);
      expect(text).toMatch(/sluice_executor_tasks_total\{result="done",code="none"[^}]*\} \d+/);
      expect(text).toMatch(/sluice_executor_breaker_state\{host="127\.0\.0\.1:5432",state="closed"[^}]*\} 1/);
    }
  });

  it('keeps a migration longer than the ack wait on its first executor (in-progress acks)', async () => {
    const longDir = path.join(dir, 'long-migrations');
    await mkdir(longDir);
    await writeFile(path.join(longDir, '0001_long.sql'), 'SELECT pg_sleep(5);\nCREATE TABLE long_done (id int);');
    const fleet = await createTenantFleet({ count: 2, tenantPrefix: 'long' });
    fleets.push(fleet);
    const registry = path.join(dir, 'long.json');
    await fleet.writeRegistry(registry);
    await startAll(env(registry, { SLUICE_MIGRATIONS_DIR: longDir, SLUICE_ACK_WAIT: '2s' }), 2);
    await publish({ runId: 'long', target: 'latest' });
    const done = await waitForCompleted(nc, 'long');
    expect(done).toMatchObject({ status: 'succeeded', counts: { migrated: 2 } });
    const outcomes = await listOutcomes(nc, 'long');
    expect(outcomes.map((o) => o.attempts)).toEqual([1, 1]);
    const journals = await fleet.eachTenant(
      async (c) => (await c.query('SELECT count(*)::int AS n FROM sluice_migrations')).rows[0] as { n: number },
    );
    expect(journals).toEqual([{ n: 1 }, { n: 1 }]);
  });

  it('survives a SIGKILLed executor: every version once, its tenants picked up after the ack wait', async () => {
    const { registry, a, b } = await twoHostFleet('kill', 20);
    const [victim] = await startAll(env(registry), 3);
    await publish({ runId: 'kill', target: 'latest' });
    // Kill it while it holds tenants: its sessions are visible in pg_stat_activity.
    const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await admin.connect();
    const adminB = new pg.Client({ connectionString: `${hostB.serverUrl}/postgres` });
    await adminB.connect();
    const victimSessions = async (): Promise<number> => {
      const q =
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'sluice-executor:x1:%' AND datname = ANY($1)";
      const dbs = (f: TenantFleet) => [f.tenants.map((t) => t.database)];
      const [x, y] = await Promise.all([admin.query<{ n: number }>(q, dbs(a)), adminB.query<{ n: number }>(q, dbs(b))]);
      return x.rows[0]!.n + y.rows[0]!.n;
    };
    await expect.poll(victimSessions, { timeout: 30_000, interval: 10 }).toBeGreaterThan(0);
    await Promise.all([admin.end(), adminB.end()]);
    await victim!.kill();
    const done = await waitForCompleted(nc, 'kill');
    expect(done).toMatchObject({ status: 'succeeded', counts: { total: 40, migrated: 40, failed: 0 } });
    await expectJournalsComplete(a, b);
    const outcomes = await listOutcomes(nc, 'kill');
    const retried = outcomes.filter((o) => o.attempts > 1);
    expect(retried.length).toBeGreaterThan(0);
    // Picked up again by the replicas that lived, once the dead one's deliveries ran out their ack wait.
    for (const o of retried) expect(o.executorId).not.toBe('x1');
  });

  it('opens the breaker of a host that goes down, keeps migrating the other host, and finishes the run cleanly', async () => {
    const { registry, a, b } = await twoHostFleet('down', 20);
    const executors = await startAll(env(registry, { SLUICE_HOST_LIMITS: `${HOST_A}=1,${hostBKey()}=2` }), 2);
    await publish({ runId: 'down', target: 'latest' });
    await expect.poll(() => countOutcomes(nc, 'down'), { timeout: 30_000 }).toBeGreaterThanOrEqual(3);
    await hostB.stop();
    const hostAOutcomes = async (): Promise<number> =>
      (await listOutcomes(nc, 'down')).filter((o) => o.host === HOST_A).length;
    const before = await hostAOutcomes();
    // Host B's breaker opens, and host A goes on meanwhile: waited for, not assumed within a window.
    await expect
      .poll(() => executors.some((x) => x.logs.some((l) => l.breaker === 'open' && l.host === hostBKey())), {
        timeout: 60_000,
        interval: 100,
      })
      .toBe(true);
    await expect.poll(hostAOutcomes, { timeout: 60_000, interval: 100 }).toBeGreaterThan(before);
    const during = (await hostAOutcomes()) - before;
    await hostB.start();
    const done = await waitForCompleted(nc, 'down');
    expect(done).toMatchObject({ status: 'succeeded', counts: { total: 40, migrated: 40, failed: 0 } });
    expect(during).toBeGreaterThan(0);
    expect(before + during).toBeLessThanOrEqual(20);
    expect(executors.some((x) => x.logs.some((l) => l.breaker === 'open' && l.host === HOST_A))).toBe(false);
    await expectJournalsComplete(a, b);
  });

  it('keeps "too many connections" out of tenant outcomes on a host with a low max_connections', async () => {
    await hostB.stop();
    await hostB.start({ max_connections: '6', superuser_reserved_connections: '0' });
    const { registry, b } = await twoHostFleet('maxconn', 16).then(async (f) => {
      await f.a.drop();
      return f;
    });
    // The configured limit (10) is more than the host can take; the adaptive limit must cope.
    const e = env(registry, { SLUICE_HOST_LIMITS: `${hostBKey()}=10`, SLUICE_HOST_START_LIMIT: '8' });
    const executors = await startAll(e, 2);
    const hog = await Promise.all(
      [1, 2, 3].map(async () => {
        const c = new pg.Client({ connectionString: `${hostB.serverUrl}/postgres` });
        await c.connect();
        return c;
      }),
    );
    await publish({ runId: 'maxconn', target: 'latest', tenants: { ids: b.tenants.map((t) => t.tenantId) } });
    const done = await waitForCompleted(nc, 'maxconn');
    await Promise.all(hog.map((c) => c.end()));
    const outcomes = await listOutcomes(nc, 'maxconn');
    expect(outcomes.filter((o) => o.error)).toEqual([]);
    // The host did refuse sessions; the executors retried and backed off instead of failing tenants.
    const refusals = executors
      .flatMap((x) => x.logs)
      .filter((l) => (l.err as { sqlState?: string } | undefined)?.sqlState === '53300');
    expect(refusals.length).toBeGreaterThan(0);
    expect(done).toMatchObject({ status: 'succeeded', counts: { total: 16, migrated: 16 } });
    await hostB.stop();
    await hostB.start();
  });

  it('fails only the tenant whose SQL fails, without opening its host breaker', async () => {
    const { registry, a, b } = await twoHostFleet('sqlerr', 6);
    const broken = a.tenants[2]!;
    await a.eachTenant(async (c, t) => {
      if (t.tenantId === broken.tenantId) await c.query('CREATE TABLE invoices (id int)');
    });
    const executors = await startAll(env(registry, { SLUICE_BREAKER_VOLUME: '1' }), 2);
    await publish({ runId: 'sqlerr', target: 'latest' });
    const done = await waitForCompleted(nc, 'sqlerr');
    expect(done.status).toBe('partial');
    expect(done.counts).toMatchObject({ total: 12, migrated: 11, failed: 1 });
    expect(done.failures).toEqual([
      {
        tenantId: broken.tenantId,
        code: 'sql_error',
        error: expect.stringMatching(/version 3: relation "invoices" already exists/) as string,
      },
    ]);
    expect(executors.some((x) => x.logs.some((l) => l.breaker === 'open'))).toBe(false);
    await expectJournalsComplete(b);
  });

  it('on SIGTERM, finishes or puts back in-flight work, exits 0, and loses no task', async () => {
    const { registry, a, b } = await twoHostFleet('term', 16);
    const e = env(registry, { SLUICE_SHUTDOWN_GRACE: '5s' });
    const [first] = await startAll(e, 1);
    await publish({ runId: 'term', target: 'latest' });
    await expect.poll(() => countOutcomes(nc, 'term'), { timeout: 30_000 }).toBeGreaterThanOrEqual(2);
    const code = await first!.stop(15_000);
    expect(code).toBe(0);
    // It stopped by itself within its grace (not killed by stop()'s fallback), saying what it put back.
    // (Its last lines may be read after the process has exited: waited for, not looked up.)
    const stopped = await first!.waitForLog((l) => l.msg === 'executor stopped', 10_000);
    expect(stopped).toMatchObject({ putBack: expect.any(Number) as number });
    services.push(await startService('executor', { ...e, SLUICE_EXECUTOR_ID: 'x-after' }));
    const done = await waitForCompleted(nc, 'term');
    expect(done).toMatchObject({ status: 'succeeded', counts: { total: 32, migrated: 32 } });
    await expectJournalsComplete(a, b);
  });
});
