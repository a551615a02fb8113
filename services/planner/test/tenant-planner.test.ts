import {
  type Bus,
  connectBus,
  decodeJson,
  ensureTopology,
  type JsMsg,
  listHostConsumers,
  openRunClaims,
} from '@sluice/bus';
import {
  type FleetRecord,
  REJECTED_SUBJECT,
  REQUEST_SUBJECT,
  STREAMS,
  taskMsgId,
  taskSubject,
  type TenantOutcome,
  type TenantTask,
} from '@sluice/contracts';
import { createMigrationSet } from '@sluice/core';
import { createMemoryRegistry, type RegistryRow, type TenantRegistry } from '@sluice/registry';
import { loadSqlParser } from '@sluice/sql-parser';
import { createLogger } from '@sluice/telemetry';
import { type NatsServerHandle, startNatsServer } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createPlanner } from '../src/tenant-planner.js';

const parser = await loadSqlParser();

const logger = createLogger({ service: 'planner-test', level: 'silent' });
const set = createMigrationSet([{ file: '0001_a.sql', sql: 'SELECT 1;' }], parser);
const SECRET = 'hunter2-secret';

const rows: RegistryRow[] = [
  { tenantId: 'ok-1', databaseUrl: `postgres://app:${SECRET}@db1.internal:5432/t1` },
  { tenantId: 'ok-2', databaseUrl: 'postgres://app@db2.internal:6432/t2', tags: { tier: 'gold' } },
  { tenantId: 'sleepy', databaseUrl: 'postgres://app@db1.internal/t3', status: 'suspended' },
  { databaseUrl: 'postgres://app@db1.internal/t4' },
  { tenantId: 'bad-url', databaseUrl: 'not a url' },
  { tenantId: 'ok-1', databaseUrl: 'postgres://app@db1.internal/t1-copy' },
];

