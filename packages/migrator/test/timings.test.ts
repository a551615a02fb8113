import { afterAll, describe, expect, it } from 'vitest';

import { migrationSet, migrator, testDatabases } from './support/postgres.js';

const dbs = testDatabases('timings');
afterAll(() => dbs.dropAll());

describe('migration timings', () => {
  it('splits execution into what the database spent (from the journal rows) and the rest', async () => {
    const tenant = await dbs.create();
    const client = await tenant.connectTenant({});
    const set = migrationSet({
      '0001_slow.sql': 'CREATE TABLE slow (id int);\nSELECT pg_sleep(0.2);',
      '0002_index.sql': '-- sluice:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS slow_id ON slow (id);',
    });
    const report = await migrator(client, set).migrate({ targetVersion: 2 });
    expect(report.applied).toEqual([1, 2]);
    const { executeMs, serverMs, journalMs } = report.timings;
    expect(serverMs).toBeGreaterThanOrEqual(195);
    expect(serverMs).toBeLessThanOrEqual(executeMs + 1);
    expect(journalMs).toBeGreaterThan(0);
    const again = await migrator(client, set).migrate({ targetVersion: 2 });
    expect(again.status).toBe('upToDate');
    expect(again.timings).toMatchObject({ executeMs: 0, serverMs: 0 });
    await client.end();
  });
});

describe('round trips per tenant', () => {
  it('migrates a new database in one round trip per file plus four (read, lock, create+read, unlock), and checks an up-to-date one in one', async () => {
    const tenant = await dbs.create();
    const client = await tenant.connectTenant({});
    // Counts the round trips the migrator makes (each query() call is one simple-protocol round trip).
    let roundTrips = 0;
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      roundTrips += 1;
      return query(...args);
    };
    const set = migrationSet({
      '0001_a.sql': 'CREATE TABLE a (id int);',
      '0002_b.sql': 'CREATE TABLE b (id int);',
      '0003_c.sql': 'CREATE TABLE c (id int);',
    });
    expect((await migrator(client, set).migrate({ targetVersion: 3 })).applied).toEqual([1, 2, 3]);
    expect(roundTrips).toBe(3 + 4);
    roundTrips = 0;
    expect((await migrator(client, set).migrate({ targetVersion: 3 })).status).toBe('upToDate');
    expect(roundTrips).toBe(1);
    await client.end();
  });
});
