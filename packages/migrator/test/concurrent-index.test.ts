import { fileURLToPath } from 'node:url';

import { MigrationSqlError } from '@sluice/core';
import type pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';

import { loadMigrationDir } from '../src/migration-files.js';
import {
  appliedVersions,
  journalRows,
  migrationSet,
  migrator,
  rejection,
  relationExists,
  testDatabases,
} from './support/postgres.js';

const REPO_MIGRATIONS = fileURLToPath(new URL('../../../migrations', import.meta.url));

const dbs = testDatabases('cic');
afterAll(() => dbs.dropAll());

async function indexState(
  client: pg.Client,
  name: string,
): Promise<{ indisvalid: boolean; indisready: boolean } | undefined> {
  const result = await client.query<{ indisvalid: boolean; indisready: boolean }>(
    'SELECT i.indisvalid, i.indisready FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = $1',
    [name],
  );
  return result.rows[0];
}

const ORDERS = {
  '0001_orders.sql':
    "CREATE TABLE orders (id int PRIMARY KEY, ref text NOT NULL, status text NOT NULL);\nINSERT INTO orders SELECT g, 'ref-' || g, CASE WHEN g % 3 = 0 THEN 'paid' ELSE 'open' END FROM generate_series(1, 20000) g;",
};

describe('CREATE INDEX CONCURRENTLY through the no-transaction path', () => {
  it('builds valid indexes, one statement at a time, and journals the version as applied', async () => {
    const client = await (await dbs.create()).connect();
    const set = migrationSet({
      ...ORDERS,
      '0002_indexes.sql': [
        '-- sluice:no-transaction',
        '-- Two concurrent builds; each must be its own statement outside any transaction.',
        'CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);',
        'CREATE UNIQUE INDEX CONCURRENTLY orders_ref_key ON orders (ref);',
      ].join('\n'),
    });

    const report = await migrator(client, set).migrate({ targetVersion: 2, runId: 'run-1', executorId: 'exec-a' });

    expect(report).toMatchObject({ status: 'migrated', applied: [1, 2], fromVersion: null, toVersion: 2 });
    expect(await indexState(client, 'orders_status_idx')).toEqual({ indisvalid: true, indisready: true });
    expect(await indexState(client, 'orders_ref_key')).toEqual({ indisvalid: true, indisready: true });
    const row = (await journalRows(client)).find((r) => r.version === 2);
    expect(row).toMatchObject({
      status: 'applied',
      run_id: 'run-1',
      executor_id: 'exec-a',
      checksum: set.migrations[1]!.checksum,
    });
    expect(row?.duration_ms).toBeGreaterThanOrEqual(0);
  });

  it('splits on top-level semicolons only (dollar-quoted bodies and strings stay whole)', async () => {
    const client = await (await dbs.create()).connect();
    const set = migrationSet({
      ...ORDERS,
      '0002_mixed.sql': [
        '-- sluice:no-transaction',
        "CREATE FUNCTION order_label(o orders) RETURNS text LANGUAGE sql AS $$ SELECT o.ref || ';' || o.status; $$;",
        "DO $body$ BEGIN PERFORM 1; RAISE NOTICE 'a;b'; END $body$;",
        "CREATE INDEX CONCURRENTLY orders_label_idx ON orders ((ref || ';'));",
      ].join('\n'),
    });

    expect((await migrator(client, set).migrate({ targetVersion: 2 })).applied).toEqual([1, 2]);
    expect((await client.query('SELECT order_label(o) AS label FROM orders o WHERE id = 3')).rows).toEqual([
      { label: 'ref-3;paid' },
    ]);
    expect(await indexState(client, 'orders_label_idx')).toEqual({ indisvalid: true, indisready: true });
  });

  it('is refused inside a transactional file (25001), applying nothing', async () => {
    const client = await (await dbs.create()).connect();
    const set = migrationSet({
      ...ORDERS,
      '0002_in_tx.sql': 'CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);',
    });

    const error = await rejection(migrator(client, set).migrate({ targetVersion: 2 }));

    expect(error).toBeInstanceOf(MigrationSqlError);
    expect(error).toMatchObject({ sqlState: '25001', version: 2 });
    expect(await appliedVersions(client)).toEqual([1]);
    expect(await relationExists(client, 'orders_status_idx')).toBe(false);
  });

  it("applies the repo's own migrations, including 0005's concurrent index, then finds the tenant up to date", async () => {
    const client = await (await dbs.create()).connect();
    const set = await loadMigrationDir(REPO_MIGRATIONS);
    expect(set.migrations.some((m) => !m.transactional)).toBe(true);

    const first = await migrator(client, set).migrate({ targetVersion: set.latest });

    expect(first.applied).toEqual(set.migrations.map((m) => m.version));
    expect(await indexState(client, 'invoices_account_status_idx')).toEqual({ indisvalid: true, indisready: true });
    expect((await journalRows(client)).map((r) => [r.version, r.status, r.checksum])).toEqual(
      set.migrations.map((m) => [m.version, 'applied', m.checksum]),
    );
    expect((await migrator(client, set).migrate({ targetVersion: set.latest })).status).toBe('upToDate');
  });
});
