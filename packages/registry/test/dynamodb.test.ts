import { NumberValue } from '@aws-sdk/lib-dynamodb';
import { startTcpMeter } from '@sluice/testkit';
import { type DynamoServer, localClientConfig, startDynamoServer } from '@sluice/testkit/dynamodb-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createDynamoRegistry, type DynamoRegistrySettings } from '../src/dynamodb.js';
import { type RegistryRow, RegistryUnavailableError, type TenantRegistry } from '../src/registry.js';
import { type FrontAction, startThrottlingFront, type ThrottlingFront } from './support/throttling-front.js';

const ROWS = 1_000;
const rows = Array.from({ length: ROWS }, (_, i) => ({
  tenantId: `t-${String(i).padStart(4, '0')}`,
  databaseUrl: `postgres://app@db.example/t${i}`,
  tags: { tier: i % 2 ? 'free' : 'gold' },
}));

let dynamo: DynamoServer;
let table: string;
const fronts: ThrottlingFront[] = [];
const registries: TenantRegistry[] = [];

beforeAll(async () => {
  dynamo = await startDynamoServer();
  table = await dynamo.createTable();
  await dynamo.seed(table, rows);
});

afterAll(async () => {
  for (const r of registries) await r.close();
  for (const f of fronts) await f.close();
  await dynamo?.stop();
});

async function collect(
  registry: TenantRegistry,
  selector?: Parameters<TenantRegistry['list']>[0],
): Promise<RegistryRow[]> {
  const out: RegistryRow[] = [];
  for await (const row of registry.list(selector)) out.push(row);
  return out;
}

/** A registry behind a throttling front, with the SDK's own retries off so every throttle reaches our loop. */
async function throttledRegistry(
  decide: (operation: string, nth: number) => FrontAction,
  settings: Partial<DynamoRegistrySettings> = {},
) {
  const front = await startThrottlingFront(dynamo.endpoint, decide);
  fronts.push(front);
  const waits: number[] = [];
  const registry = createDynamoRegistry(
    { table, segments: 2, pageSize: 50, throttleAttempts: 8, ...settings },
    {
      client: { ...localClientConfig(front.endpoint), maxAttempts: 1 },
      backoff: (attempt) => (waits.push(attempt), 1),
    },
  );
  registries.push(registry);
  return { front, registry, waits };
}

describe('dynamodb adapter under throttling (a real HTTP front answering as DynamoDB does)', () => {
  it('retries throttled Scan pages with growing backoff and still reads every row once', async () => {
    const kinds = ['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded'] as const;
    // Two of every three Scan requests are throttled. The count is shared by the parallel
    // segments, so one segment can be unlucky many times in a row: allow it enough tries.
    const { front, registry, waits } = await throttledRegistry(
      (op, nth) => (op === 'Scan' && nth % 3 !== 0 ? { throttle: kinds[nth % kinds.length]! } : 'pass'),
      { throttleAttempts: 40 },
    );
    const got = await collect(registry);
    expect(got.map((r) => r.tenantId).sort()).toEqual(rows.map((r) => r.tenantId));
    expect(front.throttled()).toBeGreaterThan(20);
    expect(waits).toContain(2);
  });

  it('asks again for unprocessed BatchGetItem keys until every id is answered', async () => {
    const { front, registry, waits } = await throttledRegistry(() => 'unprocess-half');
    const ids = rows.filter((_, i) => i % 4 === 0).map((r) => r.tenantId);
    const got = await collect(registry, { ids });
    expect(got.map((r) => r.tenantId).sort()).toEqual(ids);
    // 250 ids: 3 chunks of at most 100, each answered half at a time.
    expect(front.seen.get('BatchGetItem')).toBeGreaterThan(10);
    expect(waits.length).toBeGreaterThan(5);
  });

  it('gives up with RegistryUnavailableError once throttling outlasts its retries', async () => {
    const { front, registry } = await throttledRegistry(
      (op) => (op === 'Scan' ? { throttle: 'ProvisionedThroughputExceededException' } : 'pass'),
      { segments: 1, throttleAttempts: 3 },
    );
    const error = await collect(registry).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryUnavailableError);
    expect((error as Error).message).toMatch(/tenants table .* throttled 3 times/);
    expect(front.seen.get('Scan')).toBe(3);
  });

  it('gives up when BatchGetItem keys stay unprocessed request after request', async () => {
    const { front, registry } = await throttledRegistry(() => 'unprocess-all', { throttleAttempts: 4 });
    await expect(collect(registry, { ids: ['t-0001', 't-0002'] })).rejects.toThrow(
      /2 keys still unprocessed after 4 requests/,
    );
    expect(front.seen.get('BatchGetItem')).toBe(4);
  });
});

describe('dynamodb adapter: odd rows, missing tables, lost endpoints', () => {
  it('yields a row holding a number beyond double precision instead of failing the read', async () => {
    const odd = await dynamo.createTable();
    await dynamo.seed(odd, [
      {
        tenantId: 'huge',
        databaseUrl: 'postgres://app@db.example/huge',
        tags: { n: NumberValue.from('123456789012345678901234567890') },
      },
      { tenantId: 'set', databaseUrl: new Set(['postgres://a@b/c']) },
      { tenantId: 'fine', databaseUrl: 'postgres://app@db.example/fine' },
    ]);
    const registry = createDynamoRegistry(
      { table: odd, segments: 1, pageSize: 10, throttleAttempts: 2 },
      { client: localClientConfig(dynamo.endpoint) },
    );
    registries.push(registry);
    const got = await collect(registry);
    expect(got.map((r) => r.tenantId).sort()).toEqual(['fine', 'huge', 'set']);
  });

  it('reads a missing table as unavailable, naming the setting', async () => {
    const registry = createDynamoRegistry(
      { table: 'no_such_table', segments: 1, pageSize: 10, throttleAttempts: 2 },
      { client: localClientConfig(dynamo.endpoint) },
    );
    registries.push(registry);
    await expect(collect(registry)).rejects.toThrow(/SLUICE_TENANTS_TABLE.*(not found|non-existent)/i);
  });

  it('turns an endpoint lost in the middle of a parallel scan into RegistryUnavailableError', async () => {
    const meter = await startTcpMeter({ host: '127.0.0.1', port: dynamo.port });
    const registry = createDynamoRegistry(
      { table, segments: 3, pageSize: 50, throttleAttempts: 2 },
      { client: { ...localClientConfig(`http://127.0.0.1:${meter.port}`), maxAttempts: 2 } },
    );
    registries.push(registry);
    let seen = 0;
    const error = await (async () => {
      for await (const _ of registry.list()) if (++seen === 120) await meter.close();
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryUnavailableError);
    expect((error as Error).message).toMatch(/SLUICE_TENANTS_TABLE.*ECONNREFUSED/);
    expect(seen).toBeLessThan(ROWS);
  });
});
