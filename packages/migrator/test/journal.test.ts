import { TargetError } from '@sluice/core';
import { afterAll, describe, expect, it } from 'vitest';

import { advisoryLockKey, DEFAULT_JOURNAL, type JournalLocation } from '../src/journal.js';
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

const dbs = testDatabases('journal');
afterAll(() => dbs.dropAll());

const set = migrationSet({
  '0001_one.sql': 'CREATE TABLE one (id int);',
  '0002_two.sql': 'CREATE TABLE two (id int);',
  '0003_three.sql': 'CREATE TABLE three (id int);',
});

describe('baseline', () => {
  it('marks versions up to V as applied without running them; the next run applies the rest', async () => {
    const client = await (await dbs.create()).connect();
    // A database that already has the schema of versions 1 and 2: running them would fail.
    await client.query('CREATE TABLE one (id int); CREATE TABLE two (id int);');

    expect(await migrator(client, set).baseline(2, 'sluice-cli')).toEqual([1, 2]);

    expect(
      (await journalRows(client)).map((r) => [r.version, r.status, r.baseline, r.executor_id, r.checksum]),
    ).toEqual([
      [1, 'applied', true, 'sluice-cli', set.migrations[0]!.checksum],
      [2, 'applied', true, 'sluice-cli', set.migrations[1]!.checksum],
    ]);
    expect(await advisoryLocks(client)).toBe(0);
    expect(await migrator(client, set).migrate({ targetVersion: 3 })).toMatchObject({
      applied: [3],
      fromVersion: 2,
      toVersion: 3,
    });
    expect((await journalRows(client)).at(-1)).toMatchObject({ version: 3, baseline: false });
  });

  it('is refused when the journal already holds versions', async () => {
    const client = await (await dbs.create()).connect();
    await migrator(client, set).migrate({ targetVersion: 1 });

    const error = await rejection(migrator(client, set).baseline(2));

    expect(error).toBeInstanceOf(TargetError);
    expect((error as Error).message).toMatch(/journal already holds versions up to 1/);
    expect(await appliedVersions(client)).toEqual([1]);
    expect(await advisoryLocks(client)).toBe(0);
  });

  it('is refused for a version that is not in the set', async () => {
    const client = await (await dbs.create()).connect();
    expect(await rejection(migrator(client, set).baseline(9))).toBeInstanceOf(TargetError);
    expect(await relationExists(client, 'public.sluice_migrations')).toBe(false);
  });
});

describe('the journal itself', () => {
  it('records run id, executor id and duration for every version', async () => {
    const client = await (await dbs.create()).connect();
    await migrator(client, set).migrate({ targetVersion: 3, runId: 'run-9', executorId: 'exec-9' });
    const rows = await journalRows(client);
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      expect(row).toMatchObject({ status: 'applied', run_id: 'run-9', executor_id: 'exec-9', baseline: false });
      expect(row.duration_ms).toBeGreaterThanOrEqual(0);
    }
  });

  it('is migrated forward from its first shape, keeping the rows', async () => {
    const client = await (await dbs.create()).connect();
    await client.query(`
      CREATE TABLE one (id int); CREATE TABLE two (id int);
      CREATE TABLE sluice_migrations (version bigint PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());`);
    for (const m of set.migrations.slice(0, 2)) {
      await client.query("INSERT INTO sluice_migrations VALUES ($1, $2, $3, '2020-01-02T03:04:05Z')", [
        m.version,
        m.name,
        m.checksum,
      ]);
    }

    const report = await migrator(client, set).migrate({ targetVersion: 3, runId: 'run-1' });

    expect(report).toMatchObject({ status: 'migrated', applied: [3], fromVersion: 2 });
    const columns = await client.query<{ column_name: string }>(
      "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'sluice_migrations' ORDER BY ordinal_position",
    );
    expect(columns.rows.map((c) => c.column_name)).toEqual([
      'version',
      'name',
      'checksum',
      'applied_at',
      'status',
      'duration_ms',
      'run_id',
      'executor_id',
      'baseline',
      'down_checksum',
    ]);
    const rows = await client.query<{ version: string; status: string; applied_at: Date; run_id: string | null }>(
      'SELECT version, status, applied_at, run_id FROM sluice_migrations ORDER BY version',
    );
    expect(rows.rows.map((r) => [Number(r.version), r.status, r.run_id])).toEqual([
      [1, 'applied', null],
      [2, 'applied', null],
      [3, 'applied', 'run-1'],
    ]);
    expect(rows.rows[0]!.applied_at.toISOString()).toBe('2020-01-02T03:04:05.000Z');
    expect(await advisoryLocks(client)).toBe(0);
  });

  it('may live in another schema, created on first use, with its own lock', async () => {
    const tenant = await dbs.create();
    const client = await tenant.connect();
    const journal: JournalLocation = { schema: 'sluice', table: 'journal' };
    // A runner of the default journal does not block this one: the lock key comes from the journal's name.
    const other = await tenant.connect();
    await other.query(`SELECT pg_advisory_lock(${advisoryLockKey(DEFAULT_JOURNAL)})`);
    expect(advisoryLockKey(journal)).not.toBe(advisoryLockKey(DEFAULT_JOURNAL));

    expect((await migrator(client, set, journal).migrate({ targetVersion: 2, runId: 'run-1' })).applied).toEqual([
      1, 2,
    ]);

    expect(await appliedVersions(client, 'sluice.journal')).toEqual([1, 2]);
    expect(await relationExists(client, 'public.sluice_migrations')).toBe(false);
    expect((await migrator(client, set, journal).migrate({ targetVersion: 3 })).applied).toEqual([3]);
    expect((await migrator(client, set, journal).migrate({ targetVersion: 3, dryRun: true })).status).toBe('upToDate');
    expect(await migrator(client, set, journal).readJournal()).toHaveLength(3);
  });
});
