/**
 * The fleet benchmark (`npm run bench`, or `npm run bench -- --quick` for a smoke check):
 * the same fleet, the same migrations, in the same run, migrated by
 *   1. the sequential loop Sluice replaces (one tenant after another, one connection at a time),
 *   2. node-pg-migrate and Sqitch run for each tenant in turn,
 *   3. in-process pools with the same total concurrency and no broker: Sluice's own migrator
 *      (TenantMigrator, the reference for every ratio), a careful script (one round trip per
 *      file) and a plain one (one statement per round trip),
 *   4. Sluice with 1, 2 and 4 executor replicas (separate processes over NATS JetStream),
 * behind TCP proxies that add a round-trip delay (real tenant databases are across a network; the
 * proxies run in a child process, so no contender's CPU includes them),
 * plus the orchestration ceiling: synthetic tenants whose migration is a no-op, so only
 * planner -> JetStream -> executors -> reporter is measured.
 *
 * Every parallel contender is measured warm, as a long-lived executor runs in production: before
 * each timed run it migrates the first `--warmup` tenants once (Sluice on its freshly started
 * executors, the pools in the bench process), those tenants are emptied again, and only then is
 * the whole fleet timed. What the first run on fresh executor processes costs is stated apart.
 *
 * Writes docs/benchmarks.md, docs/benchmarks.svg and README.md's "Measured" block after a full
 * run only: --quick and runs restricted with --tenants, --rtt, --repeat, --replicas or --only
 * print their tables and write nothing (--no-write: a full run writes nothing either).
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { REQUEST_SUBJECT, type RunCompletedEvent } from '@sluice/contracts';
import type { MigrationSet } from '@sluice/core';
import { loadMigrationDir } from '@sluice/migrator';
import {
  createTenantFleet,
  fleetServiceEnv,
  MIGRATIONS_DIR,
  peakRssBytes,
  processTreeCpuMs,
  REPO_ROOT,
  type ServiceProcess,
  startCpuMeter,
  startNatsServer,
  startPostgresCluster,
  startService,
  type TenantFleet,
  waitForCompleted,
} from '@sluice/testkit';
import pg from 'pg';

import { migrateTenantCarefully, migrateTenantNaively, runPool } from './contenders/naive-loop.js';
import { migrateTenantWithNodePgMigrate, writeNodePgMigrateDir } from './contenders/node-pg-migrate.js';
import { migrateTenantWithSluiceMigrator } from './contenders/sluice-migrator-pool.js';
import { migrateTenantWithSqitch, sqitchAvailable, writeSqitchProject } from './contenders/sqitch.js';
import {
  type BenchmarkReport,
  type ContenderResult,
  REFERENCE,
  renderBenchmarkMarkdown,
  renderBenchmarkSvg,
  renderReadmeMeasured,
  replaceReadmeMeasured,
  type RttResult,
} from './report.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    tenants: { type: 'string' },
    rtt: { type: 'string' },
    repeat: { type: 'string' },
    sample: { type: 'string' },
    /** Sqitch starts Perl and psql per change: its sample is smaller. */
    'sqitch-sample': { type: 'string' },
    concurrency: { type: 'string', default: '16' },
    /** Tenants each parallel contender migrates once, untimed, before its timed run (0: none, measure cold). */
    warmup: { type: 'string' },
    /** Executor replica counts to run Sluice with, comma-separated (default 1,2,4; quick 1,2). */
    replicas: { type: 'string' },
    'ceiling-tenants': { type: 'string' },
    /** Synthetic host counts the ceiling runs over, comma-separated (default 8,1000; quick 8). */
    'ceiling-hosts': { type: 'string' },
    /** Seconds each ceiling set-up is measured idle after its runs (what its hosts cost when nothing happens). */
    'idle-seconds': { type: 'string' },
    'no-write': { type: 'boolean', default: false },
    /** Rewrite README.md's generated "Measured" block even with --no-write (it is rewritten with docs/benchmarks.md anyway). */
    'write-readme': { type: 'boolean', default: false },
    /** `contenders` or `ceiling`: run one part only (the report then holds that part). */
    only: { type: 'string' },
    /** Write V8 CPU profiles of the executors (real path) and of the ceiling's services to this folder. */
    profile: { type: 'string' },
  },
});
const quick = values.quick;
const TENANTS = Number(values.tenants ?? (quick ? 100 : 1_000));
const RTTS = (values.rtt ?? (quick ? '5' : '0,5,20')).split(',').map(Number);
const REPEAT = Number(values.repeat ?? (quick ? 1 : 3));
const SAMPLE = Math.min(TENANTS, Number(values.sample ?? (quick ? 10 : 50)));
const SQITCH_SAMPLE = Math.min(SAMPLE, Number(values['sqitch-sample'] ?? (quick ? 5 : 10)));
const CONCURRENCY = Number(values.concurrency);
const CEILING = Number(values['ceiling-tenants'] ?? (quick ? 2_000 : 100_000));
const CEILING_HOSTS = (values['ceiling-hosts'] ?? (quick ? '8' : '8,1000')).split(',').map(Number);
const IDLE_SECONDS = Number(values['idle-seconds'] ?? (quick ? 3 : 20));
// --quick keeps under two minutes on the shared 2-core machine: 4 replicas only in the full run.
const REPLICAS = (values.replicas ?? (quick ? '1,2' : '1,2,4')).split(',').map(Number);
const WARMUP = Math.min(TENANTS, Number(values.warmup ?? (quick ? 32 : 100)));
const ONLY = values.only;
// A restricted run's figures are not the page's: only a full run rewrites the docs.
const PARTIAL = [
  values.tenants,
  values.rtt,
  values.replicas,
  values.only,
  values.repeat,
  values['ceiling-tenants'],
  values['ceiling-hosts'],
].some((v) => v !== undefined);
const WRITE = !values['no-write'] && !quick && !PARTIAL;
if (ONLY !== undefined && ONLY !== 'contenders' && ONLY !== 'ceiling')
  throw new Error('--only takes contenders or ceiling');
