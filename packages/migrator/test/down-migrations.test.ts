import { DirtyError, DriftError, IrreversibleError, MigrationSqlError } from '@sluice/core';
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

const dbs = testDatabases('down');
afterAll(() => dbs.dropAll());

const files = {
  '0001_one.sql': 'CREATE TABLE one (id int);',
  '0002_two.sql': 'CREATE TABLE two (id int);',
  '0002_two.down.sql': 'DROP TABLE two;',
  '0003_index.sql': '-- sluice:no-transaction\nCREATE INDEX CONCURRENTLY two_id ON two (id);',
  '0003_index.down.sql': '-- sluice:no-transaction\nDROP INDEX CONCURRENTLY two_id;',
  '0004_four.sql': 'CREATE TABLE four (id int);',
  '0004_four.down.sql': '-- sluice:lock-timeout 2s\nDROP TABLE four;',
  '0005_five.sql': 'CREATE TABLE five (id int);',
  '0005_five.down.sql': 'DROP TABLE five;',
};
const set = migrationSet(files);

describe('down files', () => {
  it('records the down file checksum beside each version it applies', async () => {
    const client = await (await dbs.create()).connect();
    await migrator(client, set).migrate({ targetVersion: 5, runId: 'r1' });
    const rows = await client.query<{ version: string; down_checksum: string | null }>(
      'SELECT version, down_checksum FROM sluice_migrations ORDER BY version',
    );
    expect(rows.rows.map((r) => r.down_checksum)).toEqual(set.migrations.map((m) => m.down?.checksum ?? null));
  });

  it('takes a tenant down to a lower target, newest first, each down file with its journal row', async () => {
    const client = await (await dbs.create()).connect();
    await migrator(client, set).migrate({ targetVersion: 5, runId: 'r1' });

    const report = await migrator(client, set).migrate({ targetVersion: 1, runId: 'down-1' });

    expect(report).toMatchObject({
      status: 'rolledBack',
      applied: [],
      rolledBack: [5, 4, 3, 2],
      fromVersion: 5,
      toVersion: 1,
    });
    expect(await appliedVersions(client)).toEqual([1]);
    for (const name of ['two', 'four', 'five']) expect(await relationExists(client, name)).toBe(false);
    expect(await relationExists(client, 'one')).toBe(true);
    expect(await advisoryLocks(client)).toBe(0);
    // And up again: the versions are applied anew.
    expect(await migrator(client, set).migrate({ targetVersion: 5, runId: 'r2' })).toMatchObject({
      status: 'migrated',
      applied: [2, 3, 4, 5],
    });
  });

  it('a dry run lists what would be undone and undoes nothing', async () => {
    const client = await (await dbs.create()).connect();
    await migrator(client, set).migrate({ targetVersion: 5 });
    expect(await migrator(client, set).migrate({ targetVersion: 3, dryRun: true })).toMatchObject({
      status: 'pending',
      applied: [],
      rolledBack: [5, 4],
      fromVersion: 5,
      toVersion: 3,
    });
    expect(await appliedVersions(client)).toEqual([1, 2, 3, 4, 5]);
  });

  it('refuses a way back through a version with no down file, touching nothing', async () => {
    const client = await (await dbs.create()).connect();
    await migrator(client, set).migrate({ targetVersion: 5 });
    const error = await rejection(migrator(client, set).migrate({ targetVersion: 0 }));
    expect(error).toBeInstanceOf(IrreversibleError);
    expect((error as Error).message).toMatch(/version 1 \(0001_one.sql\) has no down file; nothing was undone/);
    expect(await appliedVersions(client)).toEqual([1, 2, 3, 4, 5]);
    expect(await advisoryLocks(client)).toBe(0);
  });

  it('refuses a down file changed since its up file ran, unless allowed', async () => {
    const client = await (await dbs.create()).connect();
    await migrator(client, set).migrate({ targetVersion: 5 });
    const edited = migrationSet({ ...files, '0005_five.down.sql': 'DROP TABLE five CASCADE;' });

    const error = await rejection(migrator(client, edited).migrate({ targetVersion: 4 }));
    expect(error).toBeInstanceOf(DriftError);
    expect((error as DriftError).drift).toEqual([{ kind: 'down_checksum_mismatch', version: 5 }]);
    expect(await appliedVersions(client)).toEqual([1, 2, 3, 4, 5]);

    expect(await migrator(client, edited).migrate({ targetVersion: 4, allowChangedDown: true })).toMatchObject({
      status: 'rolledBack',
      rolledBack: [5],
    });
  });

  it('keeps the versions undone before a failing down file, names it, and leaves the rest', async () => {
    const client = await (await dbs.create()).connect();
    await migrator(client, set).migrate({ targetVersion: 5 });
    const broken = migrationSet({ ...files, '0004_four.down.sql': 'DROP TABLE no_such_table;' });
    await client.query(`UPDATE sluice_migrations SET down_checksum = NULL`);

    const error = await rejection(migrator(client, broken).migrate({ targetVersion: 1 }));
    expect(error).toBeInstanceOf(MigrationSqlError);
    expect((error as Error).message).toMatch(
      /^version 4 \(down file 0004_four.down.sql\): table "no_such_table" does not exist/,
    );
    expect(await appliedVersions(client)).toEqual([1, 2, 3, 4]);
    expect(await advisoryLocks(client)).toBe(0);
  });

  it('a no-transaction down file that fails midway leaves its version dirty', async () => {
    const client = await (await dbs.create()).connect();
    await migrator(client, set).migrate({ targetVersion: 3 });
    const broken = migrationSet({
      ...files,
      '0003_index.down.sql':
        '-- sluice:no-transaction\nDROP INDEX CONCURRENTLY two_id;\nDROP INDEX CONCURRENTLY missing;',
    });
    await client.query(`UPDATE sluice_migrations SET down_checksum = NULL`);

    const error = await rejection(migrator(client, broken).migrate({ targetVersion: 1 }));
    expect((error as Error).message).toMatch(
      /down file 0003_index.down.sql, no-transaction\) failed at statement 2 of 2; the tenant is marked dirty/,
    );
    expect((await journalRows(client)).map((r) => [r.version, r.status])).toEqual([
      [1, 'applied'],
      [2, 'applied'],
      [3, 'dirty'],
    ]);
    expect(await rejection(migrator(client, broken).migrate({ targetVersion: 1 }))).toBeInstanceOf(DirtyError);
  });

  it('rolls back one run: what it found, and nothing for a tenant it did not change', async () => {
    const client = await (await dbs.create()).connect();
    await migrator(client, set).migrate({ targetVersion: 2, runId: 'before' });
    await migrator(client, set).migrate({ targetVersion: 4, runId: 'r' });

    expect(
      await migrator(client, set).migrate({ targetVersion: 0, rollbackOf: 'other', runId: 'undo-0' }),
    ).toMatchObject({
      status: 'upToDate',
      applied: [],
      fromVersion: 4,
      toVersion: 4,
    });
    expect(await migrator(client, set).migrate({ targetVersion: 0, rollbackOf: 'r', runId: 'undo-1' })).toMatchObject({
      status: 'rolledBack',
      rolledBack: [4, 3],
      fromVersion: 4,
      toVersion: 2,
    });
    expect(await appliedVersions(client)).toEqual([1, 2]);
  });

  it('leaves a tenant a later run changed, unless forced', async () => {
    const client = await (await dbs.create()).connect();
    await migrator(client, set).migrate({ targetVersion: 2, runId: 'before' });
    await migrator(client, set).migrate({ targetVersion: 4, runId: 'r' });
    await migrator(client, set).migrate({ targetVersion: 5, runId: 'later' });

    const error = await rejection(migrator(client, set).migrate({ targetVersion: 0, rollbackOf: 'r' }));
    expect(error).toMatchObject({ code: 'changed_by_later_run', transient: false });
    expect((error as Error).message).toMatch(/version 5 by later/);
    expect(await appliedVersions(client)).toEqual([1, 2, 3, 4, 5]);

    expect(await migrator(client, set).migrate({ targetVersion: 0, rollbackOf: 'r', force: true })).toMatchObject({
      status: 'rolledBack',
      rolledBack: [5, 4, 3],
      toVersion: 2,
    });
  });

  it('goes back in a journal from before down files (no down_checksum column), upgrading it on the way', async () => {
    const client = await (await dbs.create()).connect();
    await migrator(client, set).migrate({ targetVersion: 2, runId: 'old' });
    await client.query('ALTER TABLE sluice_migrations DROP COLUMN down_checksum');

    expect(await migrator(client, set).migrate({ targetVersion: 1 })).toMatchObject({
      status: 'rolledBack',
      rolledBack: [2],
      toVersion: 1,
    });
    expect(await appliedVersions(client)).toEqual([1]);
    expect(await relationExists(client, 'two')).toBe(false);
    const column = await client.query(
      "SELECT 1 FROM information_schema.columns WHERE table_name = 'sluice_migrations' AND column_name = 'down_checksum'",
    );
    expect(column.rowCount).toBe(1);
  });
});
