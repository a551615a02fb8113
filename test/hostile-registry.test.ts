import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { REQUEST_SUBJECT } from '@sluice/contracts';
import {
  fleetServiceEnv,
  type NatsServerHandle,
  startNatsServer,
  type TenantFleet,
  waitForCompleted,
} from '@sluice/testkit';
import { type DynamoServer, startDynamoServer } from '@sluice/testkit/dynamodb-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { faultWorkspace, journalProblems, natsClient, outcomesByTenant } from './faults-support.js';

const GOOD = 6;
const RUN = 'fx-hostile-1';
const MISSING_DB = 'postgres://postgres@127.0.0.1:5432/sluice_fx_hostile_missing';
/** One registry row per way a row can be hostile; `key` is the outcome key each must get. */
const HOSTILE: Array<{ row: Record<string, unknown>; reason: RegExp }> = [
  { row: { tenantId: 'crlf\r\nNats-Msg-Id: forged', databaseUrl: MISSING_DB }, reason: /printable ASCII/ },
  { row: { tenantId: 'wild.*.>', databaseUrl: MISSING_DB }, reason: /\* or >/ },
  { row: { tenantId: 'L'.repeat(2_000), databaseUrl: MISSING_DB }, reason: /at most 200/ },
  { row: { tenantId: 'bad-host', databaseUrl: 'postgres://postgres@ev>il:5432/x' }, reason: /bad-host has a/ },
  { row: { tenantId: 'bad-scheme', databaseUrl: 'javascript:alert(1)' }, reason: /not postgres/ },
  { row: { tenantId: 'tenant-ünïcode', databaseUrl: MISSING_DB }, reason: /printable ASCII/ },
];

describe('a DynamoDB registry with hostile rows among good tenants', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let dynamo: DynamoServer;
  let ws: Awaited<ReturnType<typeof faultWorkspace>>;
  let fleet: TenantFleet;
  let table: string;
  let wiretap: Subscription;
  const seen: Array<{ subject: string; headers: string[] }> = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    ({ nc } = await natsClient(nats.url));
    // Every message on the server, as its subject and header lines.
    wiretap = nc.subscribe('>', {
      callback: (_, msg) => {
        const headers = msg.headers ? [...msg.headers.keys()].flatMap((k) => msg.headers!.values(k)) : [];
        seen.push({ subject: msg.subject, headers });
      },
    });
    dynamo = await startDynamoServer();
    ws = await faultWorkspace('fx-hostile');
    ({ fleet } = await ws.fleet('sluice_fx_hostile', GOOD));
    table = await dynamo.createTable();
    await dynamo.seed(table, [
      ...fleet.tenants.map(({ tenantId, databaseUrl }) => ({ tenantId, databaseUrl })),
      ...HOSTILE.map((h) => h.row),
    ]);
  });

  afterAll(async () => {
    wiretap?.unsubscribe();
    await nc?.close();
    await ws?.dispose();
    await dynamo?.stop();
    await nats?.dispose();
  });

  it('each bad row is its own invalid_tenant outcome, the good tenants migrate, the counts add up', async () => {
    const env = fleetServiceEnv(
      { natsUrl: nats.url, registryFile: '/nonexistent', migrationsDir: ws.migrationsDir },
      {
        SLUICE_REGISTRY: 'dynamodb',
        SLUICE_TENANTS_TABLE: table,
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'local',
        AWS_SECRET_ACCESS_KEY: 'local',
        AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
        SLUICE_DISCOVERY_INTERVAL: '200ms',
      },
    );
    await ws.start('reporter', env);
    await ws.start('executor', env);
    const planner = await ws.start('planner', env);
    await jetstream(nc).publish(REQUEST_SUBJECT, JSON.stringify({ runId: RUN, target: 'latest' }));
    const completed = await waitForCompleted(nc, RUN, 60_000);

    const total = GOOD + HOSTILE.length;
    expect(completed).toMatchObject({
      status: 'partial',
      counts: { total, migrated: GOOD, failed: HOSTILE.length, skipped: 0, upToDate: 0, pending: 0 },
    });
    expect(planner.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('planning failed'))).toEqual([]);

    // One outcome per row: the good tenants migrated, each hostile row failed with its own reason.
    const outcomes = await outcomesByTenant(nc, RUN);
    expect(outcomes.size).toBe(total);
    for (const t of fleet.tenants) expect(outcomes.get(t.tenantId)?.[0]?.status).toBe('migrated');
    const invalid = [...outcomes.values()].flat().filter((o) => o.status === 'failed');
    expect(invalid.every((o) => o.error?.code === 'invalid_tenant')).toBe(true);
    for (const h of HOSTILE) {
      expect(
        invalid.filter((o) => h.reason.test(o.error?.message ?? '')).length,
        `${String(h.row.tenantId).slice(0, 40)}: ${invalid.map((o) => o.error?.message).join(' | ')}`,
      ).toBeGreaterThanOrEqual(1);
    }
    // Keys: a usable id keeps it (`bad-host#n`), an unusable one is only its row (`#n`).
    const keys = invalid.map((o) => o.tenantId).sort();
    expect(keys.filter((k) => k.startsWith('#'))).toHaveLength(4);
    expect(keys.filter((k) => /^bad-(host|scheme)#\d+$/.test(k))).toHaveLength(2);
    expect(await journalProblems(fleet, RUN)).toEqual([]);

    // Nothing hostile reached a subject or a header.
    const hostile = /[\r\n]|[^\x20-\x7e]|javascript|forged|LLLLLLLLLL|ev>il|wild\./;
    const leaks = seen.filter((m) => hostile.test(m.subject) || m.headers.some((h) => hostile.test(h)));
    expect(leaks).toEqual([]);
    expect(seen.some((m) => m.subject.startsWith('sluice.outcomes.'))).toBe(true);
  });
});
