/**
 * Fleet state benchmarks, against a private nats-server (JetStream on disk) and the built services.
 *
 * `--part query` (default): writes `--records` fleet records (1,000,000 by default: 97% current,
 * the rest behind, failed, dirty or drifted, over 100 hosts, one tag each) with their index keys
 * and their summary into the `sluice_fleet` bucket, then reads them the way `sluice fleet` does,
 * each reading in a process of its own so its memory is its own: the overview (summary + first page
 * of tenants that need a look), filtered pages that need current tenants (host, target, tag: read
 * from the fleet index), every current tenant of one host in pages of 1,000, a filtered page that
 * matches nothing, and a recount (a scan that folds every record and rebuilds the indexes). Prints
 * wall time, RSS when connected, peak RSS (VmHWM) and the growth, and the bucket's bytes per record
 * (and what the index adds). Then the cost of record updates as the reporter makes them (32 at
 * once): one that changes nothing the index holds, and one that changes the version (index keys
 * rewritten), in time and KV messages per update. Goal: < 5 s and < 100 MB growth at 1,000,000
 * records.
 *
 * `--part trust`: `--tenants` (1,000) tenants whose fleet records say current at the latest
 * version with the planner's set digest (seeded, as a verified run would have left them), the
 * reporter, an executor and the planner as processes; a `trust: "fleet-state"` request is timed
 * from publish to its `completed` event, `--repeat` times (median). Goal: < 1 s. The tenants'
 * databases are not created: a trusted tenant is never connected to (planned.tasks is checked 0).
 *
 * `--part verify`: `--tenants` (500) real tenant databases on the local Postgres, migrated once; then
 * timed, each from request to the end: a default (verified) run with every tenant up to date,
 * `sluice fleet verify`, `sluice fleet rebuild` after the bucket's records were purged (with its
 * recount), a `trust: "fleet-state"` run, and an in-process pool that connects to each tenant and
 * reads its journal at the host's limit (8, as the executors). Goals: verified ≤ 1.1× the pool,
 * rebuild ≤ 1.2× verify. On this 2-core machine the database and Sluice share the cores: both
 * sides are CPU-bound and the ratio is their CPU's. `--split-cores` puts the tenants on a private
 * Postgres pinned to CPU 0 and everything else on the other CPUs, as database hosts of their own.
 *
 * Run: `npm run build && npx tsx bench/fleet-state-bench.ts --part query [--records 1000000]
 * [--child-node-options=--max-old-space-size=64]` (or against a nats-server of your own, left
 * running: `--nats-url URL --nats-pid PID`, then `--skip-seed` to read it again, `--only KIND,…` for
 * some readings; it reports the reader's and nats-server's CPU for each reading),
 * `npx tsx bench/fleet-state-bench.ts --part trust [--tenants 1000] [--repeat 3]` and
 * `npx tsx bench/fleet-state-bench.ts --part verify [--tenants 500] [--split-cores]`.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type Bus, connectBus, type FleetPage, type FleetStore, openFleetStore, pageFleet } from '@sluice/bus';
import {
  BUCKETS,
  fleetAttentionKey,
  fleetIndexKeys,
  fleetKey,
  type FleetRecord,
  type FleetStatus,
  parseRunEventSubject,
  REQUEST_SUBJECT,
  runEventsFilter,
  type RunPlannedEvent,
  STREAMS,
} from '@sluice/contracts';
import { type FleetQuery, FleetSummaryBuilder } from '@sluice/core';
import { loadMigrationDir } from '@sluice/migrator';
import { createLogger } from '@sluice/telemetry';
import {
  childPids,
  collectRunEvents,
  createTenantFleet,
  fleetServiceEnv,
  listOutcomes,
  MIGRATIONS_DIR,
  REPO_ROOT,
  startCpuMeter,
  startNatsServer,
  startPostgresCluster,
  startService,
  waitForCompleted,
} from '@sluice/testkit';
import pg from 'pg';

const MB = 1024 * 1024;
const logger = createLogger({ service: 'fleet-bench', level: 'silent' });

async function memoryOf(pid: number | 'self'): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** One page of 20 of each of these is timed (the filters that used to scan every record, and more). */
const LISTINGS: Record<string, FleetQuery> = {
  'host-current': { statuses: ['current'], host: 'db-042.internal:5432' },
  'target-current': { statuses: ['current'], target: 6 },
  'tag-current': { statuses: ['current'], tags: { tier: 'gold' } },
  'tag-host-current': { statuses: ['current'], tags: { tier: 'gold' }, host: 'db-042.internal:5432' },
  'tag-target': { tags: { tier: 'gold' }, target: 6 },
  'no-match': { statuses: ['current'], host: 'no-such-host:5432' },
  'tag-no-match': { statuses: ['current'], tags: { tier: 'gold' }, host: 'no-such-host:5432' },
};

