/**
 * The rollback benchmark (`npm run bench:rollback`; `-- --tenants 200 --rounds 1` for a smoke
 * check): what taking a fleet back costs next to taking it forward. The demo migrations
 * (`migrations/`, six files, one of them `no-transaction`, each with its down file), over N tenant
 * databases on a private PostgreSQL cluster, one executor process (SLUICE_CONCURRENCY 16): each
 * round migrates the fleet to the latest version, then runs `rollback` of that run, which takes
 * every tenant back through the six down files to an empty journal. Measured from the request's
 * publication to its `completed` event. Target: the rollback costs no more than the forward run.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { REQUEST_SUBJECT, type RunCompletedEvent } from '@sluice/contracts';
import {
  createTenantFleet,
  fleetServiceEnv,
  MIGRATIONS_DIR,
  type ServiceProcess,
  startNatsServer,
  startPostgresCluster,
  startService,
  waitForCompleted,
} from '@sluice/testkit';

const { values } = parseArgs({
  options: {
    tenants: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '16' },
  },
});
const TENANTS = Number(values.tenants);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = Number(values.concurrency);

const say = (line: string): void => console.log(`[bench:rollback] ${line}`);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = await mkdtemp(path.join(tmpdir(), 'sluice-rollback-bench-'));
const cleanups: Array<() => Promise<unknown>> = [];
const services: ServiceProcess[] = [];
let nc: NatsConnection | undefined;
try {
  say(`starting a PostgreSQL cluster, NATS and ${TENANTS} tenant databases`);
  const host = await startPostgresCluster({ max_connections: '200' });
  cleanups.push(() => host.dispose());
  const nats = await startNatsServer();
  cleanups.push(() => nats.dispose());
  nc = await connect({ servers: nats.url });
  const fleet = await createTenantFleet({ count: TENANTS, serverUrl: host.serverUrl, prefix: 'bench_rb' });
  // No fleet.drop(): the private cluster goes with its databases, at once.
  const registry = path.join(dir, 'tenants.json');
  await fleet.writeRegistry(registry);
  const env = fleetServiceEnv(
    { natsUrl: nats.url, registryFile: registry, migrationsDir: MIGRATIONS_DIR },
    { SLUICE_HOST_LIMIT: String(CONCURRENCY), SLUICE_DISCOVERY_INTERVAL: '250ms' },
  );
  for (const name of ['reporter', 'planner'] as const) services.push(await startService(name, env));
  services.push(await startService('executor', { ...env, SLUICE_CONCURRENCY: String(CONCURRENCY) }));

  const timed = async (request: Record<string, unknown>): Promise<{ wallMs: number; completed: RunCompletedEvent }> => {
    const t0 = performance.now();
    await jetstream(nc!).publish(REQUEST_SUBJECT, JSON.stringify({ lint: 'warn', ...request }));
    const completed = await waitForCompleted(nc!, request.runId as string, 1_800_000);
    return { wallMs: performance.now() - t0, completed };
  };

  const forward: number[] = [];
  const back: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const runId = `bench-up-${round}`;
    const up = await timed({ runId, target: 'latest' });
    if (up.completed.counts.migrated !== TENANTS)
      throw new Error(`forward run: ${JSON.stringify(up.completed.counts)}`);
    const down = await timed({ runId: `bench-down-${round}`, rollback: { runId } });
    if (down.completed.counts.rolledBack !== TENANTS)
      throw new Error(
        `rollback: ${JSON.stringify(down.completed.counts)} ${JSON.stringify(down.completed.failures.slice(0, 3))}`,
      );
    forward.push(up.wallMs);
    back.push(down.wallMs);
    say(
      `round ${round}/${ROUNDS}: forward ${(up.wallMs / 1000).toFixed(2)} s, rollback ${(down.wallMs / 1000).toFixed(2)} s`,
    );
  }
  const f = median(forward);
  const b = median(back);
  console.log(`
Rollback benchmark: ${TENANTS} tenants, 6 files each way (one no-transaction), 1 executor x ${CONCURRENCY} slots, ${ROUNDS} rounds (medians)

| Run | Wall time | Tenants/s | Per tenant |
|---|---:|---:|---:|
| forward (migrate --target latest) | ${(f / 1000).toFixed(2)} s | ${((TENANTS * 1000) / f).toFixed(0)} | ${(f / TENANTS).toFixed(1)} ms |
| rollback of that run | ${(b / 1000).toFixed(2)} s | ${((TENANTS * 1000) / b).toFixed(0)} | ${(b / TENANTS).toFixed(1)} ms |

rollback / forward = ${(b / f).toFixed(2)} (target: <= 1.00 within noise)`);
} finally {
  for (const s of services.reverse()) await s.stop().catch(() => undefined);
  await nc?.close();
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}
