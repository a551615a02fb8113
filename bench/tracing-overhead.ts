/**
 * Tracing overhead: the same 200-tenant run (6 migrations each, one Postgres host) with tracing
 * off and on, alternating (off, on, off, on, ...) so drift in the shared machine's load hits both
 * alike; medians of `--repeat` runs each. "On" exports every span (OTLP/HTTP JSON) to a receiver
 * in this process, so export work is inside the services' CPU; the receiver's own CPU is the
 * bench's. Measured per run: wall time from publish to `completed`, and CPU time of the planner,
 * executor and reporter processes from publish until 1.5 s after `completed` (so the last span
 * batches are sent inside the window; the same wait in both modes).
 *
 * Run: `npm run build && npx tsx bench/tracing-overhead.ts [--tenants 200] [--repeat 5] [--protocol http/json] [--on-env K=V,...]`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
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
  startOtlpReceiver,
  startService,
  waitForCompleted,
} from '@sluice/testkit';

const { values } = parseArgs({
  options: {
    tenants: { type: 'string', default: '200' },
    repeat: { type: 'string', default: '5' },
    // http/protobuf is what the SDK uses by default; http/json lets the receiver count spans.
    protocol: { type: 'string', default: 'http/protobuf' },
    // Extra OTEL_* settings for the traced runs, e.g. OTEL_NODE_DISABLED_INSTRUMENTATIONS=pg.
    'on-env': { type: 'string', default: '' },
  },
});
const onEnv = Object.fromEntries(
  values['on-env']
    .split(',')
    .filter(Boolean)
    .map((kv) => kv.split('=') as [string, string]),
);
const tenants = Number(values.tenants);
const repeat = Number(values.repeat);
const SETTLE_MS = 1_500;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Sample {
  wallMs: number;
  cpu: Record<string, number>;
  spans: number;
}

const nats = await startNatsServer();
const receiver = await startOtlpReceiver();
const dir = await mkdtemp(path.join(tmpdir(), 'sluice-bench-trace-'));
const fleet = await createTenantFleet({ count: tenants, prefix: `sluice_trace_bench_${process.pid}` });
const registry = path.join(dir, 'tenants.json');
await fleet.writeRegistry(registry);
const nc = await connect({ servers: nats.url });
const base = fleetServiceEnv(
  { natsUrl: nats.url, registryFile: registry },
  { SLUICE_HOST_LIMIT: '8', SLUICE_CONCURRENCY: '8', SLUICE_DISCOVERY_INTERVAL: '250ms', LOG_LEVEL: 'warn' },
);
const tracingEnv = {
  OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
  OTEL_EXPORTER_OTLP_PROTOCOL: values.protocol,
  OTEL_BSP_SCHEDULE_DELAY: '1000',
  ...onEnv,
};
const samples: Record<'off' | 'on', Sample[]> = { off: [], on: [] };
let run = 0;
/** The services of the run under way, stopped in `finally` should a run fail. */
let running: Record<string, ServiceProcess> = {};
try {
  for (let i = 0; i < repeat; i++) {
    for (const mode of ['off', 'on'] as const) {
      // Back to an empty schema, so every run applies all six migrations.
      await fleet.eachTenant((c) => c.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public'), 16);
      const env = mode === 'on' ? { ...base, ...tracingEnv } : base;
      const services: Record<string, ServiceProcess> = {};
      running = services;
      // `ready` lines are info; start at info, everything else is quiet at warn anyway.
      for (const name of ['reporter', 'executor', 'planner'] as const)
        services[name] = await startService(name, { ...env, LOG_LEVEL: 'info' });
      const runId = `trace-bench-${++run}-${mode}`;
      const spansBefore = receiver.spans().length;
      const bytesBefore = receiver.protobuf().bytes;
      const meter = startCpuMeter({
        planner: () => [services.planner!.pid],
        executor: () => [services.executor!.pid],
        reporter: () => [services.reporter!.pid],
        'nats-server': () => [nats.pid],
        bench: () => [process.pid],
      });
      const t0 = performance.now();
      await jetstream(nc).publish(REQUEST_SUBJECT, JSON.stringify({ runId, target: 'latest' }));
      const done = await waitForCompleted(nc, runId, 600_000);
      const wallMs = performance.now() - t0;
      await sleep(SETTLE_MS);
      const cpu = meter.stop();
      if (done.counts.migrated !== tenants) throw new Error(`run ${runId}: ${JSON.stringify(done.counts)}`);
      for (const s of Object.values(services)) await s.stop();
      const spans = receiver.spans().length - spansBefore;
      const kb = Math.round((receiver.protobuf().bytes - bytesBefore) / 1024);
      samples[mode].push({ wallMs, cpu: { ...cpu.groupsMs, machine: cpu.machineMs }, spans });
      console.log(
        `${runId}: ${(wallMs / 1000).toFixed(2)} s, services CPU ${cpu.groupsMs.planner! + cpu.groupsMs.executor! + cpu.groupsMs.reporter!} ms, exported ${spans} spans (JSON) / ${kb} KiB (protobuf)${done.traceId ? `, trace ${done.traceId}` : ''}`,
      );
    }
  }
} finally {
  for (const s of Object.values(running)) await s.stop();
  await nc.close();
  await fleet.drop();
  await receiver.close();
  await nats.dispose();
  await rm(dir, { recursive: true, force: true });
}

const servicesMs = (s: Sample) => (s.cpu.planner ?? 0) + (s.cpu.executor ?? 0) + (s.cpu.reporter ?? 0);
const rows: Array<[string, (s: Sample) => number, (x: number) => string]> = [
  ['wall time publish -> completed', (s) => s.wallMs, (x) => `${(x / 1000).toFixed(2)} s`],
  ['CPU: planner + executor + reporter', servicesMs, (x) => `${Math.round(x)} ms`],
  ['CPU: executor', (s) => s.cpu.executor ?? 0, (x) => `${Math.round(x)} ms`],
  ['CPU: planner', (s) => s.cpu.planner ?? 0, (x) => `${Math.round(x)} ms`],
  ['CPU: reporter', (s) => s.cpu.reporter ?? 0, (x) => `${Math.round(x)} ms`],
  ['CPU: nats-server', (s) => s.cpu['nats-server'] ?? 0, (x) => `${Math.round(x)} ms`],
  ['CPU: whole machine (all users)', (s) => s.cpu.machine ?? 0, (x) => `${Math.round(x)} ms`],
];
console.log(
  `\nTracing overhead: ${tenants} tenants, 6 migrations each, one Postgres host (limit 8), 1 executor (concurrency 8); ${repeat} runs per mode, alternating; ${cpus().length} cores, Node ${process.version}`,
);
console.log(`traced runs: ${values.protocol}${values['on-env'] ? `, ${values['on-env']}` : ''}\n`);
console.log('| measure | off: median (min–max) | on: median (min–max) | on vs off |');
console.log('|---|---:|---:|---:|');
for (const [label, pick, fmt] of rows) {
  const off = samples.off.map(pick);
  const on = samples.on.map(pick);
  const delta = (median(on) / median(off) - 1) * 100;
  console.log(
    `| ${label} | ${fmt(median(off))} (${fmt(Math.min(...off))}–${fmt(Math.max(...off))}) | ${fmt(median(on))} (${fmt(Math.min(...on))}–${fmt(Math.max(...on))}) | ${delta >= 0 ? '+' : ''}${delta.toFixed(1)}% |`,
  );
}