interface WriteMeasurement {
  updates: number;
  steadyMsPerUpdate: number;
  steadyMessagesPerUpdate: number;
  movedMsPerUpdate: number;
  movedMessagesPerUpdate: number;
}

/**
 * Times `store.update` as the reporter's fleet writer makes it (32 at once) on `WRITES` existing
 * current tenants: first a re-run that changes nothing the index holds (run and time only), then a
 * migration (the version moves from 6 to 7: the main index key is purged and written again).
 */
async function measureWrites(bus: Bus, store: FleetStore): Promise<WriteMeasurement> {
  const WRITES = 2_000;
  // Current tenants (see `recordOf`): the first WRITES whose `i % 200` is below 194.
  const ids = Array.from({ length: WRITES }, (_, j) => {
    const i = Math.floor(j / 194) * 200 + (j % 194);
    return `tenant-${String(i).padStart(7, '0')}`;
  });
  const lastSeq = async () => (await bus.jsm.streams.info(`KV_${BUCKETS.fleet}`)).state.last_seq;
  const timed = async (change: (prev: FleetRecord) => FleetRecord) => {
    const seq = await lastSeq();
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < ids.length) {
          const id = ids[next++]!;
          await store.update(id, (prev) => (prev ? change(prev) : undefined));
        }
      }),
    );
    return { ms: (performance.now() - started) / WRITES, messages: ((await lastSeq()) - seq) / WRITES };
  };
  const steady = await timed((prev) => ({ ...prev, run: 'bench-rerun', at: '2026-11-30T01:00:00.000Z' }));
  const moved = await timed((prev) => ({ ...prev, version: 7, run: 'bench-migrate', at: '2026-11-30T02:00:00.000Z' }));
  return {
    updates: WRITES,
    steadyMsPerUpdate: steady.ms,
    steadyMessagesPerUpdate: steady.messages,
    movedMsPerUpdate: moved.ms,
    movedMessagesPerUpdate: moved.messages,
  };
}

interface QueryMeasurement {
  ms: number;
  /** The reading process's CPU time (user + system). */
  cpuMs: number;
  readyRss: number;
  peakRss: number;
  scanned: number;
  listed: number;
}

