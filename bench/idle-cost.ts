/**
 * What Sluice costs while it has nothing to do: the planner, one executor, the reporter and
 * nats-server started on an empty fleet, left to settle for `--warmup` seconds (start-up's own
 * work and garbage are done by then), then each process's CPU and write system calls over
 * `--seconds` (/proc). Every running service pays this whatever the fleet does, so at a real
 * run's tens of tenants a second it is part of each tenant's cost: `--seconds 20` at 4 ms/s for
 * a 1,000-tenant run of 20 s is 0.08 ms a tenant.
 *
 * Run: `npm run build && npx tsx bench/idle-cost.ts [--seconds 20] [--warmup 12]`.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { fleetServiceEnv, type ServiceProcess, startCpuMeter, startNatsServer, startService } from '@sluice/testkit';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '20' }, warmup: { type: 'string', default: '12' } },
});
const seconds = Number(values.seconds);
const warmupMs = Number(values.warmup) * 1_000;

const dir = await mkdtemp(path.join(tmpdir(), 'sluice-idle-'));
const nats = await startNatsServer();
const services: ServiceProcess[] = [];
try {
  const registry = path.join(dir, 'tenants.json');
  await writeFile(registry, '[]');
  const env = fleetServiceEnv({ natsUrl: nats.url, registryFile: registry });
  for (const name of ['reporter', 'planner', 'executor'] as const) services.push(await startService(name, env));
  await new Promise((resolve) => setTimeout(resolve, warmupMs));
  const [reporter, planner, executor] = services;
  const meter = startCpuMeter({
    planner: () => [planner!.pid],
    executor: () => [executor!.pid],
    reporter: () => [reporter!.pid],
    'nats-server': () => [nats.pid],
  });
  await new Promise((resolve) => setTimeout(resolve, seconds * 1_000));
  const { groupsMs, groupsWrites } = meter.stop();
  console.log(`idle for ${seconds} s after ${warmupMs / 1_000} s to settle (CPU from /proc: user + system)`);
  console.log('| process | CPU ms/s | writes/s |');
  console.log('|---|---:|---:|');
  for (const name of Object.keys(groupsMs))
    console.log(
      `| ${name} | ${(groupsMs[name]! / seconds).toFixed(1)} | ${(groupsWrites[name]! / seconds).toFixed(1)} |`,
    );
} finally {
  for (const s of services.reverse()) await s.stop();
  await nats.dispose();
  await rm(dir, { recursive: true, force: true });
}