describe('planner against a real nats-server', () => {
  let nats: NatsServerHandle;
  let bus: Bus;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: 'planner-test' }, logger);
    await ensureTopology(bus.jsm);
  }, 30_000);
  afterAll(async () => {
    await bus?.close();
    await nats?.dispose();
  });

  /** Reads a stream's stored messages by sequence (ordered consumers are refused on work queues). */
  async function readAll<T>(stream: string, filter: string): Promise<Array<{ subject: string; data: T; raw: string }>> {
    const info = await bus.jsm.streams.info(stream);
    const pattern = new RegExp(`^${filter.replace(/\./g, '\\.').replace(/>$/, '.+')}$`);
    const out: Array<{ subject: string; data: T; raw: string }> = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await bus.jsm.streams.getMessage(stream, { seq }).catch(() => undefined);
      if (m && pattern.test(m.subject))
        out.push({ subject: m.subject, data: decodeJson(m.data) as T, raw: m.string() });
    }
    return out;
  }

  function fakeMsg(payload: unknown): JsMsg & { acked: boolean } {
    const msg = {
      data: new TextEncoder().encode(typeof payload === 'string' ? payload : JSON.stringify(payload)),
      subject: REQUEST_SUBJECT,
      acked: false,
      ack() {
        msg.acked = true;
      },
      working() {},
    };
    return msg as unknown as JsMsg & { acked: boolean };
  }

  const plannerWith = async (registry: TenantRegistry, registryRetryMs = 5_000, fleet?: Map<string, FleetRecord>) =>
    createPlanner({
      ...(fleet ? { fleet: { get: (id: string) => Promise.resolve(fleet.get(id)) } } : {}),
      bus,
      registry,
      claims: await openRunClaims(bus),
      migrations: set,
      logger,
      publishWindow: 8,
      registryRetryMs,
      ackWaitMs: 30_000,
      hostLimits: { default: 4, overrides: new Map([['db2.internal:6432', 2]]) },
      taskAckWaitMs: 30_000,
    });

  it('publishes a task per active tenant, settles the rest itself, and never publishes a password', async () => {
    const planner = await plannerWith(createMemoryRegistry(rows));
    const msg = fakeMsg({ runId: 'plan-1', target: 'latest' });
    await planner.handleRequest(msg);
    expect(msg.acked).toBe(true);

    const tasks = await readAll<TenantTask>(STREAMS.tasks.name, 'sluice.tasks.>');
    expect(tasks.map((t) => t.data.tenantId).sort()).toEqual(['ok-1', 'ok-2']);
    expect(tasks.find((t) => t.data.tenantId === 'ok-2')?.subject).toBe('sluice.tasks.db2_2einternal:6432');
    expect(tasks.every((t) => t.data.digest === set.digest && t.data.target === 1)).toBe(true);

    const outcomes = await readAll<TenantOutcome>(STREAMS.outcomes.name, 'sluice.outcomes.plan-1');
    const byId = Object.fromEntries(outcomes.map((o) => [o.data.tenantId, o.data]));
    expect(byId.sleepy?.status).toBe('skipped');
    expect(byId['#4']?.error?.message).toMatch(/no tenantId/);
    expect(byId['bad-url#5']?.error?.message).toMatch(/malformed databaseUrl/);
    expect(byId['ok-1#6']?.error?.message).toMatch(/duplicate tenantId ok-1/);

    const events = await readAll<{ total: number; tasks: number; skipped: number; invalid: number }>(
      STREAMS.runs.name,
      'sluice.runs.plan-1.>',
    );
    expect(events.map((e) => e.subject)).toEqual(['sluice.runs.plan-1.accepted', 'sluice.runs.plan-1.planned']);
    expect(events[1]?.data).toMatchObject({ total: 6, tasks: 2, skipped: 1, invalid: 3 });

    // One consumer per host, its limit from the configuration (an override for db2).
    const consumers = await listHostConsumers(bus.jsm);
    expect(Object.fromEntries(consumers.map((c) => [c.hostKey, c.maxAckPending]))).toEqual({
      'db1.internal:5432': 4,
      'db2.internal:6432': 2,
    });

    const everything = [...tasks, ...outcomes, ...events].map((m) => m.raw).join('\n');
    expect(everything).not.toContain(SECRET);
  });

  // Replays chaos seed 14: a planner frozen mid-plan woke after a second planner had planned the
  // run again (a resume) and published every task; the first planner's later publishes were
  // duplicate acks, which it took for duplicate registry rows: 22 invalid outcomes, 201 tenants
  // counted of 200. A duplicate ack means "already published", not "a second row".
  it('a task another plan of the run already published is planned, not a duplicate row', async () => {
    const first: RegistryRow[] = [
      { tenantId: 'race-1', databaseUrl: 'postgres://app@db1.internal/r1' },
      { tenantId: 'race-2', databaseUrl: 'postgres://app@db1.internal/r2' },
      { tenantId: 'race-2', databaseUrl: 'postgres://app@db1.internal/r2-copy' },
    ];
    // The other planner got there first for race-1.
    await bus.publish(
      taskSubject('db1.internal:5432'),
      { runId: 'plan-race', tenantId: 'race-1' },
      { msgId: taskMsgId('plan-race', 'race-1') },
    );
    const planner = await plannerWith(createMemoryRegistry(first));
    await planner.handleRequest(fakeMsg({ runId: 'plan-race', target: 'latest' }));
    const outcomes = await readAll<TenantOutcome>(STREAMS.outcomes.name, 'sluice.outcomes.plan-race');
    expect(outcomes.map((o) => o.data.tenantId)).toEqual(['race-2#3']);
    const planned = await readAll<{ total: number; tasks: number; invalid: number }>(
      STREAMS.runs.name,
      'sluice.runs.plan-race.planned',
    );
    expect(planned[0]?.data).toMatchObject({ total: 3, tasks: 2, invalid: 1 });
  });

  it("trust: fleet-state settles tenants current at the target without a task, never in a canary's place", async () => {
    const current = (tenantId: string, host: string): FleetRecord => ({
      tenantId,
      host,
      version: 1,
      digest: set.digest,
      status: 'current',
      run: 'before',
      at: '2026-11-30T00:00:00.000Z',
    });
    const registry = createMemoryRegistry(
      ['tr-1', 'tr-2', 'tr-3', 'tr-4', 'tr-5'].map((tenantId) => ({
        tenantId,
        databaseUrl: `postgres://app@db1.internal:5432/${tenantId}`,
      })),
    );
    const fleet = new Map<string, FleetRecord>([
      ['tr-1', current('tr-1', 'db1.internal:5432')],
      ['tr-2', { ...current('tr-2', 'db1.internal:5432'), status: 'failed' }],
      ['tr-3', current('tr-3', 'db9.internal:5432')], // moved to another host since: read again
      ['tr-5', current('tr-5', 'db1.internal:5432')],
    ]);
    const planner = await plannerWith(registry, 5_000, fleet);
    await planner.handleRequest(
      fakeMsg({ runId: 'plan-trust', target: 'latest', trust: 'fleet-state', rollout: { canary: 1 } }),
    );
    const outcomes = await readAll<TenantOutcome>(STREAMS.outcomes.name, 'sluice.outcomes.plan-trust');
    expect(outcomes.map((o) => [o.data.tenantId, o.data.status, o.data.from]).sort()).toEqual([
      ['tr-1', 'upToDate', 'fleet-state'],
      ['tr-5', 'upToDate', 'fleet-state'],
    ]);
    const tasks = (await readAll<TenantTask>(STREAMS.tasks.name, 'sluice.tasks.>')).filter(
      (t) => t.data.runId === 'plan-trust',
    );
    // The canary is the first tenant that runs (tr-2), not tr-1, which the state settled.
    expect(tasks.map((t) => [t.data.tenantId, t.data.stage]).sort()).toEqual([
      ['tr-2', 'canary'],
      ['tr-3', 'fleet'],
      ['tr-4', 'fleet'],
    ]);
    const planned = await readAll<Record<string, unknown>>(STREAMS.runs.name, 'sluice.runs.plan-trust.>');
    expect(planned.map((e) => e.data)).toEqual([
      expect.objectContaining({ trust: 'fleet-state' }),
      expect.objectContaining({ total: 5, tasks: 3, canaries: 1, fromFleetState: 2 }),
    ]);
  });

  it('fails each requested id the registry does not hold as not_found, counted in the plan', async () => {
    const planner = await plannerWith(createMemoryRegistry(rows.slice(0, 2)));
    await planner.handleRequest(
      fakeMsg({ runId: 'plan-ids', target: 'latest', tenants: { ids: ['ok-2', 'no-such-tenant', 'typo-1'] } }),
    );
    const outcomes = await readAll<TenantOutcome>(STREAMS.outcomes.name, 'sluice.outcomes.plan-ids');
    expect(outcomes.map((o) => [o.data.tenantId, o.data.status, o.data.error?.code]).sort()).toEqual([
      ['no-such-tenant', 'failed', 'not_found'],
      ['typo-1', 'failed', 'not_found'],
    ]);
    const events = await readAll<{ total: number; tasks: number; invalid: number }>(
      STREAMS.runs.name,
      'sluice.runs.plan-ids.planned',
    );
    expect(events[0]?.data).toMatchObject({ total: 3, tasks: 1, invalid: 2 });
  });

  it("lowers the hosts' limits for a run that asks for less, and restores them for the next", async () => {
    const planner = await plannerWith(createMemoryRegistry(rows.slice(0, 2)));
    await planner.handleRequest(fakeMsg({ runId: 'plan-low', target: 'latest', maxPerHost: 1 }));
    let consumers = await listHostConsumers(bus.jsm);
    expect(consumers.map((c) => c.maxAckPending)).toEqual([1, 1]);
    await planner.handleRequest(fakeMsg({ runId: 'plan-normal', target: 'latest' }));
    consumers = await listHostConsumers(bus.jsm);
    expect(Object.fromEntries(consumers.map((c) => [c.hostKey, c.maxAckPending]))).toEqual({
      'db1.internal:5432': 4,
      'db2.internal:6432': 2,
    });
  });

  it('ignores a repeated runId and rejects the same runId asking for something else', async () => {
    const planner = await plannerWith(createMemoryRegistry(rows.slice(0, 1)));
    await planner.handleRequest(fakeMsg({ runId: 'plan-2', target: 'latest' }));
    await planner.handleRequest(fakeMsg({ runId: 'plan-2', target: 'latest' }));
    await planner.handleRequest(fakeMsg({ runId: 'plan-2', target: 'latest', dryRun: true }));
    const accepted = await readAll(STREAMS.runs.name, 'sluice.runs.plan-2.accepted');
    expect(accepted).toHaveLength(1);
    const rejected = await readAll<{ runId?: string; reasons: string[] }>(STREAMS.runs.name, REJECTED_SUBJECT);
    expect(rejected.find((r) => r.data.runId === 'plan-2')?.data.reasons[0]).toMatch(/different request/);
  });

  it('answers bad input with a rejection and acks it', async () => {
    const planner = await plannerWith(createMemoryRegistry([]));
    const notJson = fakeMsg('{"runId": ');
    await planner.handleRequest(notJson);
    expect(notJson.acked).toBe(true);
    const rejected = await readAll<{ reasons: string[] }>(STREAMS.runs.name, REJECTED_SUBJECT);
    expect(rejected.some((r) => /not JSON/.test(r.data.reasons[0] ?? ''))).toBe(true);
  });

  it('publishes the tasks it holds while the registry waits for its next page, and batches the rest', async () => {
    const tasksOf = async () =>
      (await readAll<TenantTask>(STREAMS.tasks.name, 'sluice.tasks.>')).filter((t) => t.data.runId === 'plan-4');
    let nextPage!: () => void;
    const pageAsked = new Promise<void>((resolve) => (nextPage = resolve));
    const slow: TenantRegistry = {
      async *list() {
        for (let i = 0; i < 3; i++) yield { tenantId: `p1-${i}`, databaseUrl: `postgres://app@db1.internal/p1-${i}` };
        await pageAsked; // between pages: the three rows must not wait for it
        for (let i = 0; i < 70; i++) yield { tenantId: `p2-${i}`, databaseUrl: `postgres://app@db1.internal/p2-${i}` };
      },
      close: () => Promise.resolve(),
    };
    const planner = await plannerWith(slow);
    const handling = planner.handleRequest(fakeMsg({ runId: 'plan-4', target: 'latest' }));
    await expect.poll(async () => (await tasksOf()).length).toBe(3);
    nextPage();
    await handling;
    expect((await tasksOf()).length).toBe(73);
  });

  it('fails the run with the reason when the registry stays unreadable', async () => {
    let calls = 0;
    const broken: TenantRegistry = {
      // eslint-disable-next-line require-yield
      async *list() {
        calls += 1;
        await Promise.resolve();
        throw new Error('registry down');
      },
      close: () => Promise.resolve(),
    };
    const planner = await plannerWith(broken, 1_200);
    await planner.handleRequest(fakeMsg({ runId: 'plan-3', target: 'latest' }));
    expect(calls).toBeGreaterThan(1);
    const planned = await readAll<{ error?: string; total: number }>(STREAMS.runs.name, 'sluice.runs.plan-3.planned');
    expect(planned[0]?.data.error).toMatch(/registry down/);
  });
});
