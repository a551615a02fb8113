import { DirtyError, MigrationSqlError, TargetError } from '@sluice/core';
import { afterAll, describe, expect, it } from 'vitest';

import {
  advisoryLocks,
  appliedVersions,
  journalRows,
  migrationSet,
  migrator,
  rejection,
  relationExists,
  testDatabases,
} from './support/postgres.js';

const dbs = testDatabases('failures');
afterAll(() => dbs.dropAll());

describe('a failing transactional migration', () => {
  const set = migrationSet({
    '0001_first.sql': 'CREATE TABLE first (id int);',
    '0002_fails.sql': 'CREATE TABLE second (id int);\nINSERT INTO second VALUES (1);\nSELECT 1/0;',
    '0003_third.sql': 'CREATE TABLE third (id int);',
  });

  it('leaves the tenant at the previous version with a permanent MigrationSqlError carrying SQLSTATE and version', async () => {
    const client = await (await dbs.create()).connect();

    const error = await rejection(migrator(client, set).migrate({ targetVersion: 3 }));

    expect(error).toBeInstanceOf(MigrationSqlError);
    expect(error).toMatchObject({ sqlState: '22012', version: 2, transient: false, code: 'sql_error' });
    expect((error as MigrationSqlError).toOutcomeError()).toMatchObject({
      code: 'sql_error',
      sqlState: '22012',
      version: 2,
      transient: false,
    });
    expect(await appliedVersions(client)).toEqual([1]);
    expect(await relationExists(client, 'first')).toBe(true);
    expect(await relationExists(client, 'second')).toBe(false);
    expect(await relationExists(client, 'third')).toBe(false);
    // The session is usable again: not left inside the aborted transaction, lock released.
    expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    expect(await advisoryLocks(client)).toBe(0);
    // Permanent: the next run fails the same way, and still applies nothing after version 1.
    expect(await rejection(migrator(client, set).migrate({ targetVersion: 3 }))).toMatchObject({
      version: 2,
      sqlState: '22012',
    });
    expect(await appliedVersions(client)).toEqual([1]);
  });

  it('reports a statement timeout from `-- sluice:statement-timeout` as a permanent SQL error', async () => {
    const client = await (await dbs.create()).connect();
    const slow = migrationSet({
      '0001_slow.sql': '-- sluice:statement-timeout 200ms\nCREATE TABLE slow (id int);\nSELECT pg_sleep(5);',
    });

    const started = performance.now();
    const error = await rejection(migrator(client, slow).migrate({ targetVersion: 1 }));

    expect(performance.now() - started).toBeLessThan(3_000);
    expect(error).toBeInstanceOf(MigrationSqlError);
    expect(error).toMatchObject({ sqlState: '57014', version: 1 });
    expect(await relationExists(client, 'slow')).toBe(false);
    expect(await appliedVersions(client)).toEqual([]);
  });
});

describe('a failing no-transaction migration', () => {
  // Statement 2 divides by the number of rows in `gate`: it fails until a person adds one.
  const set = migrationSet({
    '0001_gate.sql': 'CREATE TABLE gate (ok int);',
    '0002_index.sql': [
      '-- sluice:no-transaction',
      'CREATE TABLE IF NOT EXISTS items (id int);',
      'SELECT 1 / (SELECT count(*) FROM gate)::int;',
      'CREATE INDEX CONCURRENTLY IF NOT EXISTS items_id_idx ON items (id);',
    ].join('\n'),
    '0003_after.sql': 'CREATE TABLE after_index (id int);',
  });

  async function failMidway() {
    const client = await (await dbs.create()).connect();
    const error = await rejection(migrator(client, set).migrate({ targetVersion: 3 }));
    return { client, error };
  }

  it('marks the tenant dirty with the version, and later runs refuse it with DirtyError', async () => {
    const { client, error } = await failMidway();

    expect(error).toBeInstanceOf(MigrationSqlError);
    expect(error).toMatchObject({ version: 2, sqlState: '22012', transient: false });
    expect((error as Error).message).toMatch(/statement 2 of 3.*dirty/);
    expect((await journalRows(client)).map((r) => [r.version, r.status])).toEqual([
      [1, 'applied'],
      [2, 'dirty'],
    ]);
    expect(await relationExists(client, 'items')).toBe(true);
    expect(await relationExists(client, 'after_index')).toBe(false);
    expect(await advisoryLocks(client)).toBe(0);

    for (const options of [{ targetVersion: 3 }, { targetVersion: 3, dryRun: true }]) {
      const refused = await rejection(migrator(client, set).migrate(options));
      expect(refused).toBeInstanceOf(DirtyError);
      expect(refused).toMatchObject({ version: 2, transient: false, code: 'dirty' });
      expect((refused as Error).message).toMatch(/repair/);
    }
    expect(await relationExists(client, 'after_index')).toBe(false);
  });

  it("repair(version, 'retry') clears the mark and the next run applies the file again", async () => {
    const { client } = await failMidway();
    await client.query('INSERT INTO gate VALUES (1)');

    await migrator(client, set).repair(2, 'retry');
    expect(await journalRows(client)).toEqual([expect.objectContaining({ version: 1 })]);
    expect(await advisoryLocks(client)).toBe(0);

    const report = await migrator(client, set).migrate({ targetVersion: 3 });
    expect(report.applied).toEqual([2, 3]);
    expect((await journalRows(client)).map((r) => [r.version, r.status])).toEqual([
      [1, 'applied'],
      [2, 'applied'],
      [3, 'applied'],
    ]);
    const index = await client.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'items_id_idx'::regclass");
    expect(index.rows).toEqual([{ indisvalid: true }]);
  });

  it("repair(version, 'applied') records work finished by hand; the file is not run again", async () => {
    const { client } = await failMidway();
    // The person finishes the file by hand (statement 2 is only a check).
    await client.query('CREATE INDEX CONCURRENTLY items_id_idx ON items (id)');

    await migrator(client, set).repair(2, 'applied');
    const row = (await journalRows(client)).find((r) => r.version === 2);
    expect(row).toMatchObject({ status: 'applied', checksum: set.migrations[1]!.checksum });

    // Had version 2 run again, its statement 2 would still divide by zero.
    const report = await migrator(client, set).migrate({ targetVersion: 3 });
    expect(report.applied).toEqual([3]);
    expect(await appliedVersions(client)).toEqual([1, 2, 3]);
  });

  it('refuses to repair a version that is not dirty, naming the one that is', async () => {
    const { client } = await failMidway();
    const wrong = await rejection(migrator(client, set).repair(1, 'retry'));
    expect(wrong).toBeInstanceOf(TargetError);
    expect((wrong as Error).message).toMatch(/version 1 is not dirty \(version 2 is\)/);

    const clean = await (await dbs.create()).connect();
    await migrator(clean, set).migrate({ targetVersion: 1 });
    const none = await rejection(migrator(clean, set).repair(1, 'applied'));
    expect((none as Error).message).toMatch(/no version is dirty/);
    expect(await advisoryLocks(clean)).toBe(0);
  });
});
