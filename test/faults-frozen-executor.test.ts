import { readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { jetstream, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { REQUEST_SUBJECT, STREAMS } from '@sluice/contracts';
import {
  type DelayProxyHandle,
  fleetServiceEnv,
  type NatsServerHandle,
  type ServiceProcess,
  startDelayProxy,
  startNatsServer,
  type TenantFleet,
  waitForCompleted,
} from '@sluice/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { faultWorkspace, journals, markTenants, natsClient, outcomesByTenant, subjectCount } from './faults-support.js';

const PER_HOST = 30;
const RUN = 'fx-frozen-1';
const VERSIONS = [1, 2, 3];
/**
 * The migrator releases its lock in the message of a run's last batch, so a frozen executor keeps
 * a tenant locked only between messages: here after the slow first file (its own batch, since a
 * `no-transaction` file follows) while the next waits to be sent.
 */
const FROZEN_MIGRATIONS: Record<string, string> = {
  '0001_accounts.sql': [
    'CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL);',
    "DO $$ BEGIN IF to_regclass('public.fx_slow') IS NOT NULL THEN PERFORM pg_sleep((SELECT seconds FROM fx_slow LIMIT 1)); END IF; END $$;",
  ].join('\n'),
  '0002_accounts_by_name.sql':
    '-- sluice:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_by_name ON accounts (name);',
  '0003_invoices.sql': 'CREATE TABLE invoices (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts (id));',
};

/** Sessions of one executor holding a migration lock while they sleep in the slow first file. */
async function locksHeldBy(executorId: string): Promise<number> {
  const c = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await c.connect();
  try {
    const r = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE $1
          AND a.state = 'active' AND a.wait_event = 'PgSleep'`,
      [`sluice-executor:${executorId}:%`],
    );
    return r.rows[0]!.n;
  } finally {
    await c.end();
  }
}

describe('an executor frozen (SIGSTOP) longer than the ack wait, then woken', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let ws: Awaited<ReturnType<typeof faultWorkspace>>;
  let proxy: DelayProxyHandle;
  const fleets: TenantFleet[] = [];
  let registry: string;
  let frozen: ServiceProcess | undefined;

  beforeAll(async () => {
    nats = await startNatsServer();
    ({ nc, jsm } = await natsClient(nats.url));
    ws = await faultWorkspace('fx-frozen');
    for (const f of await readdir(ws.migrationsDir)) await rm(path.join(ws.migrationsDir, f));
    for (const [f, sql] of Object.entries(FROZEN_MIGRATIONS)) await writeFile(path.join(ws.migrationsDir, f), sql);
    // Two database hosts: the local server directly, and the same server through a proxy port.
    proxy = await startDelayProxy({ port: 5432 }, 0);
    const a = await ws.fleet('sluice_fx_frozen_a', PER_HOST);
    const b = await ws.fleet('sluice_fx_frozen_b', PER_HOST, `postgres://postgres@127.0.0.1:${proxy.port}`);
    fleets.push(a.fleet, b.fleet);
    registry = b.registry;
    await a.fleet.writeRegistry(
      registry,
      b.fleet.tenants.map(({ tenantId, databaseUrl }) => ({ tenantId, databaseUrl })),
    );
    // Every tenant spends a moment in migration 2, so the frozen executor surely holds some locks.
    for (const f of fleets) await markTenants(f, new Set(f.tenants.map((t) => t.tenantId)), { slowSeconds: 0.6 });
  });

  afterAll(async () => {
    // A stopped process cannot handle SIGTERM: wake it before the workspace stops it.
    if (frozen) process.kill(frozen.pid, 'SIGCONT');
    await nc?.close();
    await ws?.dispose();
    await proxy?.close();
    await nats?.dispose();
  });

  it('its expired sessions are fenced, the run says what the journals say, nothing is locked or applied twice', async () => {
    const env = fleetServiceEnv(
      { natsUrl: nats.url, registryFile: registry, migrationsDir: ws.migrationsDir },
      {
        // One ack wait for the consumers (planner) and the heartbeats (executors): the lease.
        SLUICE_ACK_WAIT: '4s',
        SLUICE_DISCOVERY_INTERVAL: '200ms',
        SLUICE_HOST_LIMIT: '6',
        SLUICE_RETRY_BASE: '300ms',
        SLUICE_RETRY_MAX: '2s',
        SLUICE_MAX_ATTEMPTS: '5',
      },
    );
    await ws.start('reporter', env);
    const x1 = await ws.start('executor', { ...env, SLUICE_EXECUTOR_ID: 'fz-x1', SLUICE_CONCURRENCY: '4' });
    const x2 = await ws.start('executor', { ...env, SLUICE_EXECUTOR_ID: 'fz-x2', SLUICE_CONCURRENCY: '4' });
    await ws.start('planner', env);
    await jetstream(nc).publish(REQUEST_SUBJECT, JSON.stringify({ runId: RUN, target: 'latest' }));

    // Freeze x1 while it holds migration locks (it is mid-tenant), as a GC pause or a frozen VM would.
    await expect.poll(() => locksHeldBy('fz-x1'), { timeout: 60_000, interval: 25 }).toBeGreaterThan(0);
    process.kill(x1.pid, 'SIGSTOP');
    frozen = x1;
    const frozenAt = Date.now();
    // Its tasks come back to x2 after the ack wait; x2 finds x1's sessions holding the locks, idle,
    // under an older delivery of the same task: it terminates them and takes over.
    const fence = await x2.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('stale holder'), 60_000);
    const fencedAfterMs = Date.now() - frozenAt;
    // The fault's parameter: keep x1 frozen a few seconds past the ack wait and the first fencing.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 8_000 - (Date.now() - frozenAt))));
    process.kill(x1.pid, 'SIGCONT');
    frozen = undefined;
    console.log(
      `frozen executor: first session fenced ${fencedAfterMs} ms into an 8 s freeze: ${JSON.stringify(fence.holder)}`,
    );

    const completed = await waitForCompleted(nc, RUN, 120_000);
    const total = 2 * PER_HOST;
    expect(completed.counts.total).toBe(total);
    expect(await subjectCount(jsm, STREAMS.runs.name, `sluice.runs.${RUN}.completed`)).toBe(1);

    // Every tenant: exactly one outcome, never `locked`, and it agrees with its journal — migrated
    // with every version once, or (frozen in the middle of the no-transaction file, whose
    // statements cannot be rolled back) `dirty` and failed as such.
    const outcomes = await outcomesByTenant(nc, RUN);
    expect(outcomes.size).toBe(total);
    const disagreements: string[] = [];
    let migrated = 0;
    for (const fleet of fleets) {
      for (const [tenantId, rows] of await journals(fleet)) {
        const o = outcomes.get(tenantId) ?? [];
        if (o.length !== 1) disagreements.push(`${tenantId}: ${o.length} outcomes`);
        const outcome = o[0];
        const complete =
          rows.length === VERSIONS.length &&
          rows.every((r, i) => r.version === VERSIONS[i] && r.n === 1 && r.run_id === RUN);
        if (
          complete &&
          outcome?.status === 'migrated' &&
          JSON.stringify(outcome.applied) === JSON.stringify(VERSIONS)
        ) {
          migrated += 1;
          continue;
        }
        if (!complete && outcome?.status === 'failed' && outcome.error?.code === 'dirty') continue;
        disagreements.push(
          `${tenantId}: journal ${JSON.stringify(rows)}, outcome ${outcome?.status} ${JSON.stringify(outcome?.applied)} ${outcome?.error?.code ?? ''}`,
        );
      }
    }
    expect(disagreements).toEqual([]);
    expect(completed.counts.migrated).toBe(migrated);
    expect(completed.counts.failed).toBe(total - migrated);
    const lockedLines = [x1, x2].flatMap((x) => x.logs).filter((l) => l.code === 'locked' && l.msg === 'tenant failed');
    expect(lockedLines).toEqual([]);

    // The woken executor reported nothing stale: whatever it had in flight was put back or finished,
    // and it is still running.
    expect(x1.logs.filter((l) => l.msg === 'tenant failed' && l.code !== 'dirty')).toEqual([]);
    expect(x2.logs.filter((l) => l.msg === 'tenant failed' && l.code !== 'dirty')).toEqual([]);
    const fencedTenants = new Set(
      x2.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('stale holder')).map((l) => l.tenantId),
    );
    console.log(`frozen executor: ${fencedTenants.size} tenants fenced from fz-x1 and finished by fz-x2`);
    expect(fencedTenants.size).toBeGreaterThanOrEqual(1);
    const racing = await Promise.race([x1.exited.then(() => 'exited'), Promise.resolve('running')]);
    expect(racing).toBe('running');
  });
});
