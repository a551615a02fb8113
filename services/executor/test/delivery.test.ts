import { randomBytes } from 'node:crypto';

import { AckPolicy, type Bus, decodeJson } from '@sluice/bus';
import { STREAMS, type TenantOutcome, type TenantTask } from '@sluice/contracts';
import { createMigrationSet } from '@sluice/core';
import { loadSqlParser } from '@sluice/sql-parser';
import { createLogger } from '@sluice/telemetry';
import { freePort } from '@sluice/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createDelivery } from '../src/delivery.js';
import { postgresTenantWork } from '../src/tenant-work.js';
import { startTaskBus, type TaskBusFixture } from './support.js';

const parser = await loadSqlParser();

const logger = createLogger({ service: 'executor-test', level: 'silent' });
const DB = `sluice_exec_${randomBytes(3).toString('hex')}`;
const DB2 = `${DB}_b`;
const set = createMigrationSet(
  [
    { file: '0001_t.sql', sql: 'CREATE TABLE t (id int);' },
    { file: '0002_u.sql', sql: 'CREATE TABLE u (id int);' },
  ],
  parser,
);
const broken = createMigrationSet(
  [{ file: '0001_bad.sql', sql: 'CREATE TABLE t (id int REFERENCES nowhere (id));' }],
  parser,
);

describe('the delivery of a task against real NATS and Postgres', () => {
  let fixture: TaskBusFixture;
  let bus: Bus;
  let closedPort: number;

  beforeAll(async () => {
    fixture = await startTaskBus('executor-test');
    bus = fixture.bus;
    await bus.jsm.consumers.add(STREAMS.tasks.name, {
      durable_name: 'exec',
      filter_subject: 'sluice.tasks.>',
      ack_policy: AckPolicy.Explicit,
      ack_wait: 30e9,
    });
    const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${DB}`);
    await admin.query(`CREATE DATABASE ${DB2}`);
    await admin.end();
    closedPort = await freePort();
  }, 30_000);

  afterAll(async () => {
    await fixture?.dispose();
    const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    await admin.query(`DROP DATABASE IF EXISTS ${DB2} WITH (FORCE)`);
    await admin.end();
  });

  const config = {
    executorId: 'x1',
    maxAttempts: 2,
    retryBaseMs: 100,
    retryMaxMs: 200,
    ackWaitMs: 30_000,
    lockTimeoutMs: 2_000,
    statementTimeoutMs: 10_000,
    connectTimeoutMs: 2_000,
  };

  const task = (over: Partial<TenantTask>): TenantTask => ({
    runId: 'run1',
    tenantId: 'ten1',
    databaseUrl: `postgres://postgres@127.0.0.1:5432/${DB}`,
    host: '127.0.0.1:5432',
    target: 2,
    digest: set.digest,
    dryRun: false,
    plannedAt: new Date().toISOString(),
    ...over,
  });

  /** Publishes one task and feeds its deliveries to the pipeline until an outcome appears. */
  async function runTask(
    t: unknown,
    handlerSet = set,
    tenantId = (t as TenantTask).tenantId,
  ): Promise<{ outcome?: TenantOutcome; deliveries: number }> {
    await bus.publish('sluice.tasks.test', t);
    const { handle } = createDelivery({
      bus,
      migrations: handlerSet,
      logger,
      config,
      tenantWork: postgresTenantWork(config),
    });
    const consumer = await bus.js.consumers.get(STREAMS.tasks.name, 'exec');
    let deliveries = 0;
    for (let i = 0; i < 6; i++) {
      const msg = await consumer.next({ expires: 2_000 });
      if (!msg) break;
      deliveries += 1;
      await handle(msg);
      const outcome = await lastOutcome((t as TenantTask).runId, tenantId);
      if (outcome) return { outcome, deliveries };
    }
    return { deliveries };
  }

  async function lastOutcome(runId: string, tenantId: string): Promise<TenantOutcome | undefined> {
    const info = await bus.jsm.streams.info(STREAMS.outcomes.name);
    for (let seq = info.state.last_seq; seq >= info.state.first_seq && info.state.messages > 0; seq--) {
      const m = await bus.jsm.streams.getMessage(STREAMS.outcomes.name, { seq }).catch(() => undefined);
      const o = m ? (decodeJson(m.data) as TenantOutcome) : undefined;
      if (o && o.runId === runId && o.tenantId === tenantId) return o;
    }
    return undefined;
  }

  it('migrates a tenant and reports what it applied with timings', async () => {
    const { outcome } = await runTask(task({}));
    expect(outcome).toMatchObject({
      status: 'migrated',
      applied: [1, 2],
      fromVersion: null,
      toVersion: 2,
      executorId: 'x1',
      attempts: 1,
    });
    expect(outcome?.timings?.connectMs).toBeGreaterThan(0);
    expect(outcome?.timings?.queuedMs).toBeGreaterThanOrEqual(0);
  });

  it('retries an unreachable host, then fails the tenant with the last error', async () => {
    const { outcome, deliveries } = await runTask(
      task({
        tenantId: 'down',
        databaseUrl: `postgres://postgres@127.0.0.1:${closedPort}/x`,
        host: `127.0.0.1:${closedPort}`,
      }),
    );
    expect(deliveries).toBe(2);
    expect(outcome).toMatchObject({
      status: 'failed',
      attempts: 2,
      error: { code: 'host_unavailable', transient: true },
    });
  });

  it('fails a tenant at once on a SQL error, with the version and SQLSTATE', async () => {
    const { outcome, deliveries } = await runTask(
      task({
        runId: 'run2',
        tenantId: 'sqlerr',
        target: 1,
        digest: broken.digest,
        databaseUrl: `postgres://postgres@127.0.0.1:5432/${DB2}`,
      }),
      broken,
    );
    expect(deliveries).toBe(1);
    expect(outcome).toMatchObject({
      status: 'failed',
      error: { code: 'sql_error', transient: false, version: 1, sqlState: '42P01' },
    });
  });

  it('puts back a task planned with another migration set and applies nothing', async () => {
    const { outcome, deliveries } = await runTask(task({ runId: 'run3', tenantId: 'skew', digest: 'f'.repeat(64) }));
    expect(deliveries).toBe(2);
    expect(outcome).toMatchObject({ status: 'failed', error: { code: 'digest_mismatch' } });
  });

  it('reports a malformed task that names its run and tenant, and drops it', async () => {
    const { outcome, deliveries } = await runTask(
      { runId: 'run4', tenantId: 'weird', databaseUrl: 'postgres://u:pw@h/db' },
      set,
      'weird',
    );
    expect(deliveries).toBe(1);
    expect(outcome?.status).toBe('failed');
    expect(outcome?.error?.message).toMatch(/malformed task/);
  });
});
