import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { REQUEST_SUBJECT, type RunCompletedEvent } from '@sluice/contracts';
import {
  createTenantFleet,
  MIGRATIONS_DIR,
  type NatsServerHandle,
  type ServiceProcess,
  startNatsServer,
  startService,
  type TenantFleet,
  waitForCompleted,
} from '@sluice/testkit';
import { startTcpMeter, type TcpMeter } from '@sluice/testkit';
// The registry package's own test servers: dynalite and a Mongo wire server (or mongod at MONGODB_URI).
import { type DynamoServer, startDynamoServer } from '@sluice/testkit/dynamodb-server';
import { type MongoServer, startMongoServer } from '@sluice/testkit/mongodb-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const TENANTS = 12;
const VERSIONS = [1, 2, 3, 4, 5, 6];
const PASSWORD = 'registry-password-never-published';

/**
 * A registry server the planner process reads, through a relay that can be cut and restored to
 * make the store unreachable and back (a mongod at MONGODB_URI cannot be stopped by a test).
 */
interface RegistryUnderTest {
  kind: 'mongodb' | 'dynamodb';
  /** Bad rows this store can hold, with the reason the planner must give. */
  badRows: Array<{ row: Record<string, unknown>; reason: RegExp }>;
  /** DynamoDB keys on tenantId: a second row with the same id cannot exist there. */
  holdsDuplicates: boolean;
  /** Starts and seeds the store; returns the planner's environment for it. */
  start(rows: Array<Record<string, unknown>>): Promise<Record<string, string>>;
  cut(): Promise<void>;
  restore(): Promise<void>;
  stop(): Promise<void>;
}

function relayed(
  kind: RegistryUnderTest['kind'],
  badRows: RegistryUnderTest['badRows'],
  holdsDuplicates: boolean,
  store: (rows: Array<Record<string, unknown>>) => Promise<{
    target: { host: string; port: number };
    env: (relayPort: number) => Record<string, string>;
    stop: () => Promise<void>;
  }>,
): RegistryUnderTest {
  let relay: TcpMeter | undefined;
  let target: { host: string; port: number } | undefined;
  let stopStore: (() => Promise<void>) | undefined;
  return {
    kind,
    badRows,
    holdsDuplicates,
    async start(rows) {
      const started = await store(rows);
      target = started.target;
      stopStore = started.stop;
      relay = await startTcpMeter(target);
      return started.env(relay.port);
    },
    cut: async () => relay?.close(),
    async restore() {
      relay = await startTcpMeter(target!, relay!.port);
    },
    async stop() {
      await relay?.close();
      await stopStore?.();
    },
  };
}

const mongoRegistry = () =>
  relayed(
    'mongodb',
    [
      { row: { tenantId: 'bad-url', databaseUrl: 'not a url' }, reason: /bad-url has a malformed databaseUrl/ },
      { row: { databaseUrl: 'postgres://postgres@127.0.0.1:5432/orphan' }, reason: /no tenantId/ },
    ],
    true,
    async (rows) => {
      const server: MongoServer = await startMongoServer();
      await server.seed(rows, 'tenants');
      return {
        target: server,
        // One attempt waits at most a second for the server; SLUICE_REGISTRY_RETRY bounds them all.
        env: (port) => ({
          MONGODB_URI: server.uri(server.database, 'serverSelectionTimeoutMS=1000', port),
          SLUICE_REGISTRY_PAGE_SIZE: '5',
        }),
        stop: () => server.stop(),
      };
    },
  );