const PROFILE_ARGS = values.profile ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(values.profile)}`] : [];

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const say = (line: string): void => console.log(`[bench] ${line}`);
const benchStarted = performance.now();

// ---------------------------------------------------------------- the fleet: two hosts, proxies
const migrations: MigrationSet = await loadMigrationDir(MIGRATIONS_DIR);
const dir = await mkdtemp(path.join(tmpdir(), 'sluice-fleet-bench-'));
const cleanups: Array<() => Promise<unknown>> = [];
const services: ServiceProcess[] = [];
let nc: NatsConnection | undefined;

try {
  say(`starting two Postgres hosts, NATS, ${TENANTS} tenants (${quick ? 'quick' : 'full'} mode)`);
  // Autovacuum off: it cleans the catalogs the resets between contenders leave dead rows in during
  // whichever contender runs next, and its launcher starts a worker in every database in use each
  // minute whoever runs (84 ms of CPU a second per host of 500 databases: bench/autovacuum-cost.ts).
  const FLEET_HOST_SETTINGS = { max_connections: '200', autovacuum: 'off' };
  const hosts = await Promise.all([
    startPostgresCluster(FLEET_HOST_SETTINGS),
    startPostgresCluster(FLEET_HOST_SETTINGS),
  ]);
  for (const h of hosts) cleanups.push(() => h.dispose());
  const nats = await startNatsServer();
  cleanups.push(() => nats.dispose());
  nc = await connect({ servers: nats.url });
  const fleets: TenantFleet[] = [];
  for (const [i, h] of hosts.entries()) {
    const count = i === 0 ? Math.ceil(TENANTS / 2) : Math.floor(TENANTS / 2);
    const fleet = await createTenantFleet({
      count,
      serverUrl: h.serverUrl,
      tenantPrefix: `h${i + 1}`,
      prefix: `bench_h${i + 1}`,
    });
    fleets.push(fleet);
  }
  const proxyProcess = await startProxyProcess(hosts.map((h) => h.port));
  cleanups.push(() => proxyProcess.close());
  const proxies = proxyProcess.ports.map((port) => ({ port }));
  // The postmasters: every backend's CPU ends up in theirs (cutime) once it exits.
  const postmasters = hosts.map((h) =>
    Number(readFileSync(path.join(h.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]),
  );
  const postgresCpuMs = (): number => postmasters.reduce((sum, pid) => sum + processTreeCpuMs(pid), 0);
  const postgresSettings = await pgSettings(hosts[0].serverUrl);
  // Tenants as every contender sees them: through their host's proxy. Interleaved across hosts.
  const direct = fleets.flatMap((f) => f.tenants);
  const viaProxy = (url: string): string => {
    const index = hosts.findIndex((h) => url.includes(`:${h.port}/`));
    return url.replace(`:${hosts[index]!.port}/`, `:${proxies[index]!.port}/`);
  };
  const tenants = interleave(
    fleets.map((f) => f.tenants.map((t) => ({ tenantId: t.tenantId, databaseUrl: viaProxy(t.databaseUrl) }))),
  );
  const sample = interleave(
    fleets.map((f) =>
      f.tenants
        .slice(0, Math.ceil(SAMPLE / 2))
        .map((t) => ({ tenantId: t.tenantId, databaseUrl: viaProxy(t.databaseUrl) })),
    ),
  ).slice(0, SAMPLE);
  // A host key (`127.0.0.1:PORT` of a proxy) as a URL hostOf understands.
  const viaProxyHost = (host: string): string => `postgres://x@${host}/`;
  const registry = path.join(dir, 'tenants.json');
  await writeFile(registry, JSON.stringify(tenants));

  const EMPTY_SCHEMA = 'DROP SCHEMA public CASCADE; CREATE SCHEMA public; DROP SCHEMA IF EXISTS sqitch CASCADE';
  /** Back to an empty schema everywhere (directly, not through the proxies). */
  const reset = async (): Promise<void> => {
    await Promise.all(fleets.map((f) => f.eachTenant((c) => c.query(EMPTY_SCHEMA), 8)));
  };
  // The warm-up tenants: the first of the (interleaved) fleet, as a run selector and directly.
  const warmupTenants = tenants.slice(0, WARMUP);
  const warmupIds = new Set(warmupTenants.map((t) => t.tenantId));
  const warmupDirect = direct.filter((t) => warmupIds.has(t.tenantId));
  /** The warm-up tenants back to an empty schema, so the timed run starts from the same fleet. */
  const resetWarmup = async (): Promise<void> => {
    await runPool(warmupDirect, 8, async (t) => {
      const client = new pg.Client({ connectionString: t.databaseUrl });
      await client.connect();
      try {
        await client.query(EMPTY_SCHEMA);
      } finally {
        await client.end();
      }
    });
  };
  const setRtt = (ms: number): Promise<void> => proxyProcess.setDelay(ms);

  const npmDir = await writeNodePgMigrateDir(migrations, path.join(dir, 'node-pg-migrate'));
  const hasSqitch = await sqitchAvailable();
  const sqitchDir = hasSqitch ? await writeSqitchProject(migrations, path.join(dir, 'sqitch')) : '';
  if (!hasSqitch) say('sqitch is not installed (Debian: apt-get install sqitch libdbd-pg-perl): its row is left out');

  const env = fleetServiceEnv(
    { natsUrl: nats.url, registryFile: registry },
    { SLUICE_HOST_LIMIT: String(Math.max(1, Math.floor(CONCURRENCY / 2))), SLUICE_DISCOVERY_INTERVAL: '250ms' },
  );
  const reporter = await startService('reporter', env, { nodeArgs: PROFILE_ARGS });
  const planner = await startService('planner', env, { nodeArgs: PROFILE_ARGS });
  services.push(reporter, planner);

  let runCounter = 0;
  /**
   * Sluice on `replicas` fresh executors: a warm-up run over the warm-up tenants (its figures are
   * the cold start), then, with those tenants emptied again when `resetAfterWarmup`, the timed run.
   */
  const runSluice = async (
    replicas: number,
    resetAfterWarmup: boolean,
  ): Promise<{
    wallMs: number;
    completed: RunCompletedEvent;
    cpu: ReturnType<ReturnType<typeof startCpuMeter>['stop']>;
    postgresMs: number;
    executorRss: number;
    executorCount: number;
    cold?: { wallMs: number; executorsMs: number };
  }> => {
    const executors: ServiceProcess[] = [];
    for (let r = 1; r <= replicas; r++)
      executors.push(
        await startService(
          'executor',
          { ...env, SLUICE_EXECUTOR_ID: `bench-x${r}`, SLUICE_CONCURRENCY: String(CONCURRENCY) },
          { nodeArgs: PROFILE_ARGS },
        ),
      );
    let cold: { wallMs: number; executorsMs: number } | undefined;
    if (WARMUP > 0) {
      const meter = startCpuMeter({ executors: () => executors.map((x) => x.pid) });
      const t0 = performance.now();
      const runId = `bench-warmup-${Date.now().toString(36)}-${++runCounter}`;
      await jetstream(nc!).publish(
        REQUEST_SUBJECT,
        JSON.stringify({ runId, target: 'latest', tenants: { ids: [...warmupIds] } }),
      );
      const completed = await waitForCompleted(nc!, runId, 1_800_000);
      if (completed.counts.failed > 0) throw new Error(`warm-up run: ${JSON.stringify(completed.counts)}`);
      cold = { wallMs: performance.now() - t0, executorsMs: meter.stop().groupsMs.executors ?? 0 };
      if (resetAfterWarmup) await resetWarmup();
    }
    const runId = `bench-${Date.now().toString(36)}-${++runCounter}`;
    const meter = startCpuMeter({
      executors: () => executors.map((x) => x.pid),
      planner: () => [planner.pid],
      reporter: () => [reporter.pid],
      'nats-server': () => [nats.pid],
      bench: () => [process.pid],
    });
    const pg0 = postgresCpuMs();
    const t0 = performance.now();
    await jetstream(nc!).publish(REQUEST_SUBJECT, JSON.stringify({ runId, target: 'latest' }));
    const completed = await waitForCompleted(nc!, runId, 1_800_000);
    const wallMs = performance.now() - t0;
    const cpu = meter.stop();
    const postgresMs = postgresCpuMs() - pg0;
    const executorRss = Math.max(...executors.map((x) => peakRssBytes(x.pid)));
    for (const x of executors) await x.stop();
    return { wallMs, completed, cpu, postgresMs, executorRss, executorCount: replicas, ...(cold ? { cold } : {}) };
  };
  const sluiceEntry = (r: Awaited<ReturnType<typeof runSluice>>, executorRss?: number): RunEntry => {
    const g = r.cpu.groupsMs;
    // The cold start, apart: the warm-up run on fresh executors against the same tenants warm.
    const warmExecutorMs = (g.executors ?? 0) / TENANTS;
    const cold = r.cold
      ? `first run on fresh executors (${WARMUP} tenants): ${(r.cold.wallMs / 1000).toFixed(2)} s, executors ${(r.cold.executorsMs / WARMUP).toFixed(2)} ms/tenant, start-up ≈ ${Math.round(Math.max(0, r.cold.executorsMs - WARMUP * warmExecutorMs) / r.executorCount)} ms CPU per executor`
      : '';
    return {
      wallMs: r.wallMs,
      measured: TENANTS,
      // Sluice's own: planner, executors, reporter, nats-server (the bench only publishes and waits).
      cpuMs: (g.executors ?? 0) + (g.planner ?? 0) + (g.reporter ?? 0) + (g['nats-server'] ?? 0),
      cpu: g,
      writes: r.cpu.groupsWrites,
      postgresMs: r.postgresMs,
      machineMs: r.cpu.machineMs,
      ...(executorRss ? { rss: `executor ${mb(executorRss)}` } : {}),
      note: r.completed.bottleneck ? `${r.completed.bottleneck.label}` : '',
      ...(cold ? { cold } : {}),
      concurrency: (r.completed.timings?.hosts ?? [])
        .map((h) => `${hostOf(viaProxyHost(h.host))} ${fixed1(h.effectiveConcurrency ?? 0)}/${h.limit ?? '?'}`)
        .sort()
        .join(', '),
    };
  };

  // ------------------------------------------------------------- the proxy adds what it claims
  const proxyCheck: Array<{ claimedMs: number; addedMs: number }> = [];
  const rttsToRun = ONLY === 'ceiling' ? [] : RTTS;
  for (const rtt of rttsToRun) {
    await setRtt(rtt);
    proxyCheck.push({
      claimedMs: rtt,
      addedMs:
        (await medianSelectMs(viaProxy(direct[0]!.databaseUrl))) - (await medianSelectMs(direct[0]!.databaseUrl)),
    });
  }

  // ------------------------------------------------------------------------------- contenders
  const results: RttResult[] = [];
  const hostOf = (url: string): string => `h${proxies.findIndex((p) => url.includes(`:${p.port}/`)) + 1}`;
  /** An in-process pool over the fleet, with its CPU (bench process, Postgres) and each host's mean in flight. */
  const runInProcessPool = async (work: (t: { databaseUrl: string }) => Promise<unknown>): Promise<RunEntry> => {
    await reset();
    // The same warm-up as Sluice's executors get (the bench process is warm after its first one).
    if (WARMUP > 0) {
      await runPool(warmupTenants, CONCURRENCY, work);
      await resetWarmup();
    }
    const busyMs = new Map<string, number>();
    const meter = startCpuMeter({ bench: () => [process.pid] });
    const pg0 = postgresCpuMs();
    const t0 = performance.now();
    await runPool(tenants, CONCURRENCY, async (t) => {
      const started = performance.now();
      await work(t);
      const host = hostOf(t.databaseUrl);
      busyMs.set(host, (busyMs.get(host) ?? 0) + performance.now() - started);
    });
    const wallMs = performance.now() - t0;
    const cpu = meter.stop();
    return {
      wallMs,
      measured: tenants.length,
      cpuMs: cpu.groupsMs.bench ?? 0,
      cpu: { bench: cpu.groupsMs.bench ?? 0 },
      writes: { bench: cpu.groupsWrites.bench ?? 0 },
      postgresMs: postgresCpuMs() - pg0,
      machineMs: cpu.machineMs,
      concurrency: [...busyMs.entries()]
        .sort()
        .map(([host, ms]) => `${host} ${fixed1(ms / wallMs)}/${CONCURRENCY / 2}`)
        .join(', '),
    };
  };
  for (const rtt of rttsToRun) {
    await setRtt(rtt);
    const runs: Record<string, RunEntry[]> = {};
    const record = (name: string, entry: (typeof runs)[string][number]): void => {
      (runs[name] ??= []).push(entry);
    };
    for (let rep = 1; rep <= REPEAT; rep++) {
      say(`rtt ${rtt} ms, round ${rep}/${REPEAT}`);
      await reset();
      let t0 = performance.now();
      for (const t of sample) await migrateTenantNaively(t.databaseUrl, migrations);
      record('sequential loop', { wallMs: performance.now() - t0, measured: sample.length });

      await reset();
      t0 = performance.now();
      for (const t of sample) await migrateTenantWithNodePgMigrate(t.databaseUrl, npmDir);
      record('node-pg-migrate, tenant by tenant', { wallMs: performance.now() - t0, measured: sample.length });

      if (hasSqitch) {
        await reset();
        t0 = performance.now();
        for (const t of sample.slice(0, SQITCH_SAMPLE)) await migrateTenantWithSqitch(t.databaseUrl, sqitchDir);
        record('sqitch, tenant by tenant', {
          wallMs: performance.now() - t0,
          measured: Math.min(sample.length, SQITCH_SAMPLE),
        });
      }

      // The parallel contenders, in alternating order from round to round.
      const parallel: Array<[string, () => Promise<RunEntry>]> = [
        [
          REFERENCE,
          () =>
            runInProcessPool((t) => migrateTenantWithSluiceMigrator(t.databaseUrl, hostOf(t.databaseUrl), migrations)),
        ],
        [
          'in-process pool, one round trip per file',
          () => runInProcessPool((t) => migrateTenantCarefully(t.databaseUrl, migrations)),
        ],
        [
          'in-process pool, one statement per round trip',
          () => runInProcessPool((t) => migrateTenantNaively(t.databaseUrl, migrations)),
        ],
        ...REPLICAS.map((replicas): [string, () => Promise<RunEntry>] => [
          `Sluice, ${replicas} executor${replicas > 1 ? 's' : ''}`,
          async () => {
            await reset();
            const r = await runSluice(replicas, true);
            if (r.completed.counts.migrated !== TENANTS)
              throw new Error(
                `Sluice run: ${JSON.stringify(r.completed.counts)} (${JSON.stringify(r.completed.failures.slice(0, 3))})`,
              );
            return sluiceEntry(r, r.executorRss);
          },
        ]),
      ];
      for (const [name, run] of rep % 2 === 1 ? parallel : [...parallel].reverse()) record(name, await run());
      // The same fleet again: every tenant is already up to date.
      const upToDate = await runSluice(2, false);
      if (upToDate.completed.counts.upToDate !== TENANTS)
        throw new Error(`up-to-date run: ${JSON.stringify(upToDate.completed.counts)}`);
      record('Sluice, 2 executors, fleet already up to date', { ...sluiceEntry(upToDate), rss: undefined });
    }
    const contenders: ContenderResult[] = Object.entries(runs).map(([name, entries]) => {
      const m = median(entries.map((e) => e.wallMs / e.measured));
      const chosen = entries.find((e) => e.wallMs / e.measured === m)!;
      return {
        name,
        measured: chosen.measured,
        msPerTenant: m,
        wallMsForFleet: m * TENANTS,
        tenantsPerSec: 1000 / m,
        runs: entries.length,
        ...(chosen.cpuMs !== undefined ? { ownCpuMsPerTenant: chosen.cpuMs / chosen.measured } : {}),
        ...(chosen.cpu
          ? {
              cpuMsPerTenant: Object.fromEntries(Object.entries(chosen.cpu).map(([k, v]) => [k, v / chosen.measured])),
            }
          : {}),
        ...(chosen.postgresMs !== undefined ? { postgresCpuMsPerTenant: chosen.postgresMs / chosen.measured } : {}),
        ...(chosen.writes
          ? {
              writesPerTenant: Object.fromEntries(
                Object.entries(chosen.writes).map(([k, v]) => [k, v / chosen.measured]),
              ),
            }
          : {}),
        ...(chosen.concurrency ? { concurrency: chosen.concurrency } : {}),
        ...(chosen.machineMs !== undefined ? { machineCpuMsPerTenant: chosen.machineMs / chosen.measured } : {}),
        ...(chosen.rss ? { rss: chosen.rss } : {}),
        ...(chosen.note ? { note: chosen.note } : {}),
        ...(chosen.cold ? { cold: chosen.cold } : {}),
      };
    });
    results.push({ rttMs: rtt, contenders });
  }
  const serviceRss = { planner: peakRssBytes(planner.pid), reporter: peakRssBytes(reporter.pid) };
  for (const s of services.splice(0)) await s.stop();

  // --------------------------------------------------------------- the orchestration ceiling
  const ceilings: NonNullable<BenchmarkReport['ceilings']> = [];
  for (const hostCount of ONLY === 'contenders' ? [] : CEILING_HOSTS) {
    say(`orchestration ceiling: ${CEILING} synthetic tenants on ${hostCount} hosts, no-op migration`);
    const ceilingFile = path.join(dir, `synthetic-${hostCount}.ndjson`);
    const lines: string[] = [];
    // Host h is 10.254.<h / 250>.<h % 250 + 1>: addresses nobody listens on (the work is a no-op).
    const hostOf = (h: number): string => `10.254.${Math.floor(h / 250)}.${(h % 250) + 1}`;
    for (let i = 0; i < CEILING; i++)
      lines.push(
        JSON.stringify({ tenantId: `syn-${i}`, databaseUrl: `postgres://bench@${hostOf(i % hostCount)}:5432/t${i}` }),
      );
    await writeFile(ceilingFile, `${lines.join('\n')}\n`);
    const ceilingEnv = fleetServiceEnv(
      { natsUrl: nats.url, registryFile: ceilingFile },
      {
        SLUICE_HOST_LIMIT: '128',
        SLUICE_HOST_START_LIMIT: '128',
        SLUICE_DISCOVERY_INTERVAL: '250ms',
        LOG_LEVEL: 'warn',
      },
    );
    const ceilingServices = [
      await startService('reporter', { ...ceilingEnv, LOG_LEVEL: 'info' }, { nodeArgs: PROFILE_ARGS }),
      await startService('planner', { ...ceilingEnv, LOG_LEVEL: 'info' }, { nodeArgs: PROFILE_ARGS }),
    ];
    services.push(...ceilingServices);
    const noopExecutors: ServiceProcess[] = [];
    for (let r = 1; r <= 2; r++) {
      noopExecutors.push(
        await startService(
          'executor',
          { ...ceilingEnv, LOG_LEVEL: 'info', SLUICE_EXECUTOR_ID: `noop-${hostCount}-${r}`, SLUICE_CONCURRENCY: '512' },
          { entry: path.join(REPO_ROOT, 'bench', 'noop-executor.ts'), nodeArgs: ['--import', 'tsx', ...PROFILE_ARGS] },
        ),
      );
    }
    services.push(...noopExecutors);
    const meterGroups = {
      planner: () => [ceilingServices[1]!.pid],
      reporter: () => [ceilingServices[0]!.pid],
      executors: () => noopExecutors.map((x) => x.pid),
      'nats-server': () => [nats.pid],
    };
    const ceilingRuns: Array<{ wallMs: number; cpu: Record<string, number>; machineMs: number }> = [];
    for (let rep = 1; rep <= REPEAT; rep++) {
      const runId = `ceiling-${hostCount}-${Date.now().toString(36)}-${rep}`;
      const meter = startCpuMeter(meterGroups);
      const t0 = performance.now();
      await jetstream(nc).publish(REQUEST_SUBJECT, JSON.stringify({ runId, target: 'latest' }));
      const completed = await waitForCompleted(nc, runId, 1_800_000);
      const wallMs = performance.now() - t0;
      const cpu = meter.stop();
      if (completed.counts.upToDate !== CEILING) throw new Error(`ceiling run: ${JSON.stringify(completed.counts)}`);
      ceilingRuns.push({ wallMs, cpu: cpu.groupsMs, machineMs: cpu.machineMs });
      say(`ceiling round ${rep}, ${hostCount} hosts: ${(CEILING / (wallMs / 1000)).toFixed(0)} tenants/s`);
    }
    // What this set-up costs with nothing to do: every host has its queue, consumer and lanes by
    // now. After 10 s (quick: 2), so the runs' garbage collection and last writes are over.
    await new Promise((r) => setTimeout(r, quick ? 2_000 : 10_000));
    const idleMeter = startCpuMeter(meterGroups);
    await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1_000));
    const idle = idleMeter.stop();
    const idleMsPerSec = Object.fromEntries(Object.entries(idle.groupsMs).map(([k, v]) => [k, v / IDLE_SECONDS]));
    say(
      `ceiling idle, ${hostCount} hosts: ${Object.entries(idleMsPerSec)
        .map(([k, v]) => `${k} ${v.toFixed(1)}`)
        .join(', ')} ms CPU a second`,
    );
    const ceilingMedian = median(ceilingRuns.map((r) => r.wallMs));
    const ceilingRun = ceilingRuns.find((r) => r.wallMs === ceilingMedian)!;
    ceilings.push({
      hosts: hostCount,
      tenants: CEILING,
      wallMs: ceilingMedian,
      tenantsPerSec: CEILING / (ceilingMedian / 1000),
      cpuMsPerTenant: Object.fromEntries(Object.entries(ceilingRun.cpu).map(([k, v]) => [k, v / CEILING])),
      machineCpuMsPerTenant: ceilingRun.machineMs / CEILING,
      idleCpuMsPerSec: idleMsPerSec,
      runs: ceilingRuns.length,
      rss: {
        planner: peakRssBytes(ceilingServices[1]!.pid),
        reporter: peakRssBytes(ceilingServices[0]!.pid),
        executor: Math.max(...noopExecutors.map((x) => peakRssBytes(x.pid))),
      },
    });
    for (const x of services.splice(0)) await x.stop();
  }

  // ------------------------------------------------------------------------------- the report
  const report = {
    machine: machineFacts(),
    settings: {
      tenants: TENANTS,
      sample: SAMPLE,
      repeat: REPEAT,
      concurrency: CONCURRENCY,
      rtts: RTTS,
      quick,
      migrations: migrations.migrations.length,
      warmup: WARMUP,
    },
    proxyCheck,
    postgresSettings,
    loadAverage: loadavg()
      .map((x) => fixed1(x))
      .join(' '),
    results,
    serviceRss,
    ...(ceilings.length > 0 ? { ceilings } : {}),
    durationS: (performance.now() - benchStarted) / 1000,
  };
  const markdown = renderBenchmarkMarkdown(report);
  console.log(`\n${markdown}`);
  if (WRITE) {
    await writeFile(path.join(REPO_ROOT, 'docs', 'benchmarks.md'), markdown);
    await writeFile(path.join(REPO_ROOT, 'docs', 'benchmarks.svg'), renderBenchmarkSvg(report));
    say('wrote docs/benchmarks.md and docs/benchmarks.svg');
  }
  // The README's figures come from the same report as docs/benchmarks.md, so the two always agree.
  if (WRITE || values['write-readme']) {
    const readmePath = path.join(REPO_ROOT, 'README.md');
    await writeFile(readmePath, replaceReadmeMeasured(readFileSync(readmePath, 'utf8'), renderReadmeMeasured(report)));
    say('rewrote the Measured block of README.md');
  }
} finally {
  for (const s of services) await s.stop().catch(() => undefined);
  await nc?.close().catch(() => undefined);
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}

