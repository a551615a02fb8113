import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { jetstream, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { REQUEST_SUBJECT } from '@sluice/contracts';
import {
  createTenantFleet,
  type DelayProxyHandle,
  MIGRATIONS_DIR,
  type NatsClusterHandle,
  type PostgresClusterHandle,
  REPO_ROOT,
  type ServiceName,
  type ServiceProcess,
  startDelayProxy,
  startNatsCluster,
  startPostgresCluster,
  startService,
  type TenantFleet,
} from '@sluice/testkit';
import pg from 'pg';

import { natsClient } from '../faults-support.js';
import { SERVICE_TARGETS, type ServiceTarget } from './chaos-faults.js';

/** The slow file added to the repository's migrations; its `chaos_effects` row shows each application. */
export const SLOW_VERSION = 7;
const SLOW_FILE = `-- sluice:lock-timeout 5s
CREATE TABLE IF NOT EXISTS chaos_effects (version int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
SELECT pg_sleep(0.5);
INSERT INTO chaos_effects (version) VALUES (${SLOW_VERSION});
`;

/** The lease: short, so a 5–15 s freeze outlives it and its tasks are delivered again. */
export const ACK_WAIT_MS = 5_000;
export const RECONCILE_AFTER_MS = 15_000;
export const RECONCILE_INTERVAL_MS = 3_000;

export interface ChaosStack {
  cluster: NatsClusterHandle;
  nc: NatsConnection;
  jsm: JetStreamManager;
  hosts: { a: PostgresClusterHandle; b: PostgresClusterHandle };
  /** Host b is reached through this proxy (the `host-cut` fault). */
  proxy: DelayProxyHandle;
  /** The database password the services are given (trust auth ignores it): no log may show it. */
  password: string;
  services: Map<ServiceTarget, ServiceProcess>;
  /** Every process ever started, killed ones included (their logs are checked too). */
  allProcesses: ServiceProcess[];
  /** Starts (or starts again) one service. */
  startTarget(target: ServiceTarget): Promise<ServiceProcess>;
  /** Starts every service that is not running. */
  ensureServices(): Promise<void>;
  /** Two fleets (one per host) for a run, and the registry naming them. */
  createFleets(tag: string, perHost: number): Promise<TenantFleet[]>;
  /** Drops a run's fleets (a checkpoint first: each DROP DATABASE forces one, cheap only when little is dirty). */
  dropFleets(fleets: TenantFleet[]): Promise<void>;
  publishRequest(runId: string, msgId?: boolean): Promise<void>;
  /** Runs the CLI; resolves with its exit code and output. */
  cli(args: string[]): Promise<{ code: number | null; output: string }>;
  /** The services' environment (NATS, registry, Postgres user): what `sluice runs recover` needs too. */
  serviceEnv: Record<string, string>;
  dispose(): Promise<void>;
}

function serviceOf(target: ServiceTarget): ServiceName {
  return target.split('-')[0] as ServiceName;
}

/**
 * A 3-node NATS cluster (streams with 3 replicas), two private PostgreSQL hosts (host b behind a
 * proxy), and the services as processes: two planners, three executors, two reporters.
 * `dispose()` stops everything it started, by pid, and removes its files.
 */
export async function startChaosStack(log: (line: string) => void): Promise<ChaosStack> {
  const stack = {
    services: new Map(),
    allProcesses: [] as ServiceProcess[],
    password: `chaos-pw-${randomBytes(6).toString('hex')}`,
  } as unknown as ChaosStack & { dir?: string };
  const disposers: Array<() => Promise<void>> = [];
  stack.dispose = async () => {
    for (const s of stack.allProcesses) {
      // A frozen process cannot handle SIGTERM.
      if (alive(s)) tryKill(s.pid, 'SIGCONT');
      await s.stop(10_000);
    }
    for (const d of disposers.reverse()) await d().catch(() => undefined);
  };
  try {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-chaos-'));
    disposers.push(() => rm(dir, { recursive: true, force: true }));
    const migrationsDir = path.join(dir, 'migrations');
    await cp(MIGRATIONS_DIR, migrationsDir, { recursive: true });
    await writeFile(path.join(migrationsDir, `${String(SLOW_VERSION).padStart(4, '0')}_chaos_slow.sql`), SLOW_FILE);
    const registry = path.join(dir, 'tenants.json');
    await writeFile(registry, '[]');

    stack.cluster = await startNatsCluster({ size: 3 });
    disposers.push(() => stack.cluster.dispose());
    log(`nats cluster: ${stack.cluster.nodes.map((n) => `${n.name}=${n.pid}`).join(' ')}`);
    ({ nc: stack.nc, jsm: stack.jsm } = await natsClient(stack.cluster.url));
    disposers.push(() => stack.nc.close());
    // Durable hosts: the pg-stop fault is an immediate stop, a crash. With the test kit's default
    // (fsync and synchronous_commit off) a crash loses commits the client was told about, and the
    // checker saw exactly that (seed 3: outcomes `migrated`, journals short of the last version) —
    // the database's setting, not Sluice. A production host commits durably; so do these.
    const durable = { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on' };
    const [a, b] = await Promise.all([startPostgresCluster(durable), startPostgresCluster(durable)]);
    stack.hosts = { a: a, b: b };
    disposers.push(
      () => a.dispose(),
      () => b.dispose(),
    );
    stack.proxy = await startDelayProxy({ port: b.port }, 0);
    disposers.push(() => stack.proxy.close());
    log(`postgres: host a 127.0.0.1:${a.port}, host b 127.0.0.1:${b.port} behind proxy :${stack.proxy.port}`);

    const env: Record<string, string> = {
      NATS_URL: stack.cluster.url,
      SLUICE_STREAM_REPLICAS: '3',
      SLUICE_MIGRATIONS_DIR: migrationsDir,
      SLUICE_REGISTRY: 'file',
      SLUICE_TENANTS_FILE: registry,
      SLUICE_REPORTER_PORT: '0',
      PGUSER: 'postgres',
      PGPASSWORD: stack.password,
      SLUICE_ACK_WAIT: `${ACK_WAIT_MS}ms`,
      SLUICE_DISCOVERY_INTERVAL: '250ms',
      SLUICE_RETRY_BASE: '500ms',
      SLUICE_RETRY_MAX: '4s',
      SLUICE_MAX_ATTEMPTS: '12',
      SLUICE_RECONCILE_AFTER: `${RECONCILE_AFTER_MS}ms`,
      SLUICE_RECONCILE_INTERVAL: `${RECONCILE_INTERVAL_MS}ms`,
      SLUICE_BREAKER_RESET: '2s',
      SLUICE_CONNECT_TIMEOUT: '3s',
      SLUICE_HOST_LIMIT: '8',
      SLUICE_CONCURRENCY: '6',
    };
    stack.serviceEnv = env;
    stack.startTarget = async (target) => {
      // A supervisor's patience, not a test's: a service restarted while a NATS node is down (its
      // startup's API calls wait for an election) on a loaded machine took more than the test
      // kit's 20 s to say ready (seed 13, load average 31 on 2 cores, no log line yet).
      const s = await startService(
        serviceOf(target),
        { ...env, SLUICE_EXECUTOR_ID: `chaos-${target}` },
        { readyTimeoutMs: 60_000 },
      );
      void s.exited.then(() => exited.add(s));
      stack.services.set(target, s);
      stack.allProcesses.push(s);
      return s;
    };
    stack.ensureServices = async () => {
      for (const target of SERVICE_TARGETS) {
        const s = stack.services.get(target);
        if (!s || !alive(s)) await stack.startTarget(target);
      }
    };
    await stack.ensureServices();
    log(`services: ${[...stack.services].map(([t, s]) => `${t}=${s.pid}`).join(' ')}`);

    const fleets: TenantFleet[] = [];
    disposers.push(async () => {
      for (const f of fleets) await f.drop().catch(() => undefined);
    });
    stack.createFleets = async (tag, perHost) => {
      // Both hosts at once: durable CREATE DATABASE is slow, and they are two servers.
      const made = await Promise.all([
        createTenantFleet({
          count: perHost,
          serverUrl: a.serverUrl,
          prefix: `chaos_${tag}_a`,
          tenantPrefix: `${tag}-a`,
        }),
        createTenantFleet({
          count: perHost,
          serverUrl: `postgres://postgres@127.0.0.1:${stack.proxy.port}`,
          prefix: `chaos_${tag}_b`,
          tenantPrefix: `${tag}-b`,
        }),
      ]);
      fleets.push(...made);
      const [first, second] = made;
      await first.writeRegistry(
        registry,
        second.tenants.map(({ tenantId, databaseUrl }) => ({ tenantId, databaseUrl })),
      );
      // A checkpoint after creating the run's databases, as a host that has been up a while has
      // one behind it: otherwise a crash (pg-stop) replays every CREATE DATABASE of the fleet,
      // durably, and recovery outlasted pg_ctl's 30 s on a loaded machine (seed 3).
      await Promise.all([a, b].map((host) => checkpoint(host.serverUrl)));
      return made;
    };
    stack.dropFleets = async (made) => {
      await Promise.all(
        [a, b].map((host, i) =>
          checkpoint(host.serverUrl)
            .catch(() => undefined)
            .then(() => made[i]?.drop())
            .catch(() => undefined),
        ),
      );
    };
    // As a client would: a publish that times out (a node down, a starved machine) is sent again.
    stack.publishRequest = async (runId, msgId = true) => {
      for (let attempt = 1; ; attempt++) {
        try {
          await jetstream(stack.nc).publish(
            REQUEST_SUBJECT,
            JSON.stringify({ runId, target: 'latest' }),
            msgId ? { msgID: `request:${runId}` } : {},
          );
          return;
        } catch (error) {
          if (attempt >= 10) throw error;
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }
      }
    };
    stack.cli = (args) =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, [path.join(REPO_ROOT, 'packages/cli/dist/main.js'), ...args], {
          env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NATS_URL: stack.cluster.url },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        // The harness never waits on a command for ever: one that has not answered in 2 minutes
        // is a finding (recorded with its output), not a hung chaos run.
        const started = Date.now();
        const killer = setTimeout(() => {
          output += '\n[chaos] the CLI did not exit within 120 s: killed';
          child.kill('SIGKILL');
        }, 120_000);
        // Each piece of output with its time: a command that answered, then did not exit, shows it.
        const add = (c: Buffer) => (output += `[+${((Date.now() - started) / 1000).toFixed(1)}s] ${c.toString()}`);
        child.stdout.on('data', add);
        child.stderr.on('data', add);
        child.once('exit', (code) => {
          clearTimeout(killer);
          resolve({ code, output });
        });
      });
    return stack;
  } catch (error) {
    await stack.dispose();
    throw error;
  }
}

const exited = new WeakSet<ServiceProcess>();

/** Whether a service process is still running (frozen counts as running). */
export function alive(s: ServiceProcess): boolean {
  return !exited.has(s);
}

/** Sends a signal by pid; false when the process is gone. */
export function tryKill(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

async function checkpoint(serverUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: `${serverUrl}/postgres` });
  await client.connect();
  try {
    await client.query('CHECKPOINT');
  } finally {
    await client.end();
  }
}

/** Waits until a host answers queries (crash recovery done); false when it does not within `timeoutMs`. */
export async function hostAnswers(serverUrl: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const client = new pg.Client({ connectionString: `${serverUrl}/postgres`, connectionTimeoutMillis: 2_000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 500));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  return false;
}
