/**
 * The what-if, checked (`npm run bench:advice`, issue 15): migrates a fleet on one host at a limit,
 * reads the limit the bottleneck report advises for the host and the run time it predicts there,
 * migrates an identical fresh fleet at that limit and prints predicted against measured. With
 * `--overhead` it also migrates the fleet with the executor's signals off and on and prints the
 * executor's CPU per tenant for each (the signals' cost).
 *
 *   npm run bench:advice -- --tenants 200 --limit 48            # 0 ms loopback, a high limit
 *   npm run bench:advice -- --rtt 20 --limit 4                  # behind a 20 ms proxy, a low one
 *   npm run bench:advice -- --pairs 3                           # the check three times, median |error|
 *   npm run bench:advice -- --overhead --repeat 3               # signals off vs on
 *
 * Writes nothing; prints a table. Everything it starts it stops.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { REQUEST_SUBJECT, type RunCompletedEvent } from '@sluice/contracts';
import {
  createTenantFleet,
  type DelayProxyHandle,
  fleetServiceEnv,
  MIGRATIONS_DIR,
  processTreeCpuMs,
  type ServiceProcess,
  startDelayProxy,
  startNatsServer,
  startPostgresCluster,
  startService,
  waitForCompleted,
} from '@sluice/testkit';

const { values } = parseArgs({
  options: {
    tenants: { type: 'string', default: '200' },
    limit: { type: 'string', default: '48' },
    rtt: { type: 'string', default: '0' },
    migrations: { type: 'string' },
    /** Also measure the executor's CPU with signals off and on, this many times each. */
    overhead: { type: 'boolean', default: false },
    repeat: { type: 'string', default: '2' },
    /** Run the advice check (a run, then a run at the advised limit) this many times. */
    pairs: { type: 'string', default: '1' },
    /** Skip the advice check (only with --overhead). */
    'overhead-only': { type: 'boolean', default: false },
  },
});
const TENANTS = Number(values.tenants);
const LIMIT = Number(values.limit);
const RTT = Number(values.rtt);
const REPEAT = Number(values.repeat);
const PAIRS = Number(values.pairs);
const MIGRATIONS = values.migrations ? path.resolve(values.migrations) : MIGRATIONS_DIR;
const say = (line: string): void => console.log(`[advice] ${line}`);
const load = (): string => loadavg()[0]!.toFixed(1);

const dir = await mkdtemp(path.join(tmpdir(), 'sluice-advice-'));
const cleanups: Array<() => Promise<unknown>> = [];
let runs = 0;

interface Measured {
  completed: RunCompletedEvent;
  wallMs: number;
  executorCpuMs: number;
}

