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