const dynamoRegistry = () =>
  relayed(
    'dynamodb',
    [
      { row: { tenantId: 'bad-url', databaseUrl: 'not a url' }, reason: /bad-url has a malformed databaseUrl/ },
      {
        row: { tenantId: 'bad-status', databaseUrl: 'postgres://postgres@127.0.0.1:5432/x', status: 'paused' },
        reason: /unknown status/,
      },
    ],
    false,
    async (rows) => {
      const server: DynamoServer = await startDynamoServer();
      await server.seed(await server.createTable('tenants'), rows);
      return {
        target: { host: '127.0.0.1', port: server.port },
        // Everything but the table through the AWS SDK's standard variables, as in production.
        env: (port) => ({
          AWS_REGION: 'us-east-1',
          AWS_ACCESS_KEY_ID: 'local',
          AWS_SECRET_ACCESS_KEY: 'local',
          AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${port}`,
          SLUICE_DYNAMODB_SEGMENTS: '3',
          SLUICE_REGISTRY_PAGE_SIZE: '4',
        }),
        stop: () => server.stop(),
      };
    },
  );

describe.each([mongoRegistry(), dynamoRegistry()])('$kind registry: a request runs end to end', (registry) => {
  let nats: NatsServerHandle;
  let fleet: TenantFleet;
  let nc: NatsConnection;
  let rows: Array<Record<string, unknown>>;
  const services: ServiceProcess[] = [];
  const runId = (name: string) => `${registry.kind}-${name}`;

  beforeAll(async () => {
    nats = await startNatsServer();
    fleet = await createTenantFleet({ count: TENANTS });
    rows = fleet.tenants.map(({ tenantId, databaseUrl }, i) => ({
      tenantId,
      // A password in the registry: the planner drops it; the local server trusts the connection.
      databaseUrl: i === 2 ? databaseUrl.replace('postgres@', `postgres:${PASSWORD}@`) : databaseUrl,
      tags: { cohort: i % 2 ? 'odd' : 'even' },
      ...(i === TENANTS - 1 ? { status: 'suspended' } : { status: 'active' }),
    }));
    rows.push(...registry.badRows.map((b) => b.row));
    if (registry.holdsDuplicates)
      rows.push({ tenantId: fleet.tenants[0]!.tenantId, databaseUrl: fleet.tenants[1]!.databaseUrl });
    const registryEnv = await registry.start(rows);
    const env = {
      NATS_URL: nats.url,
      SLUICE_MIGRATIONS_DIR: MIGRATIONS_DIR,
      SLUICE_REGISTRY: registry.kind,
      SLUICE_REGISTRY_RETRY: '2s',
      SLUICE_REPORTER_PORT: '0',
      PGUSER: 'postgres',
      ...registryEnv,
    };
    services.push(await startService('reporter', env));
    services.push(await startService('executor', env));
    services.push(await startService('planner', env));
    nc = await connect({ servers: nats.url });
  });

  afterAll(async () => {
    await nc?.close();
    for (const s of services) await s.stop();
    await registry.stop();
    await nats?.dispose();
    await fleet?.drop();
  });

  const publishRequest = (payload: unknown) => jetstream(nc).publish(REQUEST_SUBJECT, JSON.stringify(payload));
  const invalid = () => registry.badRows.length + (registry.holdsDuplicates ? 1 : 0);
  const planner = () => services.find((s) => s.name === 'planner')!;

  let first: RunCompletedEvent;

  it('migrates the valid tenants, skips the suspended one, and fails bad and duplicate rows with reasons', async () => {
    await publishRequest({ runId: runId('first'), target: 'latest' });
    first = await waitForCompleted(nc, runId('first'));
    expect(first).toMatchObject({
      status: 'partial',
      targetVersion: 6,
      counts: { total: rows.length, migrated: TENANTS - 1, upToDate: 0, pending: 0, skipped: 1, failed: invalid() },
    });
    const reasons = first.failures.map((f) => f.error);
    for (const bad of registry.badRows) expect(reasons.some((r) => bad.reason.test(r))).toBe(true);
    if (registry.holdsDuplicates)
      expect(reasons.some((r) => r.includes(`duplicate tenantId ${fleet.tenants[0]!.tenantId}`))).toBe(true);
    expect(first.failures.every((f) => f.code === 'invalid_tenant')).toBe(true);
    expect(JSON.stringify(first)).not.toContain(PASSWORD);
  });

  it('records versions 1..6 once in every valid tenant journal, and nothing in the suspended one', async () => {
    const journals = await fleet.eachTenant(async (client) => {
      const exists = await client.query(
        "SELECT 1 FROM information_schema.tables WHERE table_name = 'sluice_migrations'",
      );
      if (exists.rowCount === 0) return [];
      return (
        await client.query<{ version: string }>('SELECT version::text FROM sluice_migrations ORDER BY version')
      ).rows.map((r) => Number(r.version));
    });
    journals.slice(0, TENANTS - 1).forEach((versions) => expect(versions).toEqual(VERSIONS));
    expect(journals[TENANTS - 1]).toEqual([]);
  });

  it('selects tenants by tags in the store', async () => {
    await publishRequest({ runId: runId('odd'), target: 'latest', tenants: { tags: { cohort: 'odd' } } });
    const odd = await waitForCompleted(nc, runId('odd'));
    // Tenants 2, 4, ..., 12 are odd-indexed; the 12th is the suspended one.
    expect(odd.counts).toEqual({
      total: TENANTS / 2,
      migrated: 0,
      upToDate: TENANTS / 2 - 1,
      pending: 0,
      failed: 0,
      skipped: 1,
    });
    expect(odd.status).toBe('succeeded');
  });

  it('fails a run whose registry is unreachable with the reason, keeps the planner up, and runs the next request', async () => {
    await registry.cut();
    await publishRequest({ runId: runId('down'), target: 'latest' });
    const down = await waitForCompleted(nc, runId('down'));
    expect(down.status).toBe('failed');
    expect(down.error).toMatch(
      registry.kind === 'mongodb'
        ? /tenants collection tenants \(MONGODB_URI\)/
        : /tenants table tenants \(SLUICE_TENANTS_TABLE\)/,
    );
    expect(planner().logs.some((l) => l.level === 'fatal' || l.level === 60)).toBe(false);

    await registry.restore();
    await publishRequest({ runId: runId('back'), target: 'latest' });
    const back = await waitForCompleted(nc, runId('back'));
    expect(back.counts).toEqual({
      total: rows.length,
      migrated: 0,
      upToDate: TENANTS - 1,
      pending: 0,
      failed: invalid(),
      skipped: 1,
    });
    const exited = await Promise.race([
      planner().exited.then(() => true),
      new Promise((resolve) => setTimeout(() => resolve(false), 50)),
    ]);
    expect(exited).toBe(false);
  });
});
