import { IrreversibleError, LockedError, TargetError } from '@sluice/core';
import { afterAll, describe, expect, it } from 'vitest';

import { advisoryLockKey, DEFAULT_JOURNAL } from '../src/journal.js';
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

const dbs = testDatabases('target');
afterAll(() => dbs.dropAll());

const set = migrationSet({
  '0001_one.sql': 'CREATE TABLE one (id int);',
  '0002_two.sql': 'CREATE TABLE two (id int);',
  '0003_three.sql': 'CREATE TABLE three (id int);',
  '0004_four.sql': 'CREATE TABLE four (id int);',
});

describe('target version', () => {
  it('applies only up to an intermediate target, then on from there', async () => {
    const client = await (await dbs.create()).connect();

    const first = await migrator(client, set).migrate({ targetVersion: 2 });
    expect(first).toMatchObject({ status: 'migrated', applied: [1, 2], fromVersion: null, toVersion: 2 });
    expect(await relationExists(client, 'three')).toBe(false);

    expect(await migrator(client, set).migrate({ targetVersion: 2 })).toMatchObject({
      status: 'upToDate',
      applied: [],
      fromVersion: 2,
      toVersion: 2,
    });
    expect(await migrator(client, set).migrate({ targetVersion: 4 })).toMatchObject({
      status: 'migrated',
      applied: [3, 4],
      fromVersion: 2,
      toVersion: 4,
    });
    expect(await appliedVersions(client)).toEqual([1, 2, 3, 4]);
  });

  it('refuses a target lower than the applied version when there are no down files, touching nothing', async () => {
    const client = await (await dbs.create()).connect();
    await migrator(client, set).migrate({ targetVersion: 3 });

    for (const targetVersion of [2, 0]) {
      const error = await rejection(migrator(client, set).migrate({ targetVersion }));
      expect(error).toBeInstanceOf(IrreversibleError);
      expect(error).toMatchObject({ transient: false, code: 'irreversible' });
      expect((error as Error).message).toMatch(/no down file; nothing was undone/);
    }
    expect(await appliedVersions(client)).toEqual([1, 2, 3]);
    expect(await advisoryLocks(client)).toBe(0);
  });

  it('refuses a target that is not in the set before touching the database', async () => {
    const client = await (await dbs.create()).connect();

    const error = await rejection(migrator(client, set).migrate({ targetVersion: 7 }));

    expect(error).toBeInstanceOf(TargetError);
    expect((error as Error).message).toMatch(/target 7 is not in the migration set \(latest is 4\)/);
    expect(await relationExists(client, 'public.sluice_migrations')).toBe(false);
  });

  it('target 0 on a fresh database applies nothing and writes nothing, not even the journal', async () => {
    const client = await (await dbs.create()).connect();
    expect(await migrator(client, set).migrate({ targetVersion: 0 })).toMatchObject({
      status: 'upToDate',
      applied: [],
      fromVersion: null,
    });
    expect(await relationExists(client, 'public.sluice_migrations')).toBe(false);
  });
});

describe('dry run', () => {
  it('lists the pending versions of a fresh database and creates nothing, not even the journal', async () => {
    const client = await (await dbs.create()).connect();

    const plan = await migrator(client, set).migrate({ targetVersion: 4, dryRun: true });

    expect(plan).toMatchObject({ status: 'pending', applied: [1, 2, 3, 4], fromVersion: null });
    expect(await relationExists(client, 'one')).toBe(false);
    expect(await relationExists(client, 'public.sluice_migrations')).toBe(false);
  });

  it('lists what a partly migrated tenant lacks up to the target, and applies none of it', async () => {
    const client = await (await dbs.create()).connect();
    await migrator(client, set).migrate({ targetVersion: 1 });

    expect(await migrator(client, set).migrate({ targetVersion: 3, dryRun: true })).toMatchObject({
      status: 'pending',
      applied: [2, 3],
      fromVersion: 1,
    });
    expect(await migrator(client, set).migrate({ targetVersion: 1, dryRun: true })).toMatchObject({
      status: 'upToDate',
      applied: [],
    });
    expect(await appliedVersions(client)).toEqual([1]);
    expect(await relationExists(client, 'two')).toBe(false);
  });

  it('does not need the migration lock: it plans while another runner holds it', async () => {
    const tenant = await dbs.create();
    const client = await tenant.connect();
    await migrator(client, set).migrate({ targetVersion: 1 });
    const holder = await tenant.connect();
    await holder.query(`SELECT pg_advisory_lock(${advisoryLockKey(DEFAULT_JOURNAL)})`);

    expect((await migrator(client, set).migrate({ targetVersion: 4, dryRun: true })).applied).toEqual([2, 3, 4]);
    expect(await rejection(migrator(client, set).migrate({ targetVersion: 4 }))).toBeInstanceOf(LockedError);
  });
});

describe('redelivery of the same run', () => {
  it('reports the same versions again for the same runId, and up to date for another run', async () => {
    const client = await (await dbs.create()).connect();

    const first = await migrator(client, set).migrate({ targetVersion: 4, runId: 'run-1', executorId: 'exec-a' });
    const again = await migrator(client, set).migrate({ targetVersion: 4, runId: 'run-1', executorId: 'exec-b' });
    const other = await migrator(client, set).migrate({ targetVersion: 4, runId: 'run-2', executorId: 'exec-b' });

    expect(first).toMatchObject({ status: 'migrated', applied: [1, 2, 3, 4] });
    expect(again).toMatchObject({ status: 'migrated', applied: [1, 2, 3, 4] });
    expect(other).toMatchObject({ status: 'upToDate', applied: [] });
    expect((await journalRows(client)).map((r) => [r.version, r.run_id, r.executor_id])).toEqual(
      [1, 2, 3, 4].map((v) => [v, 'run-1', 'exec-a']),
    );
  });
});
