import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { REQUEST_SUBJECT } from '@sluice/contracts';
import {
  createTenantFleet,
  fleetServiceEnv,
  type NatsServerHandle,
  type PostgresClusterHandle,
  type PromScrape,
  scrapeMetrics,
  type ServiceProcess,
  startNatsServer,
  startPostgresCluster,
  startService,
  type TenantFleet,
  waitForCompleted,
} from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Every tenant spends ~0.4 s in migration 2: with 4 per host at once, a 40-tenant run lasts a few
// seconds, long enough to watch its queues drain through /metrics.
const MIGRATIONS = {
  '0001_accounts.sql': 'CREATE TABLE accounts (id bigint PRIMARY KEY);',
  '0002_slow.sql': 'SELECT pg_sleep(0.4);\nINSERT INTO accounts VALUES (1);',
};
const PER_HOST = 20;
const LIMIT = 4;
const HOST_A = '127.0.0.1:5432';

/** What one round of scrapes saw: the reporter's view of every host's queue, and each executor's own. */
interface Tick {
  at: number;
  queue: Record<string, { pending: number; inFlight: number; limit: number }>;
  rate: number | undefined;
  executors: Array<{ inFlight: Record<string, number>; connections: Record<string, number>; busy: number }>;
}

function byHost(page: PromScrape, name: string): Record<string, number> {
  return Object.fromEntries(page.samples(name).map((s) => [s.labels.host!, s.value]));
}

