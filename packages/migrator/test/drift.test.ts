import { DriftError } from '@sluice/core';
import type pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';

import {
  advisoryLocks,
  appliedVersions,
  migrationSet,
  migrator,
  rejection,
  relationExists,
  testDatabases,
} from './support/postgres.js';

const dbs = testDatabases('drift');
afterAll(() => dbs.dropAll());

const FILES = {
  '0001_accounts.sql': 'CREATE TABLE accounts (id int);',
  '0002_projects.sql': 'CREATE TABLE projects (id int);',
  '0003_invoices.sql': 'CREATE TABLE invoices (id int);',
};
// A new file: if it ever runs on a drifted tenant, the table appears.
const NEW_FILE = { '0004_new.sql': 'CREATE TABLE must_not_exist (id int);' };

async function tenantAt(files: Record<string, string>, target: number): Promise<pg.Client> {
  const client = await (await dbs.create()).connect();
  await migrator(client, migrationSet(files)).migrate({ targetVersion: target });
  return client;
}

/** Migrates with `files`, expects DriftError with exactly `drift`, and checks nothing was applied. */
async function expectDrift(
  client: pg.Client,
  files: Record<string, string>,
  drift: DriftError['drift'],
): Promise<void> {
  const before = await appliedVersions(client);
  const set = migrationSet(files);
  const error = await rejection(migrator(client, set).migrate({ targetVersion: set.latest }));
  expect(error).toBeInstanceOf(DriftError);
  expect((error as DriftError).drift).toEqual(drift);
  expect(error).toMatchObject({ transient: false, code: 'drift' });
  expect((error as DriftError).toOutcomeError().versions).toEqual(drift.map((d) => d.version));
  // A dry run sees the same drift: the fleet plan reports it rather than listing pending work.
  expect(await rejection(migrator(client, set).migrate({ targetVersion: set.latest, dryRun: true }))).toBeInstanceOf(
    DriftError,
  );
  expect(await appliedVersions(client)).toEqual(before);
  expect(await relationExists(client, 'must_not_exist')).toBe(false);
  expect(await advisoryLocks(client)).toBe(0);
}

describe('drift between the journal and the files', () => {
  it('an edited applied file is a checksum mismatch at its version', async () => {
    const client = await tenantAt(FILES, 3);
    await expectDrift(client, { ...FILES, '0002_projects.sql': 'CREATE TABLE projects (id bigint);', ...NEW_FILE }, [
      { kind: 'checksum_mismatch', version: 2 },
    ]);
  });

  it('a deleted applied file is a missing file at its version', async () => {
    const client = await tenantAt(FILES, 3);
    const { '0002_projects.sql': _deleted, ...rest } = FILES;
    await expectDrift(client, { ...rest, ...NEW_FILE }, [{ kind: 'missing_file', version: 2 }]);
  });

  it('a version added below the applied maximum is out of order', async () => {
    const { '0002_projects.sql': _late, ...early } = FILES;
    const client = await tenantAt(early, 3);
    expect(await appliedVersions(client)).toEqual([1, 3]);
    await expectDrift(client, { ...FILES, ...NEW_FILE }, [{ kind: 'out_of_order', version: 2 }]);
  });

  it('reports every kind at once, ordered by version', async () => {
    const client = await tenantAt({ ...FILES, '0005_five.sql': 'SELECT 5;' }, 5);
    const { '0001_accounts.sql': _gone, ...rest } = FILES;
    await expectDrift(
      client,
      {
        ...rest,
        '0003_invoices.sql': '-- edited\nCREATE TABLE invoices (id int);',
        ...NEW_FILE,
        '0005_five.sql': 'SELECT 5;',
      },
      [
        { kind: 'missing_file', version: 1 },
        { kind: 'checksum_mismatch', version: 3 },
        { kind: 'out_of_order', version: 4 },
      ],
    );
  });

  it('is not reported for the same file with CRLF line endings or a byte-order mark', async () => {
    const client = await tenantAt({ ...FILES, '0002_projects.sql': 'CREATE TABLE projects (id int);\n-- note\n' }, 3);
    const report = await migrator(
      client,
      migrationSet({ ...FILES, '0002_projects.sql': '\uFEFFCREATE TABLE projects (id int);\r\n-- note\r\n' }),
    ).migrate({ targetVersion: 3 });
    expect(report.status).toBe('upToDate');
  });
});