interface RunEntry {
  wallMs: number;
  measured: number;
  /** The contender's own CPU (Sluice: planner, executors, reporter, nats-server; pools: the bench process). */
  cpuMs?: number;
  /** CPU by process group. */
  cpu?: Record<string, number>;
  /** Write system calls by process group. */
  writes?: Record<string, number>;
  /** The Postgres hosts' CPU (postmasters with every backend and worker). */
  postgresMs?: number;
  machineMs?: number;
  rss?: string | undefined;
  note?: string;
  /** The first run on fresh processes (Sluice's warm-up), stated apart from the timed run. */
  cold?: string;
  /** Each host's mean tenants in flight over the run against its limit, `h1 7.6/8, h2 7.5/8`. */
  concurrency?: string;
}

function fixed1(x: number): string {
  return x.toFixed(1);
}

/** The delay proxies in a child process (see delay-proxy-process.ts). */
async function startProxyProcess(
  targets: number[],
): Promise<{ ports: number[]; setDelay(ms: number): Promise<void>; close(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(REPO_ROOT, 'bench', 'delay-proxy-process.ts'), ...targets.map(String)],
    { stdio: ['pipe', 'pipe', 'inherit'], cwd: REPO_ROOT },
  );
  const lines = createInterface({ input: child.stdout });
  const waiters: Array<(line: string) => void> = [];
  lines.on('line', (line) => waiters.shift()?.(line));
  const nextLine = (): Promise<string> => new Promise((resolve) => waiters.push(resolve));
  const { ports } = JSON.parse(await nextLine()) as { ports: number[] };
  return {
    ports,
    async setDelay(ms) {
      const ack = nextLine();
      child.stdin.write(`delay ${ms}\n`);
      await ack;
    },
    async close() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin.end();
      await exited;
    },
  };
}

