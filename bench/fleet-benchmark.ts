/**
 * The fleet benchmark (`npm run bench`, or `npm run bench -- --quick` for a smoke check):
 * the same fleet, the same migrations, in the same run, migrated by
 *   1. the sequential loop Sluice replaces (one tenant after another, one connection at a time),
 *   2. node-pg-migrate and Sqitch run for each tenant in turn,
 *   3. a careful in-process parallel loop with the same total concurrency and no broker,
 *   4. Sluice with 1, 2 and 4 executor replicas (separate processes over NATS JetStream),
 * behind TCP proxies that add a round-trip delay (real tenant databases are across a network),
 * plus the orchestration ceiling: synthetic tenants whose migration is a no-op, so only
 * planner -> JetStream -> executors -> reporter is measured.
 *
 * Writes docs/benchmarks.md and docs/benchmarks.svg (unless --no-write) and prints the tables.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { REQUEST_SUBJECT, type RunCompletedEvent } from '@sluice/contracts';
import type { MigrationSet } from '@sluice/core';
import { loadMigrationDir } from '@sluice/migrator';
import {
  createTenantFleet,
  type DelayProxyHandle,
  fleetServiceEnv,
  MIGRATIONS_DIR,
  peakRssBytes,
  REPO_ROOT,
  type ServiceProcess,
  startCpuMeter,
  startDelayProxy,
  startNatsServer,
  startPostgresCluster,
  startService,
  type TenantFleet,
  waitForCompleted,
} from '@sluice/testkit';
import pg from 'pg';

import { migrateTenantNaively, runPool } from './contenders/naive-loop.js';
import { migrateTenantWithNodePgMigrate, writeNodePgMigrateDir } from './contenders/node-pg-migrate.js';
import { migrateTenantWithSqitch, sqitchAvailable, writeSqitchProject } from './contenders/sqitch.js';
import {
  type BenchmarkReport,
  type ContenderResult,
  renderBenchmarkMarkdown,
  renderBenchmarkSvg,
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
    'ceiling-tenants': { type: 'string' },
    'no-write': { type: 'boolean', default: false },
    /** `contenders` or `ceiling`: run one part only (the report then holds that part). */
    only: { type: 'string' },
    /** Write V8 CPU profiles of the ceiling's services to this folder. */
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
const CEILING = Number(values['ceiling-tenants'] ?? (quick ? 5_000 : 100_000));
const REPLICAS = [1, 2, 4];
const ONLY = values.only;
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
  const hosts = await Promise.all([
    startPostgresCluster({ max_connections: '200' }),
    startPostgresCluster({ max_connections: '200' }),
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
  const proxies: DelayProxyHandle[] = [];
  for (const h of hosts) proxies.push(await startDelayProxy({ port: h.port }, RTTS[0]!));
  for (const p of proxies) cleanups.push(() => p.close());
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
  const registry = path.join(dir, 'tenants.json');
  await writeFile(registry, JSON.stringify(tenants));

  /** Back to an empty schema everywhere (directly, not through the proxies). */
  const reset = async (): Promise<void> => {
    await Promise.all(
      fleets.map((f) =>
        f.eachTenant(
          (c) => c.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public; DROP SCHEMA IF EXISTS sqitch CASCADE'),
          8,
        ),
      ),
    );
  };
  const setRtt = (ms: number): void => {
    for (const p of proxies) p.setDelay(ms);
  };

  const npmDir = await writeNodePgMigrateDir(migrations, path.join(dir, 'node-pg-migrate'));
  const hasSqitch = await sqitchAvailable();
  const sqitchDir = hasSqitch ? await writeSqitchProject(migrations, path.join(dir, 'sqitch')) : '';
  if (!hasSqitch) say('sqitch is not installed (Debian: apt-get install sqitch libdbd-pg-perl): its row is left out');

  const env = fleetServiceEnv(
    { natsUrl: nats.url, registryFile: registry },
    { SLUICE_HOST_LIMIT: String(Math.max(1, Math.floor(CONCURRENCY / 2))), SLUICE_DISCOVERY_INTERVAL: '250ms' },
  );
  const reporter = await startService('reporter', env);
  const planner = await startService('planner', env);
  services.push(reporter, planner);

  let runCounter = 0;
  const runSluice = async (
    replicas: number,
  ): Promise<{
    wallMs: number;
    completed: RunCompletedEvent;
    cpu: ReturnType<ReturnType<typeof startCpuMeter>['stop']>;
    executorRss: number;
  }> => {
    const executors: ServiceProcess[] = [];
    for (let r = 1; r <= replicas; r++)
      executors.push(
        await startService('executor', {
          ...env,
          SLUICE_EXECUTOR_ID: `bench-x${r}`,
          SLUICE_CONCURRENCY: String(CONCURRENCY),
        }),
      );
    const runId = `bench-${Date.now().toString(36)}-${++runCounter}`;
    const meter = startCpuMeter({
      sluice: () => [...executors.map((x) => x.pid), reporter.pid, planner.pid, nats.pid],
    });
    const t0 = performance.now();
    await jetstream(nc!).publish(REQUEST_SUBJECT, JSON.stringify({ runId, target: 'latest' }));
    const completed = await waitForCompleted(nc!, runId, 1_800_000);
    const wallMs = performance.now() - t0;
    const cpu = meter.stop();
    const executorRss = Math.max(...executors.map((x) => peakRssBytes(x.pid)));
    for (const x of executors) await x.stop();
    return { wallMs, completed, cpu, executorRss };
  };

  // ------------------------------------------------------------- the proxy adds what it claims
  const proxyCheck: Array<{ claimedMs: number; addedMs: number }> = [];
  const rttsToRun = ONLY === 'ceiling' ? [] : RTTS;
  for (const rtt of rttsToRun) {
    setRtt(rtt);
    proxyCheck.push({
      claimedMs: rtt,
      addedMs:
        (await medianSelectMs(viaProxy(direct[0]!.databaseUrl))) - (await medianSelectMs(direct[0]!.databaseUrl)),
    });
  }

  // ------------------------------------------------------------------------------- contenders
  const results: RttResult[] = [];
  for (const rtt of rttsToRun) {
    setRtt(rtt);
    const runs: Record<
      string,
      Array<{ wallMs: number; measured: number; cpuMs?: number; machineMs?: number; rss?: string; note?: string }>
    > = {};
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

      await reset();
      const meter = startCpuMeter({ bench: () => [process.pid] });
      t0 = performance.now();
      await runPool(tenants, CONCURRENCY, (t) => migrateTenantNaively(t.databaseUrl, migrations));
      const loopCpu = meter.stop();
      record(`in-process parallel loop (${CONCURRENCY} at once)`, {
        wallMs: performance.now() - t0,
        measured: tenants.length,
        cpuMs: loopCpu.groupsMs.bench ?? 0,
        machineMs: loopCpu.machineMs,
      });

      for (const replicas of REPLICAS) {
        await reset();
        const r = await runSluice(replicas);
        if (r.completed.counts.migrated !== TENANTS)
          throw new Error(
            `Sluice run: ${JSON.stringify(r.completed.counts)} (${JSON.stringify(r.completed.failures.slice(0, 3))})`,
          );
        record(`Sluice, ${replicas} executor${replicas > 1 ? 's' : ''}`, {
          wallMs: r.wallMs,
          measured: TENANTS,
          cpuMs: r.cpu.groupsMs.sluice ?? 0,
          machineMs: r.cpu.machineMs,
          rss: `executor ${mb(r.executorRss)}`,
          note: r.completed.bottleneck ? `${r.completed.bottleneck.label}` : '',
        });
      }
      // The same fleet again: every tenant is already up to date.
      const upToDate = await runSluice(2);
      if (upToDate.completed.counts.upToDate !== TENANTS)
        throw new Error(`up-to-date run: ${JSON.stringify(upToDate.completed.counts)}`);
      record('Sluice, 2 executors, fleet already up to date', {
        wallMs: upToDate.wallMs,
        measured: TENANTS,
        cpuMs: upToDate.cpu.groupsMs.sluice ?? 0,
        machineMs: upToDate.cpu.machineMs,
      });
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
        ...(chosen.machineMs !== undefined ? { machineCpuMsPerTenant: chosen.machineMs / chosen.measured } : {}),
        ...(chosen.rss ? { rss: chosen.rss } : {}),
        ...(chosen.note ? { note: chosen.note } : {}),
      };
    });
    results.push({ rttMs: rtt, contenders });
  }
  const serviceRss = { planner: peakRssBytes(planner.pid), reporter: peakRssBytes(reporter.pid) };
  for (const s of services.splice(0)) await s.stop();

  // --------------------------------------------------------------- the orchestration ceiling
  let ceiling: BenchmarkReport['ceiling'];
  if (ONLY !== 'contenders') {
    say(`orchestration ceiling: ${CEILING} synthetic tenants, no-op migration`);
    const ceilingFile = path.join(dir, 'synthetic.ndjson');
    const lines: string[] = [];
    for (let i = 0; i < CEILING; i++)
      lines.push(
        JSON.stringify({ tenantId: `syn-${i}`, databaseUrl: `postgres://bench@10.255.0.${(i % 8) + 1}:5432/t${i}` }),
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
          { ...ceilingEnv, LOG_LEVEL: 'info', SLUICE_EXECUTOR_ID: `noop-${r}`, SLUICE_CONCURRENCY: '512' },
          { entry: path.join(REPO_ROOT, 'bench', 'noop-executor.ts'), nodeArgs: ['--import', 'tsx', ...PROFILE_ARGS] },
        ),
      );
    }
    services.push(...noopExecutors);
    const ceilingRuns: Array<{ wallMs: number; cpu: Record<string, number>; machineMs: number }> = [];
    for (let rep = 1; rep <= REPEAT; rep++) {
      const runId = `ceiling-${Date.now().toString(36)}-${rep}`;
      const meter = startCpuMeter({
        planner: () => [ceilingServices[1]!.pid],
        reporter: () => [ceilingServices[0]!.pid],
        executors: () => noopExecutors.map((x) => x.pid),
        'nats-server': () => [nats.pid],
      });
      const t0 = performance.now();
      await jetstream(nc).publish(REQUEST_SUBJECT, JSON.stringify({ runId, target: 'latest' }));
      const completed = await waitForCompleted(nc, runId, 1_800_000);
      const wallMs = performance.now() - t0;
      const cpu = meter.stop();
      if (completed.counts.upToDate !== CEILING) throw new Error(`ceiling run: ${JSON.stringify(completed.counts)}`);
      ceilingRuns.push({ wallMs, cpu: cpu.groupsMs, machineMs: cpu.machineMs });
      say(`ceiling round ${rep}: ${(CEILING / (wallMs / 1000)).toFixed(0)} tenants/s`);
    }
    const ceilingMedian = median(ceilingRuns.map((r) => r.wallMs));
    const ceilingRun = ceilingRuns.find((r) => r.wallMs === ceilingMedian)!;
    ceiling = {
      tenants: CEILING,
      wallMs: ceilingMedian,
      tenantsPerSec: CEILING / (ceilingMedian / 1000),
      cpuMsPerTenant: Object.fromEntries(Object.entries(ceilingRun.cpu).map(([k, v]) => [k, v / CEILING])),
      machineCpuMsPerTenant: ceilingRun.machineMs / CEILING,
      runs: ceilingRuns.length,
      rss: {
        planner: peakRssBytes(ceilingServices[1]!.pid),
        reporter: peakRssBytes(ceilingServices[0]!.pid),
        executor: Math.max(...noopExecutors.map((x) => peakRssBytes(x.pid))),
      },
    };
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
    },
    proxyCheck,
    results,
    serviceRss,
    ...(ceiling ? { ceiling } : {}),
    durationS: (performance.now() - benchStarted) / 1000,
  };
  const markdown = renderBenchmarkMarkdown(report);
  console.log(`\n${markdown}`);
  if (!values['no-write']) {
    await writeFile(path.join(REPO_ROOT, 'docs', 'benchmarks.md'), markdown);
    await writeFile(path.join(REPO_ROOT, 'docs', 'benchmarks.svg'), renderBenchmarkSvg(report));
    say('wrote docs/benchmarks.md and docs/benchmarks.svg');
  }
} finally {
  for (const s of services) await s.stop().catch(() => undefined);
  await nc?.close().catch(() => undefined);
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
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