// Child mode: one reading of the fleet state, measured in its own process.
if (process.argv[2] === '--query-child') {
  const [, , , url, kind] = process.argv;
  const bus = await connectBus({ servers: url!, name: 'fleet-bench-query' }, logger);
  const store = await openFleetStore(bus);
  const ready = await memoryOf('self');
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  let scanned: number;
  let listed = 0;
  if (kind === 'overview' || kind === 'attention') {
    await store.summary();
    const page = await pageFleet(store, kind === 'overview' ? { target: 6 } : {}, { limit: 20 });
    scanned = page.scanned;
    listed = page.tenants.length;
  } else if (kind === 'rare') {
    const page = await pageFleet(store, { statuses: ['drift'], host: 'db-099.internal:5432' }, { limit: 20 });
    scanned = page.scanned;
    listed = page.tenants.length;
  } else if (kind !== undefined && LISTINGS[kind]) {
    const page = await pageFleet(store, LISTINGS[kind], { limit: 20 });
    scanned = page.scanned;
    listed = page.tenants.length;
  } else if (kind === 'host-all') {
    // Every current tenant of one host, page after page.
    scanned = 0;
    let cursor: string | undefined;
    do {
      const page: FleetPage = await pageFleet(
        store,
        { statuses: ['current'], host: 'db-042.internal:5432' },
        { limit: 1_000, ...(cursor !== undefined ? { cursor } : {}) },
      );
      scanned += page.scanned;
      listed += page.tenants.length;
      cursor = page.nextCursor;
    } while (cursor !== undefined);
  } else if (kind === 'writes') {
    const result = await measureWrites(bus, store);
    await bus.close();
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  } else {
    const summary = await store.recount();
    scanned = summary.total;
    listed = summary.total;
  }
  const ms = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const result: QueryMeasurement = {
    ms,
    cpuMs: (cpu.user + cpu.system) / 1000,
    readyRss: ready.rss,
    peakRss: (await memoryOf('self')).hwm,
    scanned,
    listed,
  };
  await bus.close();
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

const { values } = parseArgs({
  options: {
    part: { type: 'string', default: 'query' },
    records: { type: 'string', default: '1000000' },
    tenants: { type: 'string', default: '1000' },
    repeat: { type: 'string', default: '3' },
    /** `--part verify`: write a CPU profile of each service into this folder (at its exit). */
    profile: { type: 'string' },
    /** `--part query`: a nats-server to use (left running) instead of a private one. */
    'nats-url': { type: 'string' },
    /** `--part query` with `--nats-url`: its process id, to read its CPU time. */
    'nats-pid': { type: 'string' },
    /** `--part query`: the bucket was seeded by an earlier run against `--nats-url`. */
    'skip-seed': { type: 'boolean', default: false },
    /** `--part query`: only these readings (comma-separated kinds). */
    only: { type: 'string' },
    /**
     * `--part verify`: the tenants on a private Postgres pinned to CPU 0, and this process (so the
     * pool, the services and nats-server it starts) to the others: the database and the
     * orchestration on different cores, as on database hosts of their own.
     */
    'split-cores': { type: 'boolean', default: false },
    /** Node options of the reading processes, e.g. `--max-old-space-size=64` (how much growth is GC headroom). */
    'child-node-options': { type: 'string', default: '' },
  },
});

function recordOf(i: number, digest: string): FleetRecord {
  const roll = i % 200;
  const status: FleetStatus =
    roll < 194 ? 'current' : roll < 196 ? 'behind' : roll < 198 ? 'failed' : roll < 199 ? 'dirty' : 'drift';
  return {
    tenantId: `tenant-${String(i).padStart(7, '0')}`,
    host: `db-${String(i % 100).padStart(3, '0')}.internal:5432`,
    tags: { tier: i % 3 === 0 ? 'gold' : 'free' },
    version: status === 'behind' ? 5 : 6,
    digest,
    status,
    run: 'seed-run-2026-11-30',
    ...(status === 'failed'
      ? { error: { code: 'sql_error', message: 'version 6: relation "plans" already exists' } }
      : {}),
    at: '2026-11-30T00:00:00.000Z',
  };
}

/**
 * Writes records straight into the bucket (as reporters would have, one key per tenant), their
 * attention index and their summary, then their fleet index keys into the index bucket.
 */
async function seed(url: string, count: number, digest: string, make = recordOf): Promise<void> {
  const bus = await connectBus({ servers: url, name: 'fleet-bench-seed' }, logger);
  const store = await openFleetStore(bus);
  const builder = new FleetSummaryBuilder();
  const started = performance.now();
  // Plain publishes into the bucket's subjects, a round trip every 5,000 (the server has stored
  // what came before it): four times the pace of acknowledged ones. The count is checked after.
  let published = 0;
  const send = async (key: string, data: string | Uint8Array, bucket: string = BUCKETS.fleet): Promise<void> => {
    bus.nc.publish(`$KV.${bucket}.${key}`, data);
    if (++published % 5_000 === 0) await bus.nc.flush();
  };
  for (let i = 0; i < count; i++) {
    const record = make(i, digest);
    builder.add(record);
    await send(fleetKey(record.tenantId), JSON.stringify(record));
    // The attention index, as the reporter keeps it: a copy of every record that is not current.
    if (record.status !== 'current') await send(fleetAttentionKey(record.tenantId), JSON.stringify(record));
  }
  await bus.nc.flush();
  await store.summary({ set: builder.build() });
  published += 1;
  for (let i = 0; i < count; i++)
    for (const key of fleetIndexKeys(make(i, digest))) await send(key, new Uint8Array(0), BUCKETS.fleetIndex);
  await bus.nc.flush();
  const messagesOf = async (bucket: string) => (await bus.jsm.streams.info(`KV_${bucket}`)).state.messages;
  const stored = (await messagesOf(BUCKETS.fleet)) + (await messagesOf(BUCKETS.fleetIndex));
  if (stored !== published) throw new Error(`seed: ${published} messages published, ${stored} stored`);
  console.log(
    `seeded ${count} records (${published} messages) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  await bus.close();
}

async function measureQuery(url: string, kind: string): Promise<QueryMeasurement> {
  return JSON.parse(await childOutput(url, kind)) as QueryMeasurement;
}

async function childOutput(url: string, kind: string): Promise<string> {
  const child = spawn(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), '--query-child', url, kind],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'exit')) as [number];
  if (code !== 0) throw new Error(`query child ${kind} exited ${code}`);
  return out.trim();
}

async function queryPart(): Promise<void> {
  const count = Number(values.records);
  const nats = values['nats-url']
    ? { url: values['nats-url'], pid: Number(values['nats-pid']), dispose: () => Promise.resolve() }
    : await startNatsServer();
  /** The server's CPU time so far (user + system, ms), NaN when unknown. */
  const serverCpuMs = async (): Promise<number> => {
    const stat = await readFile(`/proc/${nats.pid}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  };
  try {
    const set = await loadMigrationDir(MIGRATIONS_DIR);
    if (!values['skip-seed']) await seed(nats.url, count, set.digest);
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstream(nc).jetstreamManager();
    const [records, index] = [
      (await jsm.streams.info(`KV_${BUCKETS.fleet}`)).state,
      (await jsm.streams.info(`KV_${BUCKETS.fleetIndex}`)).state,
    ];
    await nc.close();
    const bytes = records.bytes + index.bytes;
    console.log(
      `buckets: ${records.messages} + ${index.messages} messages, ${(bytes / MB).toFixed(1)} MB stored, ${(bytes / count).toFixed(0)} bytes per tenant (JetStream's own accounting: record, subject, headers), of which the fleet index ${(index.bytes / count).toFixed(0)} (one main key and one tag key a tenant)`,
    );
    console.log(
      `\n| reading (${count} records) | time | RSS connected | peak RSS | growth | entries read | listed | CPU (reader) | CPU (nats-server) |`,
    );
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const [kind, label] of [
      ['overview', 'sluice fleet --target 6 (summary + first page)'],
      ['attention', 'sluice fleet (summary + first page of the attention index)'],
      ['rare', 'sluice fleet --status drift --host one-of-100 (index)'],
      ['host-current', 'sluice fleet --status current --host one-of-100 (index)'],
      ['host-all', 'every current tenant of one host of 100, pages of 1,000 (index)'],
      ['target-current', 'sluice fleet --status current --target 6 (index, none below 6)'],
      ['tag-current', 'sluice fleet --status current --tag tier=gold (tag index)'],
      ['tag-host-current', 'sluice fleet --status current --tag tier=gold --host one-of-100 (tag index)'],
      ['tag-target', 'sluice fleet --tag tier=gold --target 6 (index, tag index)'],
      ['no-match', 'sluice fleet --status current --host nowhere (index: nothing to read)'],
      ['tag-no-match', 'sluice fleet --status current --tag tier=gold --host nowhere (tag index)'],
      ['recount', 'sluice fleet --recount (scan of all, summary and indexes rebuilt)'],
    ] as const) {
      if (values.only && !values.only.split(',').includes(kind)) continue;
      const serverBefore = await serverCpuMs();
      const m = await measureQuery(nats.url, kind);
      const serverMs = (await serverCpuMs()) - serverBefore;
      console.log(
        `| ${label} | ${(m.ms / 1000).toFixed(2)} s | ${(m.readyRss / MB).toFixed(0)} MB | ${(m.peakRss / MB).toFixed(0)} MB | ${((m.peakRss - m.readyRss) / MB).toFixed(0)} MB | ${m.scanned} | ${m.listed} | ${(m.cpuMs / 1000).toFixed(2)} s | ${(serverMs / 1000).toFixed(2)} s |`,
      );
    }
    if (values.only && !values.only.split(',').includes('writes')) return;
    const w = JSON.parse(await childOutput(nats.url, 'writes')) as WriteMeasurement;
    console.log(
      `\nrecord updates, 32 at once, ${w.updates} tenants: a re-run that changes nothing indexed ${w.steadyMsPerUpdate.toFixed(2)} ms and ${w.steadyMessagesPerUpdate.toFixed(2)} KV messages an update; a new version ${w.movedMsPerUpdate.toFixed(2)} ms and ${w.movedMessagesPerUpdate.toFixed(2)} messages an update (plus a get and a delete of the old index key)`,
    );
  } finally {
    await nats.dispose();
  }
}