/** The settings of a fleet host that decide how hard a commit is (stated in the report). */
async function pgSettings(serverUrl: string): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: `${serverUrl}/postgres` });
  await client.connect();
  try {
    const r = await client.query<{ name: string; setting: string }>(
      "SELECT name, setting FROM pg_settings WHERE name IN ('autovacuum', 'fsync', 'synchronous_commit', 'full_page_writes', 'max_connections', 'shared_buffers') ORDER BY name",
    );
    return Object.fromEntries(r.rows.map((x) => [x.name, x.setting]));
  } finally {
    await client.end();
  }
}

function interleave<T>(lists: T[][]): T[] {
  const out: T[] = [];
  for (let i = 0; i < Math.max(...lists.map((l) => l.length)); i++)
    for (const l of lists) if (i < l.length) out.push(l[i]!);
  return out;
}

function mb(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MB`;
}

/** Median time of `SELECT 1` over one connection (to check what the proxy adds). */
async function medianSelectMs(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const times: number[] = [];
  for (let i = 0; i < 25; i++) {
    const t0 = performance.now();
    await client.query('SELECT 1');
    times.push(performance.now() - t0);
  }
  await client.end();
  return median(times);
}

function machineFacts(): Record<string, string> {
  const version = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0]!;
    } catch {
      return 'not found';
    }
  };
  const pkg = (name: string): string => {
    try {
      return (
        JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as {
          version: string;
        }
      ).version;
    } catch {
      return 'not installed';
    }
  };
  const pgBin = execFileSync('sh', ['-c', 'ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1'], {
    encoding: 'utf8',
  }).trim();
  return {
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
    memory: `${Math.round(totalmem() / 1024 ** 3)} GiB`,
    node: process.version,
    postgres: version(path.join(pgBin, 'postgres'), ['--version']),
    'nats-server': version('nats-server', ['--version']),
    'node-pg-migrate': pkg('node-pg-migrate'),
    sqitch: version('sqitch', ['--version']),
    pg: pkg('pg'),
    date: new Date().toISOString().slice(0, 10),
  };
}
