import { startTcpMeter, type TcpMeter } from '@sluice/testkit';
import { type MongoServer, startMongoServer } from '@sluice/testkit/mongodb-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createMongoRegistry } from '../src/mongodb.js';
import { type RegistryRow, RegistryUnavailableError, type TenantRegistry } from '../src/registry.js';

const ROWS = 2_000;
const rows = Array.from({ length: ROWS }, (_, i) => ({
  tenantId: `t-${String(i).padStart(4, '0')}`,
  databaseUrl: `postgres://app@db.example/t${i}`,
  tags: { tier: i % 100 === 0 ? 'gold' : 'free' },
  // Fields the planner does not read, which need not travel.
  billing: { plan: 'x'.repeat(200) },
}));

let mongo: MongoServer;
let collection: string;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  mongo = await startMongoServer();
  collection = await mongo.seed(rows);
});
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await mongo?.stop();
});

async function metered(): Promise<{ registry: TenantRegistry; meter: TcpMeter }> {
  const meter = await startTcpMeter(mongo);
  const registry = createMongoRegistry({
    uri: mongo.uri(mongo.database, 'serverSelectionTimeoutMS=1000', meter.port),
    collection,
    pageSize: 100,
  });
  cleanups.push(meter.close, () => registry.close());
  return { registry, meter };
}

async function collect(
  registry: TenantRegistry,
  selector?: Parameters<TenantRegistry['list']>[0],
): Promise<RegistryRow[]> {
  const out: RegistryRow[] = [];
  for await (const row of registry.list(selector)) out.push(row);
  return out;
}

describe('mongodb adapter', () => {
  it('sends only the fields the planner reads, without _id', async () => {
    const { registry } = await metered();
    const got = await collect(registry, { ids: ['t-0001'] });
    expect(got).toEqual([{ tenantId: 't-0001', databaseUrl: 'postgres://app@db.example/t1', tags: { tier: 'free' } }]);
  });

  it('filters in the store: a selective query reads a fraction of what a full read does', async () => {
    const { registry, meter } = await metered();
    await collect(registry);
    const full = meter.served();
    const gold = await collect(registry, { tags: { tier: 'gold' } });
    expect(gold).toHaveLength(ROWS / 100);
    expect(meter.served() - full).toBeLessThan(full / 10);
  });

  it('keeps a $-prefixed tag key out of the query', async () => {
    const { registry } = await metered();
    expect(await collect(registry, { tags: { $where: 'true' } })).toEqual([]);
  });

  it('turns a connection lost in the middle of a read into RegistryUnavailableError', async () => {
    const { registry, meter } = await metered();
    let seen = 0;
    const error = await (async () => {
      for await (const _ of registry.list()) if (++seen === 150) await meter.close();
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryUnavailableError);
    expect((error as Error).message).toMatch(/tenants collection .* \(MONGODB_URI\)/);
    expect(seen).toBeLessThan(ROWS);
  });
});