async function trustPart(): Promise<void> {
  const count = Number(values.tenants);
  const repeat = Number(values.repeat);
  const nats = await startNatsServer();
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-fleet-bench-'));
  const services: Array<Awaited<ReturnType<typeof startService>>> = [];
  try {
    const set = await loadMigrationDir(MIGRATIONS_DIR);
    const latest = Math.max(...set.migrations.map((m) => m.version));
    const registry = path.join(dir, 'tenants.json');
    const ids = Array.from({ length: count }, (_, i) => `bench-${String(i).padStart(5, '0')}`);
    await writeFile(
      registry,
      JSON.stringify(
        ids.map((tenantId) => ({ tenantId, databaseUrl: `postgres://postgres@127.0.0.1:5432/${tenantId}` })),
      ),
    );
    await seed(nats.url, count, set.digest, (i, digest) => ({
      tenantId: ids[i]!,
      host: '127.0.0.1:5432',
      version: latest,
      digest,
      status: 'current',
      run: 'seed',
      at: new Date().toISOString(),
    }));
    const env = fleetServiceEnv({ natsUrl: nats.url, registryFile: registry });
    for (const name of ['reporter', 'executor', 'planner'] as const) services.push(await startService(name, env));
    const nc = await connect({ servers: nats.url });
    const js = jetstream(nc);
    const times: number[] = [];
    for (let r = 0; r < repeat + 1; r++) {
      const runId = `trust-${r}`;
      const started = performance.now();
      const completed = waitForCompleted(nc, runId, 120_000);
      await js.publish(REQUEST_SUBJECT, JSON.stringify({ runId, target: 'latest', trust: 'fleet-state' }));
      const event = await completed;
      const ms = performance.now() - started;
      const planned = (await collectRunEvents(nc, runId, (subject) => subject.endsWith('.planned'))).find((e) =>
        e.subject.endsWith('.planned'),
      )?.data as RunPlannedEvent | undefined;
      if (event.fromFleetState !== count || planned?.tasks !== 0)
        throw new Error(`run ${runId}: ${event.fromFleetState} from the fleet state, ${planned?.tasks} tasks`);
      // The first run warms the planner (lint once per digest, consumers): reported, not counted.
      console.log(`${runId}: request to completed ${ms.toFixed(0)} ms${r === 0 ? ' (warm-up, not counted)' : ''}`);
      if (r > 0) times.push(ms);
    }
    await nc.close();
    times.sort((a, b) => a - b);
    console.log(
      `\n${count} tenants at the target, trust: "fleet-state": request to completed, median of ${repeat}: ${times[Math.floor(times.length / 2)]!.toFixed(0)} ms (every tenant settled from the fleet state, 0 tasks)`,
    );
  } finally {
    for (const s of services.reverse()) await s.stop();
    await nats.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}

/** A run's events with their stream times (ms since the epoch), and its outcomes. */
async function runTimeline(nc: NatsConnection, runId: string) {
  const js = jetstream(nc);
  const consumer = await js.consumers.get(STREAMS.runs.name, {
    filter_subjects: runEventsFilter(runId),
    deliver_policy: DeliverPolicy.All,
  });
  const events = new Map<string, number>();
  const batch = await consumer.fetch({ max_messages: 1_000, expires: 2_000 });
  for await (const msg of batch) {
    const event = parseRunEventSubject(msg.subject)?.event;
    if (event && !events.has(event)) events.set(event, msg.info.timestampNanos / 1e6);
    if (msg.info.pending === 0) break;
  }
  return { events, outcomes: await listOutcomes(nc, runId) };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function verifyPart(): Promise<void> {
  const count = Number(values.tenants);
  const repeat = Number(values.repeat);
  const nats = await startNatsServer();
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-fleet-bench-'));
  const services: Array<Awaited<ReturnType<typeof startService>>> = [];
  const split = values['split-cores'] ? await splitCores() : undefined;
  const fleetStarted = performance.now();
  const fleet = await createTenantFleet({
    count,
    prefix: `sluice_fb_${process.pid}`,
    ...(split ? { serverUrl: split.postgres.serverUrl } : {}),
  });
  if (split) console.log(split.layout);
  console.log(`created ${count} tenant databases in ${((performance.now() - fleetStarted) / 1000).toFixed(1)} s`);
  try {
    const registry = path.join(dir, 'tenants.json');
    await fleet.writeRegistry(registry);
    const env = fleetServiceEnv({ natsUrl: nats.url, registryFile: registry });
    const nodeArgs = values.profile ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(values.profile)}`] : [];
    for (const name of ['reporter', 'executor', 'planner'] as const)
      services.push(await startService(name, env, { nodeArgs }));
    const nc = await connect({ servers: nats.url });
    const js = jetstream(nc);
    const cpu = () =>
      startCpuMeter({
        ...Object.fromEntries(services.map((s) => [s.name, () => [s.pid]])),
        nats: () => [nats.pid],
      });
    const run = async (runId: string, extra: Record<string, unknown> = {}) => {
      const meter = cpu();
      const published = Date.now();
      const started = performance.now();
      const completed = waitForCompleted(nc, runId, 600_000);
      await js.publish(REQUEST_SUBJECT, JSON.stringify({ runId, target: 'latest', ...extra }));
      const event = await completed;
      const ms = performance.now() - started;
      return { ms, event, published, cpu: meter.stop() };
    };
    const cli = promisify(execFile);
    const sluice = async (...args: string[]) => {
      const started = performance.now();
      await cli(process.execPath, [path.join(REPO_ROOT, 'packages/cli/dist/main.js'), ...args], {
        env: { ...process.env, ...env },
        maxBuffer: 64 * MB,
      }).catch((error: { code?: number }) => {
        if (error.code !== 0 && error.code !== 1) throw error as Error;
      });
      return performance.now() - started;
    };
    // The reference: connect to each tenant and read its journal, at the host's limit.
    const poolRun = async () => {
      const meter = cpu();
      const poolStarted = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < fleet.tenants.length) {
            const client = new pg.Client({ connectionString: fleet.tenants[next++]!.databaseUrl });
            await client.connect();
            await client.query('SELECT version, checksum, status FROM sluice_migrations ORDER BY version');
            await client.end();
          }
        }),
      );
      return { ms: performance.now() - poolStarted, cpu: meter.stop() };
    };
    const first = await run('bench-migrate');
    console.log(
      `first run (migrates every tenant): ${(first.ms / 1000).toFixed(1)} s, ${first.event.counts.migrated} migrated`,
    );
    // Verified runs and the pool, alternated so both see the same machine.
    const pools: number[] = [];
    const verifieds: number[] = [];
    for (let r = 0; r < repeat; r++) {
      const pool = await poolRun();
      const runId = `bench-verified-${r}`;
      const verified = await run(runId);
      if (verified.event.counts.upToDate !== count) throw new Error('the verified run found tenants not up to date');
      pools.push(pool.ms);
      verifieds.push(verified.ms);
      const { events, outcomes } = await runTimeline(nc, runId);
      const at = (e: string) => ((events.get(e) ?? NaN) - verified.published).toFixed(0);
      const finished = outcomes.map((o) => Date.parse(o.finishedAt) - verified.published);
      const startedAt = outcomes.map((o) => Date.parse(o.finishedAt) - (o.timings?.totalMs ?? 0) - verified.published);
      const t = (pick: (o: (typeof outcomes)[number]) => number | undefined) =>
        median(outcomes.map((o) => pick(o) ?? NaN)).toFixed(1);
      const limits = new Map<number, number>();
      for (const o of outcomes)
        limits.set(o.signals?.hostLimit ?? -1, (limits.get(o.signals?.hostLimit ?? -1) ?? 0) + 1);
      const cpuOf = (c: { machineMs: number; groupsMs: Record<string, number> }) =>
        `${Object.entries(c.groupsMs)
          .map(([k, v]) => `${k} ${v.toFixed(0)}`)
          .join(', ')}, machine ${c.machineMs.toFixed(0)} ms`;
      console.log(
        `#${r}: pool ${pool.ms.toFixed(0)} ms; verified ${verified.ms.toFixed(0)} ms (${(verified.ms / pool.ms).toFixed(2)}×): ` +
          `accepted +${at('accepted')}, planned +${at('planned')}, first work +${Math.min(...startedAt).toFixed(0)}, ` +
          `last outcome +${Math.max(...finished).toFixed(0)}, completed +${at('completed')} ms; per tenant median ` +
          `connect ${t((o) => o.timings?.connectMs)}, journal ${t((o) => o.timings?.journalMs)}, total ${t((o) => o.timings?.totalMs)}, ` +
          `work ${t((o) => o.timings?.workMs)} ms; host limits ${[...limits].map(([l, n]) => `${l}:${n}`).join(' ')}`,
      );
      console.log(`   cpu pool: ${cpuOf(pool.cpu)}; cpu verified: ${cpuOf(verified.cpu)}`);
    }
    const verify = await sluice('fleet', 'verify', '--run-id', 'bench-verify', '--json');
    const jsm = await js.jetstreamManager();
    await jsm.streams.purge(`KV_${BUCKETS.fleet}`);
    await jsm.streams.purge(`KV_${BUCKETS.fleetIndex}`);
    const rebuild = await sluice('fleet', 'rebuild', '--run-id', 'bench-rebuild', '--json');
    const trusted = await run('bench-trust', { trust: 'fleet-state' });
    if (trusted.event.fromFleetState !== count) throw new Error(`trusted ${trusted.event.fromFleetState} of ${count}`);
    const pool = median(pools);
    await nc.close();
    const row = (label: string, ms: number, ref?: number) =>
      console.log(`| ${label} | ${(ms / 1000).toFixed(2)} s | ${ref ? (ms / ref).toFixed(2) : ''} |`);
    console.log(`\n| ${count} tenants, all at the latest version | request to end | ÷ pool |`);
    console.log('|---|---:|---:|');
    row(`in-process pool: connect + read each journal, 8 at once (median of ${repeat})`, pool, pool);
    row(`default (verified) run (median of ${repeat})`, median(verifieds), pool);
    row('sluice fleet verify (process start to exit)', verify, pool);
    row('sluice fleet rebuild after the records were purged (with recount)', rebuild, pool);
    row('trust: "fleet-state" run', trusted.ms, pool);
    console.log(
      `verified ÷ pool, pair by pair: ${verifieds.map((v, i) => (v / pools[i]!).toFixed(2)).join(', ')}; rebuild ÷ verify: ${(rebuild / verify).toFixed(2)}`,
    );
  } finally {
    for (const s of services.reverse()) await s.stop();
    await nats.dispose();
    await fleet.drop();
    await split?.postgres.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Puts the database and the orchestration on different cores (`--split-cores`): this process and
 * every thread and child it has or will have on CPUs 1.., a private Postgres started after that
 * moved (postmaster, its workers, every backend it forks later) to CPU 0. Linux only (`taskset`).
 */
async function splitCores() {
  const cpus = availableParallelism();
  if (cpus < 2) throw new Error('--split-cores needs two CPUs or more');
  const taskset = (args: string[]) => promisify(execFile)('taskset', args);
  const others = `1-${cpus - 1}`;
  await taskset(['-a', '-p', '-c', others, String(process.pid)]);
  const postgres = await startPostgresCluster({ max_connections: '200' });
  const postmaster = Number((await readFile(path.join(postgres.dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  for (const pid of [postmaster, ...childPids(postmaster)]) await taskset(['-a', '-p', '-c', '0', String(pid)]);
  const layout = `split cores: Postgres (private, pid ${postmaster}, fsync off) on CPU 0; this process, the pool, the services and nats-server on CPU ${others}`;
  return { postgres, layout };
}

if (values.part === 'trust') await trustPart();
else if (values.part === 'verify') await verifyPart();
else await queryPart();
