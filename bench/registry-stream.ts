/**
 * Registry streaming: tenants from an NDJSON file (1,000,000 by default) and from DynamoDB
 * (dynalite, 100,000 by default) read two ways, each in a process of its own so its memory is its
 * own: `registry.list()` alone, and the planner service (services/planner/dist/main.js) planning a
 * request into a private JetStream. Prints tenants/s, RSS when ready, peak RSS (the kernel's
 * VmHWM) and the growth between them. The goal: growth under 100 MB at 1,000,000 tenants.
 *
 * Run: `npm run build && npx tsx bench/registry-stream.ts [--file-tenants 1000000] [--dynamo-tenants 100000]
 * [--planner-node-options=--max-old-space-size=40] [--publish-window 512]` (a count of 0 leaves that
 * source out; the last two go to the planner process, to see how much of its growth is room the
 * garbage collector takes, and what the publish window costs).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { REQUEST_SUBJECT, type RunPlannedEvent } from '@sluice/contracts';
import { createRegistry, loadRegistryConfig } from '@sluice/registry';
import { collectRunEvents, MIGRATIONS_DIR, startNatsServer, startService } from '@sluice/testkit';
import { startDynamoServer } from '@sluice/testkit/dynamodb-server';

const MB = 1024 * 1024;

interface Measurement {
  tenants: number;
  ms: number;
  /** RSS once set up, before the first row. */
  readyRss: number;
  /** The process's peak RSS (VmHWM). */
  peakRss: number;
}

/** VmRSS and VmHWM of a process, in bytes. */
async function memoryOf(pid: number | 'self'): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

// Child mode: read the whole registry the environment names, and report.
if (process.argv[2] === '--list-only') {
  const registry = await createRegistry(loadRegistryConfig(process.env));
  const ready = await memoryOf('self');
  const started = performance.now();
  let tenants = 0;
  for await (const _ of registry.list()) tenants += 1;
  const ms = performance.now() - started;
  await registry.close();
  const result: Measurement = { tenants, ms, readyRss: ready.rss, peakRss: (await memoryOf('self')).hwm };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

const { values } = parseArgs({
  options: {
    'file-tenants': { type: 'string', default: '1000000' },
    'dynamo-tenants': { type: 'string', default: '100000' },
    'planner-node-options': { type: 'string' },
    'publish-window': { type: 'string' },
  },
});
const fileTenants = Number(values['file-tenants']);
const dynamoTenants = Number(values['dynamo-tenants']);

const tenantRow = (i: number) => ({
  tenantId: `tenant-${String(i).padStart(7, '0')}`,
  databaseUrl: `postgres://app@db-${i % 64}.fleet.internal:5432/tenant_${String(i).padStart(7, '0')}`,
  tags: { region: i % 3 ? 'us' : 'eu', tier: i % 10 ? 'free' : 'gold' },
  status: i % 100 ? 'active' : 'suspended',
});

/** `registry.list()` alone, in a child process. */
async function listOnly(env: Record<string, string>): Promise<Measurement> {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--list-only'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`list-only child exited with ${code}`);
  return JSON.parse(out.trim().split('\n').pop()!) as Measurement;
}

const nats = await startNatsServer();
const nc = await connect({ servers: nats.url });
const dir = await mkdtemp(path.join(tmpdir(), 'sluice-registry-bench-'));
const dynamo = await startDynamoServer();

/** The planner service planning one request over the whole registry the environment names. */
async function planner(name: string, env: Record<string, string>): Promise<Measurement & { planned: RunPlannedEvent }> {
  const tuning: Record<string, string> = {
    ...(values['planner-node-options'] ? { NODE_OPTIONS: values['planner-node-options'] } : {}),
    ...(values['publish-window'] ? { SLUICE_PUBLISH_WINDOW: values['publish-window'] } : {}),
  };
  const service = await startService(
    'planner',
    { NATS_URL: nats.url, SLUICE_MIGRATIONS_DIR: MIGRATIONS_DIR, LOG_LEVEL: 'info', ...tuning, ...env },
    { readyTimeoutMs: 60_000 },
  );
  try {
    const ready = await memoryOf(service.pid);
    const runId = `bench-${name}-${Date.now()}`;
    const started = performance.now();
    await jetstream(nc).publish(REQUEST_SUBJECT, JSON.stringify({ runId, target: 'latest' }));
    const events = await collectRunEvents(nc, runId, (subject) => subject.endsWith('.planned'), 30 * 60_000);
    const ms = performance.now() - started;
    const planned = events.find((e) => e.subject.endsWith('.planned'))?.data as RunPlannedEvent | undefined;
    if (!planned) throw new Error(`${name}: no planned event`);
    if (planned.error) throw new Error(`${name}: planning failed: ${planned.error}`);
    return { tenants: planned.total, ms, readyRss: ready.rss, peakRss: (await memoryOf(service.pid)).hwm, planned };
  } finally {
    await service.stop();
  }
}

const rows: Array<{ source: string; path: string } & Measurement> = [];
try {
  const ndjson = path.join(dir, 'tenants.ndjson');
  // Written a line at a time: the bench process holds no fleet either.
  const out = createWriteStream(ndjson);
  for (let i = 1; i <= fileTenants; i++) if (!out.write(`${JSON.stringify(tenantRow(i))}\n`)) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
  process.stderr.write(`wrote ${fileTenants} tenants to NDJSON (${Math.round((await stat(ndjson)).size / MB)} MB)\n`);

  const table = await dynamo.createTable('tenants');
  for (let from = 1; from <= dynamoTenants; from += 10_000) {
    await dynamo.seed(
      table,
      Array.from({ length: Math.min(10_000, dynamoTenants - from + 1) }, (_, k) => tenantRow(from + k)),
    );
  }
  process.stderr.write(`seeded ${dynamoTenants} tenants into dynalite\n`);

  const fileEnv = { SLUICE_REGISTRY: 'file', SLUICE_TENANTS_FILE: ndjson };
  const dynamoEnv = {
    SLUICE_REGISTRY: 'dynamodb',
    SLUICE_DYNAMODB_SEGMENTS: '4',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
  };
  const planned: Record<string, RunPlannedEvent> = {};
  for (const [source, count, env] of [
    ['NDJSON file', fileTenants, fileEnv],
    ['DynamoDB (dynalite, 4 segments)', dynamoTenants, dynamoEnv],
  ] as const) {
    if (count === 0) continue;
    rows.push({ source, path: 'registry.list() only', ...(await listOnly(env)) });
    const plan = await planner(env.SLUICE_REGISTRY, env);
    rows.push({ source, path: 'planner -> JetStream', ...plan });
    planned[source] = plan.planned;
  }
  process.stderr.write(`planned: ${JSON.stringify(planned)}\n`);

  const table2 = rows.map((r) => ({
    source: r.source,
    path: r.path,
    tenants: r.tenants,
    seconds: (r.ms / 1000).toFixed(1),
    'tenants/s': Math.round(r.tenants / (r.ms / 1000)),
    'RSS ready MB': Math.round(r.readyRss / MB),
    'peak RSS MB': Math.round(r.peakRss / MB),
    'growth MB': Math.round((r.peakRss - r.readyRss) / MB),
  }));
  console.table(table2);
} finally {
  await nc.close();
  await dynamo.stop();
  await nats.dispose();
  await rm(dir, { recursive: true, force: true });
}