describe('metrics during a run: queues drain, in-flight stays within each host limit', () => {
  let nats: NatsServerHandle;
  let hostB: PostgresClusterHandle;
  let nc: NatsConnection;
  let dir: string;
  const fleets: TenantFleet[] = [];
  const services: ServiceProcess[] = [];

  beforeAll(async () => {
    [nats, hostB] = await Promise.all([startNatsServer(), startPostgresCluster()]);
    nc = await connect({ servers: nats.url });
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-metrics-'));
    await mkdir(path.join(dir, 'migrations'));
    for (const [file, sql] of Object.entries(MIGRATIONS)) await writeFile(path.join(dir, 'migrations', file), sql);
    fleets.push(
      await createTenantFleet({ count: PER_HOST, prefix: `sluice_metrics_a${process.pid}`, tenantPrefix: 'a' }),
    );
    fleets.push(
      await createTenantFleet({
        count: PER_HOST,
        serverUrl: hostB.serverUrl,
        prefix: `sluice_metrics_b${process.pid}`,
        tenantPrefix: 'b',
      }),
    );
    await writeFile(
      path.join(dir, 'tenants.json'),
      JSON.stringify(fleets.flatMap((f) => f.tenants).map(({ tenantId, databaseUrl }) => ({ tenantId, databaseUrl }))),
    );
  });

  afterAll(async () => {
    for (const s of services.splice(0).reverse()) await s.stop();
    await nc?.close();
    for (const f of fleets) await f.drop().catch(() => undefined);
    await hostB?.dispose();
    await nats?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('shows queue depth falling to 0, in-flight rising and falling within the limit, and counts that match the run', async () => {
    const hostBKey = `127.0.0.1:${hostB.port}`;
    const env = fleetServiceEnv(
      { natsUrl: nats.url, registryFile: path.join(dir, 'tenants.json'), migrationsDir: path.join(dir, 'migrations') },
      {
        SLUICE_HOST_LIMIT: String(LIMIT),
        SLUICE_HOST_START_LIMIT: String(LIMIT),
        SLUICE_METRICS_PORT: '0',
        SLUICE_QUEUE_SAMPLE_INTERVAL: '100ms',
        SLUICE_DISCOVERY_INTERVAL: '200ms',
      },
    );
    const reporter = await startService('reporter', env);
    services.push(reporter);
    const executors: ServiceProcess[] = [];
    for (const id of ['m1', 'm2']) {
      const x = await startService('executor', { ...env, SLUICE_EXECUTOR_ID: id, SLUICE_CONCURRENCY: String(LIMIT) });
      services.push(x);
      executors.push(x);
    }
    const planner = await startService('planner', env);
    services.push(planner);
    const portOf = (s: ServiceProcess, field: string): number =>
      Number(s.logs.find((l) => typeof l.msg === 'string' && l.msg.endsWith(' ready'))?.[field]);
    const reporterUrl = `http://127.0.0.1:${portOf(reporter, 'httpPort')}/metrics`;
    const executorUrls = executors.map((x) => `http://127.0.0.1:${portOf(x, 'metricsPort')}/metrics`);
    const plannerUrl = `http://127.0.0.1:${portOf(planner, 'metricsPort')}/metrics`;

    // Scrape everything over and over while the run goes.
    const ticks: Tick[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const [r, ...xs] = await Promise.all([
          scrapeMetrics(reporterUrl),
          ...executorUrls.map((u) => scrapeMetrics(u)),
        ]);
        const pending = byHost(r, 'sluice_queue_pending');
        const inFlight = byHost(r, 'sluice_queue_in_flight');
        const limit = byHost(r, 'sluice_queue_limit');
        ticks.push({
          at: Date.now(),
          queue: Object.fromEntries(
            Object.keys(pending).map((h) => [h, { pending: pending[h]!, inFlight: inFlight[h]!, limit: limit[h]! }]),
          ),
          rate: r.value('sluice_run_tenants_per_second', { run_id: 'metrics-1' }),
          executors: xs.map((x) => ({
            inFlight: byHost(x, 'sluice_executor_host_in_flight'),
            connections: byHost(x, 'sluice_executor_db_connections'),
            busy: x.value('sluice_executor_slots_busy') ?? NaN,
          })),
        });
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();

    await jetstream(nc).publish(REQUEST_SUBJECT, JSON.stringify({ runId: 'metrics-1', target: 'latest' }));
    const done = await waitForCompleted(nc, 'metrics-1');
    expect(done).toMatchObject({ status: 'succeeded', counts: { total: 2 * PER_HOST, migrated: 2 * PER_HOST } });
    // The same queue samples give the run report each host's at-limit share: both hosts were held at their limit.
    const shares = Object.fromEntries((done.timings?.hosts ?? []).map((h) => [h.host, h.atLimitShare]));
    expect(shares[HOST_A]).toBeGreaterThan(0);
    expect(shares[hostBKey]).toBeGreaterThan(0);
    // After the run: the queues come down to nothing and the run's rate series goes away.
    await expect
      .poll(
        () => {
          const last = ticks.at(-1);
          return last && { a: last.queue[HOST_A], b: last.queue[hostBKey], rate: last.rate };
        },
        { timeout: 20_000, interval: 100 },
      )
      .toEqual({
        a: { pending: 0, inFlight: 0, limit: LIMIT },
        b: { pending: 0, inFlight: 0, limit: LIMIT },
        rate: undefined,
      });
    watching = false;
    await watcher;

    const summary: Record<string, unknown> = { ticks: ticks.length, seconds: (ticks.at(-1)!.at - ticks[0]!.at) / 1000 };
    for (const host of [HOST_A, hostBKey]) {
      const series = ticks.map((t) => t.queue[host]).filter((q) => q !== undefined);
      const pending = series.map((q) => q.pending);
      const peak = Math.max(...pending);
      // Pending starts high: most of the host's tasks waited behind its limit at some sample ...
      expect(peak).toBeGreaterThanOrEqual(PER_HOST / 2);
      // ... and, once planned, only ever fell (no retries here), down to 0.
      const fromPeak = pending.slice(pending.indexOf(peak));
      for (let i = 1; i < fromPeak.length; i++) expect(fromPeak[i]).toBeLessThanOrEqual(fromPeak[i - 1]!);
      expect(pending.at(-1)).toBe(0);
      // In flight over all executors, as the server counts it: above 0, never above the limit.
      const inFlight = series.map((q) => q.inFlight);
      expect(Math.max(...inFlight)).toBeGreaterThan(0);
      expect(Math.max(...inFlight)).toBeLessThanOrEqual(LIMIT);
      // Each executor's own view: the same bounds, back to 0 at the end.
      const own = ticks.flatMap((t) => t.executors.map((x) => x.inFlight[host] ?? 0));
      const conns = ticks.flatMap((t) => t.executors.map((x) => x.connections[host] ?? 0));
      expect(Math.max(...own)).toBeGreaterThan(0);
      expect(Math.max(...own)).toBeLessThanOrEqual(LIMIT);
      expect(Math.max(...conns)).toBeGreaterThan(0);
      expect(Math.max(...conns)).toBeLessThanOrEqual(LIMIT);
      expect(ticks.at(-1)!.executors.map((x) => [x.inFlight[host] ?? 0, x.connections[host] ?? 0])).toEqual([
        [0, 0],
        [0, 0],
      ]);
      summary[host] = {
        peakPending: peak,
        peakInFlight: Math.max(...inFlight),
        peakExecutorInFlight: Math.max(...own),
        peakConnections: Math.max(...conns),
        atLimitSamples: series.filter((q) => q.pending > 0 && q.inFlight >= q.limit).length,
        samples: series.length,
      };
    }
    // The run's rate was there while it ran.
    const rates = ticks.map((t) => t.rate).filter((r) => r !== undefined);
    expect(Math.max(...rates)).toBeGreaterThan(0);
    summary.peakTenantsPerSecond = Math.max(...rates);
    summary.peakBusySlots = Math.max(...ticks.flatMap((t) => t.executors.map((x) => x.busy)));
    expect(ticks.at(-1)!.executors.map((x) => x.busy)).toEqual([0, 0]);

    // Counters match the run: one duration per tenant, database time for each, no errors.
    const xs = await Promise.all(executorUrls.map((u) => scrapeMetrics(u)));
    const total = (name: string, labels: Record<string, string> = {}): number =>
      xs.reduce((sum, x) => sum + (x.value(name, labels) ?? 0), 0);
    expect(total('sluice_executor_task_duration_seconds_count', { result: 'done' })).toBe(2 * PER_HOST);
    expect(total('sluice_executor_tasks_total', { result: 'done', code: 'none' })).toBe(2 * PER_HOST);
    expect(total('sluice_executor_tasks_total')).toBe(2 * PER_HOST);
    for (const phase of ['connect', 'journal', 'execute']) {
      expect(total('sluice_executor_db_seconds_count', { host: HOST_A, phase })).toBe(PER_HOST);
      expect(total('sluice_executor_db_seconds_count', { host: hostBKey, phase })).toBe(PER_HOST);
    }
    // pg_sleep(0.4) per tenant is execute time.
    expect(total('sluice_executor_db_seconds_sum', { phase: 'execute' })).toBeGreaterThanOrEqual(0.4 * 2 * PER_HOST);
    expect(total('sluice_executor_errors_total')).toBe(0);
    for (const x of xs) expect(x.value('sluice_executor_host_max_limit', { host: HOST_A })).toBe(LIMIT);

    const r = await scrapeMetrics(reporterUrl);
    expect(r.value('sluice_reporter_outcomes_total', { status: 'migrated' })).toBe(2 * PER_HOST);
    expect(r.value('sluice_reporter_tenant_duration_seconds_count', { status: 'migrated' })).toBe(2 * PER_HOST);
    expect(r.value('sluice_reporter_runs_active')).toBe(0);

    const p = await scrapeMetrics(plannerUrl);
    expect(p.value('sluice_planner_runs_total', { result: 'planned' })).toBe(1);
    expect(p.value('sluice_planner_runs_total', { result: 'rejected' })).toBe(0);
    expect(p.value('sluice_planner_tasks_published_total')).toBe(2 * PER_HOST);
    expect(p.value('sluice_planner_registry_rows_total', { result: 'ok' })).toBe(2 * PER_HOST);
    expect(p.value('sluice_planner_planning_duration_seconds_count')).toBe(1);
    summary.atLimitShare = shares;
    console.info(`metrics e2e observed: ${JSON.stringify(summary)}`);
  });
});
