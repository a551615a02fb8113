import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { DeliverPolicy, jetstream, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  BUCKETS,
  LEDGER_STREAM,
  ledgerSubject,
  REQUEST_SUBJECT,
  runEventSubject,
  STREAMS,
  type TaskLedgerEntry,
  type TenantOutcome,
} from '@sluice/contracts';
import {
  apiHeaders,
  createTenantFleet,
  type NatsServerHandle,
  type ServiceName,
  type ServiceProcess,
  startNatsServer,
  startService,
  type TenantFleet,
} from '@sluice/testkit';

/**
 * Every tenant spends ~120 ms in migration 2, so a run lasts long enough to steer it; and waits
 * there while the gate file is missing, so a test can hold tenants mid-migration until it has done
 * what it must do while they run (the database checks the file: the executor knows nothing of it).
 */
const migrations = (gate: string) => ({
  '0001_accounts.sql': 'CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL);',
  '0002_slow_backfill.sql': [
    `DO $$ BEGIN WHILE pg_stat_file('${gate}', true) IS NULL LOOP PERFORM pg_sleep(0.02); END LOOP; END $$;`,
    'SELECT pg_sleep(0.12);',
    "INSERT INTO accounts VALUES (1, 'owner');",
  ].join('\n'),
  '0003_invoices.sql': 'CREATE TABLE invoices (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts (id));',
});

export interface ReporterProcess {
  proc: ServiceProcess;
  port: number;
  /** How the start went (from its `reporter ready` log line). */
  startup: { ms: number; unfinished: number; outcomes: number; ledgerEntries: number };
}

/**
 * A private nats-server, slow migrations, fleets on the local Postgres, and the services as real
 * processes — everything a lifecycle test needs, removed by `dispose()`.
 */