try {
  const host = await startPostgresCluster({ max_connections: '300' });
  cleanups.push(() => host.dispose());
  const nats = await startNatsServer();
  cleanups.push(() => nats.dispose());
  const nc = await connect({ servers: nats.url });
  cleanups.push(() => nc.close());
  let proxy: DelayProxyHandle | undefined;
  if (RTT > 0) {
    proxy = await startDelayProxy({ port: host.port }, RTT);
    cleanups.push(() => proxy!.close());
  }
  const via = proxy ? `127.0.0.1:${proxy.port}` : undefined;
  say(`one host (${via ?? `127.0.0.1:${host.port}`}, ${RTT} ms added), ${TENANTS} tenants, migrations ${MIGRATIONS}`);

  /** A fresh fleet migrated with the host's limit at `limit` (one executor with slots to spare). */
  async function migrateAt(limit: number, signals: 'on' | 'off' = 'on'): Promise<Measured> {
    runs += 1;
    const fleet = await createTenantFleet({ count: TENANTS, serverUrl: host.serverUrl, tenantPrefix: `r${runs}` });
    try {
      const registry = path.join(dir, `run-${runs}.json`);
      await writeFile(
        registry,
        JSON.stringify(
          fleet.tenants.map((t) => ({
            tenantId: t.tenantId,
            databaseUrl: via ? t.databaseUrl.replace(/127\.0\.0\.1:\d+/, via) : t.databaseUrl,
          })),
        ),
      );
      const env = fleetServiceEnv(
        { natsUrl: nats.url, registryFile: registry, migrationsDir: MIGRATIONS },
        {
          // Slots to spare: the host's limit is the only cap, so the advice is the host's alone.
          SLUICE_CONCURRENCY: String(Math.max(64, limit)),
          SLUICE_HOST_LIMIT: String(limit),
          SLUICE_DISCOVERY_INTERVAL: '100ms',
          SLUICE_QUEUE_SAMPLE_INTERVAL: '200ms',
          SLUICE_SIGNALS: signals,
        },
      );
      const services: ServiceProcess[] = [];
      try {
        for (const s of ['reporter', 'executor', 'planner'] as const) services.push(await startService(s, env));
        const executor = services[1]!;
        const cpuBefore = processTreeCpuMs(executor.pid);
        const runId = `advice-${runs}`;
        const started = performance.now();
        await jetstream(nc).publish(REQUEST_SUBJECT, JSON.stringify({ runId, target: 'latest' }));
        const completed = await waitForCompleted(nc, runId, 600_000);
        const wallMs = performance.now() - started;
        const executorCpuMs = processTreeCpuMs(executor.pid) - cpuBefore;
        return { completed, wallMs, executorCpuMs };
      } finally {
        for (const s of services.reverse()) await s.stop();
      }
    } finally {
      await fleet.drop();
    }
  }

  const rows: string[][] = [];
  if (!values['overhead-only']) {
    rows.push(['pair', 'run', 'limit', 'verdict', 'run time (report)', 'predicted', 'error']);
    const errors: number[] = [];
    for (let pair = 1; pair <= PAIRS; pair++) {
      say(`pair ${pair}: run 1 at limit ${LIMIT} (load ${load()})`);
      const first = await migrateAt(LIMIT);
      const b = first.completed.bottleneck;
      const w = b?.whatIf?.[0];
      say(`verdict: ${b?.label} (${b?.mode}); ${b?.summary}`);
      say(`lever: ${b?.lever}`);
      if (!w) throw new Error('the report has no what-if for the host');
      say(
        `what-if: ${w.model}${w.model === 'usl' ? ` σ=${w.sigma} κ=${w.kappa}` : ''}, points ${w.points.map((p) => `${p.concurrency.toFixed(1)}→${p.throughput.toFixed(0)}/s`).join(' ')}`,
      );
      say(
        `advised limit ${w.peakLimit}${w.stillRising ? ' (still rising)' : ''}, predicted ${(w.predictedWallMs / 1000).toFixed(2)} s`,
      );
      say(`pair ${pair}: run 2 at limit ${w.peakLimit} (load ${load()})`);
      const second = await migrateAt(w.peakLimit);
      const measured = second.completed.timings?.wallMs ?? second.wallMs;
      const error = (w.predictedWallMs - measured) / measured;
      errors.push(error);
      rows.push(
        [
          String(pair),
          '1',
          String(LIMIT),
          b?.label ?? '-',
          `${((first.completed.timings?.wallMs ?? first.wallMs) / 1000).toFixed(2)} s`,
          '',
          '',
        ],
        [
          String(pair),
          '2 (advised)',
          String(w.peakLimit),
          second.completed.bottleneck?.label ?? '-',
          `${(measured / 1000).toFixed(2)} s`,
          `${(w.predictedWallMs / 1000).toFixed(2)} s`,
          `${error >= 0 ? '+' : ''}${(error * 100).toFixed(0)}%`,
        ],
      );
    }
    const absolute = errors.map(Math.abs).sort((a, b) => a - b);
    rows.push([
      '',
      '',
      '',
      'median |error|',
      '',
      '',
      `${(absolute[Math.floor(absolute.length / 2)]! * 100).toFixed(0)}%`,
    ]);
  }
  if (values.overhead) {
    const perTenant = { on: [] as number[], off: [] as number[] };
    for (let i = 0; i < REPEAT; i++) {
      for (const mode of ['off', 'on'] as const) {
        const m = await migrateAt(LIMIT, mode);
        perTenant[mode].push(m.executorCpuMs / TENANTS);
        say(`signals ${mode}: executor CPU ${(m.executorCpuMs / TENANTS).toFixed(2)} ms per tenant (load ${load()})`);
      }
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const off = median(perTenant.off);
    const on = median(perTenant.on);
    rows.push(
      [],
      ['signals', 'executor CPU per tenant (median)', 'runs'],
      ['off', `${off.toFixed(2)} ms`, String(REPEAT)],
      ['on', `${on.toFixed(2)} ms (${on >= off ? '+' : ''}${(((on - off) / off) * 100).toFixed(1)}%)`, String(REPEAT)],
    );
  }
  for (const row of rows) console.log(row.join(' | '));
} finally {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}
