/**
 * Executor scaling: the same fleet on two Postgres hosts migrated with 1, 2 and 4 executor
 * replicas (separate processes over a private NATS JetStream), each figure the median of
 * repeated runs. Run: `npm run build && npx tsx bench/executor-scaling.ts [--tenants 200] [--repeat 3]`.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { REQUEST_SUBJECT } from '@sluice/contracts';
import {
  createTenantFleet,
  fleetServiceEnv,
  type ServiceProcess,
  startCpuMeter,
  startNatsServer,
  startPostgresCluster,
  startService,
  waitForCompleted,
} from '@sluice/testkit';

const { values } = parseArgs({ options: { tenants: { type: 'string', default: '200' }, repeat: { type: 'string', default: '3' }, replicas: { type: 'string', default: '1,2,4' } } });
const tenants = Number(values.tenants);
const repeat = Number(values.repeat);
const replicaCounts = values.replicas.split(',').map(Number);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const nats = await startNatsServer();
const hostB = await startPostgresCluster({ max_connections: '200' });
const dir = await mkdtemp(path.join(tmpdir(), 'sluice-bench-'));
const a = await createTenantFleet({ count: Math.ceil(tenants / 2), tenantPrefix: 'a' });
const b = await createTenantFleet({ count: Math.floor(tenants / 2), serverUrl: hostB.serverUrl, tenantPrefix: 'b' });
const registry = path.join(dir, 'tenants.json');
await writeFile(registry, JSON.stringify([...a.tenants, ...b.tenants].map(({ tenantId, databaseUrl }) => ({ tenantId, databaseUrl }))));
const nc = await connect({ servers: nats.url });
const env = fleetServiceEnv({ natsUrl: nats.url, registryFile: registry }, { SLUICE_HOST_LIMIT: '8', SLUICE_DISCOVERY_INTERVAL: '250ms', LOG_LEVEL: 'warn' });
const rows: Array<{ replicas: number; runs: number[]; cpu: Array<{ machineMs: number; groupsMs: Record<string, number> }> }> = [];
const base: ServiceProcess[] = [await startService('reporter', { ...env, LOG_LEVEL: 'info' }), await startService('planner', { ...env, LOG_LEVEL: 'info' })];
let run = 0;
try {
  for (const replicas of replicaCounts) {
    const durations: number[] = [];
    const cpu: Array<{ machineMs: number; groupsMs: Record<string, number> }> = [];
    for (let i = 0; i < repeat; i++) {
      // Back to an empty schema, so every run applies all six migrations.
      await Promise.all([a, b].map((f) => f.eachTenant((c) => c.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public'), 16)));
      const executors: ServiceProcess[] = [];
      for (let r = 1; r <= replicas; r++) executors.push(await startService('executor', { ...env, LOG_LEVEL: 'info', SLUICE_EXECUTOR_ID: `x${r}`, SLUICE_CONCURRENCY: '8' }));
      const runId = `bench-${++run}`;
      const meter = startCpuMeter({
        executors: () => executors.map((x) => x.pid),
        'planner+reporter': () => base.map((x) => x.pid),
        'nats-server': () => [nats.pid],
        bench: () => [process.pid],
      });
      const t0 = performance.now();
      await jetstream(nc).publish(REQUEST_SUBJECT, JSON.stringify({ runId, target: 'latest' }));
      const done = await waitForCompleted(nc, runId, 600_000);
      durations.push(performance.now() - t0);
      cpu.push(meter.stop());
      if (done.counts.migrated !== tenants) throw new Error(`run ${runId}: ${JSON.stringify(done.counts)}`);
      for (const x of executors) await x.stop();
    }
    rows.push({ replicas, runs: durations, cpu });
  }
} finally {
  for (const s of base) await s.stop();
  await nc.close();
  await a.drop();
  await b.drop();
  await hostB.dispose();
  await nats.dispose();
  await rm(dir, { recursive: true, force: true });
}

console.log(`\nExecutor scaling: ${tenants} tenants on 2 hosts (limit 8 each), 6 migrations, concurrency 8 per replica, median of ${repeat}; ${cpus().length} cores, Node ${process.version}\n`);
console.log('| replicas | wall time (s) | tenants/s | speed-up vs 1 | machine CPU busy | Postgres & rest | executors | planner+reporter | nats-server |');
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
const first = median(rows[0]!.runs);
const ms = (x: number): string => `${(x / tenants).toFixed(1)} ms/tenant`;
for (const r of rows) {
  const m = median(r.runs);
  const c = r.cpu[r.runs.indexOf(m)]!;
  const own = (c.groupsMs.executors ?? 0) + (c.groupsMs['planner+reporter'] ?? 0) + (c.groupsMs['nats-server'] ?? 0) + (c.groupsMs.bench ?? 0);
  console.log(
    `| ${r.replicas} | ${(m / 1000).toFixed(2)} | ${(tenants / (m / 1000)).toFixed(1)} | ${(first / m).toFixed(2)}x | ${Math.round((c.machineMs / m / cpus().length) * 100)}% | ${ms(c.machineMs - own)} | ${ms(c.groupsMs.executors ?? 0)} | ${ms(c.groupsMs['planner+reporter'] ?? 0)} | ${ms(c.groupsMs['nats-server'] ?? 0)} |`,
  );
}