export async function lifecycleHarness() {
  const nats: NatsServerHandle = await startNatsServer();
  const nc: NatsConnection = await connect({ servers: nats.url });
  const jsm: JetStreamManager = await jetstream(nc).jetstreamManager();
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-lifecycle-'));
  // The Postgres server (its own OS user) looks for the gate file in here.
  await chmod(dir, 0o755);
  const gate = path.join(dir, 'gate');
  await writeFile(gate, 'open');
  const migrationsDir = path.join(dir, 'migrations');
  await mkdir(migrationsDir);
  for (const [file, sql] of Object.entries(migrations(gate))) await writeFile(path.join(migrationsDir, file), sql);
  const fleets: TenantFleet[] = [];
  const services: ServiceProcess[] = [];

  const env = (registry: string, extra: Record<string, string> = {}): Record<string, string> => ({
    NATS_URL: nats.url,
    SLUICE_MIGRATIONS_DIR: migrationsDir,
    SLUICE_REGISTRY: 'file',
    SLUICE_TENANTS_FILE: registry,
    SLUICE_REPORTER_PORT: '0',
    SLUICE_DISCOVERY_INTERVAL: '200ms',
    SLUICE_HOST_LIMIT: '2',
    PGUSER: 'postgres',
    ...extra,
  });

  const h = {
    nats,
    nc,
    jsm,
    migrationsDir,
    services,
    env,
    /** A fleet of empty tenant databases plus `broken` registry rows naming databases that do not exist; broken rows first when `brokenFirst`. */
    async fleet(
      name: string,
      count: number,
      options: { broken?: number; brokenEvery?: number } = {},
    ): Promise<{ registry: string; fleet: TenantFleet; broken: string[] }> {
      const fleet = await createTenantFleet({ count, tenantPrefix: name });
      fleets.push(fleet);
      const missing = Array.from({ length: options.broken ?? 0 }, (_, i) => ({
        tenantId: `${name}-broken-${i + 1}`,
        databaseUrl: `postgres://postgres@127.0.0.1:5432/sluice_missing_${randomBytes(4).toString('hex')}`,
      }));
      const good = fleet.tenants.map(({ tenantId, databaseUrl }) => ({ tenantId, databaseUrl }));
      // Broken rows first, or one every `brokenEvery` rows from the start.
      const rows: Array<{ tenantId: string; databaseUrl: string }> = [];
      if (options.brokenEvery) {
        const queue = [...missing];
        for (const [i, row] of good.entries()) {
          if (i % (options.brokenEvery - 1) === 0 && queue.length > 0) rows.push(queue.shift()!);
          rows.push(row);
        }
        rows.push(...queue);
      } else {
        rows.push(...missing, ...good);
      }
      const registry = path.join(dir, `${name}.json`);
      await writeFile(registry, JSON.stringify(rows));
      return { registry, fleet, broken: missing.map((m) => m.tenantId) };
    },
    async start(name: ServiceName, e: Record<string, string>): Promise<ServiceProcess> {
      const proc = await startService(name, e);
      services.push(proc);
      return proc;
    },
    async startReporter(e: Record<string, string>): Promise<ReporterProcess> {
      const started = performance.now();
      const proc = await h.start('reporter', e);
      const ready = await proc.waitForLog((l) => l.msg === 'reporter ready');
      const startup = ready.startup as ReporterProcess['startup'];
      return {
        proc,
        port: ready.httpPort as number,
        startup: { ...startup, ms: Math.round(performance.now() - started) },
      };
    },
    /** Holds every tenant that reaches migration 2 there until `openGate()` (the gate starts open). */
    closeGate: () => rm(gate, { force: true }),
    openGate: () => writeFile(gate, 'open'),
    publishRequest: (payload: unknown) => jetstream(nc).publish(REQUEST_SUBJECT, JSON.stringify(payload)),
    async http(
      reporter: ReporterProcess,
      method: string,
      urlPath: string,
      body?: unknown,
    ): Promise<{ status: number; body: Record<string, unknown> }> {
      const res = await fetch(`http://127.0.0.1:${reporter.port}${urlPath}`, {
        method,
        headers: apiHeaders(),
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    /** Messages on one subject of a stream, in order. */
    async read<T>(stream: string, subject: string): Promise<Array<{ data: T; seq: number; time: number }>> {
      const info = await jsm.streams.info(stream, { subjects_filter: subject });
      const count = info.state.subjects?.[subject] ?? 0;
      if (count === 0) return [];
      const consumer = await jetstream(nc).consumers.get(stream, {
        filter_subjects: subject,
        deliver_policy: DeliverPolicy.All,
      });
      const out: Array<{ data: T; seq: number; time: number }> = [];
      const messages = await consumer.fetch({ max_messages: count, expires: 10_000 });
      for await (const m of messages)
        out.push({ data: m.json<T>(), seq: m.seq, time: Math.floor(m.info.timestampNanos / 1e6) });
      return out;
    },
    events: <T = Record<string, unknown>>(
      runId: string,
      event: 'accepted' | 'planned' | 'progress' | 'completed' | 'control',
    ) => h.read<T>(STREAMS.runs.name, runEventSubject(runId, event)),
    outcomes: async (runId: string) =>
      (await h.read<TenantOutcome>(STREAMS.outcomes.name, `sluice.outcomes.${runId}`)).map((m) => m.data),
    ledger: async (runId: string) =>
      (await h.read<TaskLedgerEntry>(LEDGER_STREAM.name, ledgerSubject(runId))).map((m) => m.data),
    /** Migration sessions open in this file's fleets right now (other tests' sessions on the server are not counted). */
    async activeMigrations(): Promise<number> {
      const counts = await Promise.all(fleets.map((f) => f.migrationSessions()));
      return counts.reduce((a, b) => a + b, 0);
    },
    /** The control state executors obey for a run (`running`, `paused`, …), as the KV bucket holds it now. */
    async controlState(runId: string): Promise<string | undefined> {
      const entry = await jsm.streams
        .getMessage(`KV_${BUCKETS.runControl}`, { last_by_subj: `$KV.${BUCKETS.runControl}.${runId}` })
        .catch(() => null);
      return entry ? entry.json<{ state: string }>().state : undefined;
    },
    async countCompleted(runId: string): Promise<number> {
      const subject = runEventSubject(runId, 'completed');
      const info = await jsm.streams.info(STREAMS.runs.name, { subjects_filter: subject });
      return info.state.subjects?.[subject] ?? 0;
    },
    /** Tenants of a fleet whose database has a journal (something ran there). */
    async journalled(fleet: TenantFleet): Promise<string[]> {
      const rows = await fleet.eachTenant(async (c, t) =>
        (await c.query<{ r: string | null }>("SELECT to_regclass('public.sluice_migrations')::text AS r")).rows[0]?.r
          ? t.tenantId
          : null,
      );
      return rows.filter((r): r is string => r !== null);
    },
    async stopServices(): Promise<void> {
      for (const s of services.splice(0).reverse()) await s.stop();
    },
    async dispose(): Promise<void> {
      await h.stopServices();
      await nc.close();
      await Promise.all(fleets.map((f) => f.drop().catch(() => undefined)));
      await nats.dispose();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return h;
}

export type LifecycleHarness = Awaited<ReturnType<typeof lifecycleHarness>>;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
