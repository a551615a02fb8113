import { DirtyError, LockedError, MigrationSqlError } from '@sluice/core';
import { afterAll, describe, expect, it } from 'vitest';

import { JournalReadHints } from '../src/journal-reads.js';
import {
  advisoryLocks,
  HOST,
  journalRows,
  migrationSet,
  migrator,
  rejection,
  testDatabases,
} from './support/postgres.js';

const dbs = testDatabases('edges');

/** Hints that have seen a journal on the test host: its next read is a plain one. */
function plainReads(): JournalReadHints {
  const hints = new JournalReadHints();
  hints.observe(HOST, true);
  return hints;
}
afterAll(() => dbs.dropAll());

describe('the migrator at the edges of the journal: dirty states, old shapes, redeliveries, lock-free checks', () => {
  it('keeps a concurrent index build that failed and left an invalid index dirty, naming the index', async () => {
    const set = migrationSet({
      '0001_t.sql': 'CREATE TABLE t (id int, s text);',
      '0002_idx.sql':
        '-- sluice:no-transaction\n-- sluice:lock-timeout 500ms\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_s_idx ON t (s);',
    });
    const tenant = await dbs.create();
    const client = await tenant.connect();
    await migrator(client, set).migrate({ targetVersion: 1 });
    const writer = await tenant.connect();
    await writer.query('BEGIN');
    await writer.query("INSERT INTO t VALUES (1, 'a')");
    const error = await rejection(migrator(client, set).migrate({ targetVersion: 2 }));
    await writer.query('COMMIT');
    expect(error).toBeInstanceOf(MigrationSqlError);
    expect((error as Error).message).toMatch(/invalid index t_s_idx/);
    expect((await journalRows(client)).map((r) => [r.version, r.status])).toEqual([
      [1, 'applied'],
      [2, 'dirty'],
    ]);
    expect(await rejection(migrator(client, set).migrate({ targetVersion: 2 }))).toBeInstanceOf(DirtyError);
  });

  it.each([
    ['the error-free probe', undefined],
    ['a plain read', plainReads()],
  ])(
    'reads an old-shape journal with %s instead of treating it as empty, and brings it to the current shape',
    async (_, journalReads) => {
      const tenant = await dbs.create();
      const client = await tenant.connect();
      const set = migrationSet({
        '0001_a.sql': 'CREATE TABLE a (id int);',
        '0002_b.sql': 'CREATE TABLE b (id int);',
        '0003_c.sql': 'CREATE TABLE c (id int);',
      });
      await client.query(
        'CREATE TABLE sluice_migrations (version bigint PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      for (const m of set.migrations.slice(0, 2))
        await client.query('INSERT INTO sluice_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
          m.version,
          m.name,
          m.checksum,
        ]);
      const options = journalReads ? { journalReads } : {};
      const report = await migrator(client, set).migrate({ targetVersion: 3, dryRun: true, ...options });
      expect(report).toMatchObject({ status: 'pending', applied: [3], fromVersion: 2, toVersion: 3 });
      const applied = await migrator(client, set).migrate({ targetVersion: 3, ...options });
      expect(applied).toMatchObject({ status: 'migrated', applied: [3], fromVersion: 2, toVersion: 3 });
      expect((await journalRows(client)).map((r) => [r.version, r.status])).toEqual([
        [1, 'applied'],
        [2, 'applied'],
        [3, 'applied'],
      ]);
    },
  );

  it('reports everything a run applied when a redelivery finishes the rest', async () => {
    const tenant = await dbs.create();
    const client = await tenant.connect();
    const files = { '0001_a.sql': 'CREATE TABLE a (id int);', '0002_b.sql': 'CREATE TABLE b (id int);' };
    await migrator(client, migrationSet(files)).migrate({ targetVersion: 1, runId: 'run-1' });
    const report = await migrator(client, migrationSet(files)).migrate({ targetVersion: 2, runId: 'run-1' });
    expect(report).toMatchObject({ status: 'migrated', applied: [1, 2] });
  });

  it('answers an up-to-date check without taking the lock, even while another runner holds it', async () => {
    const tenant = await dbs.create();
    const client = await tenant.connect();
    const set = migrationSet({ '0001_a.sql': 'CREATE TABLE a (id int);' });
    await migrator(client, set).migrate({ targetVersion: 1 });
    const other = await tenant.connect();
    const key = (
      await other.query<{ k: string }>(
        "SELECT ('x' || substr(encode(sha256('sluice:public.sluice_migrations'), 'hex'), 1, 16))::bit(64)::bigint::text AS k",
      )
    ).rows[0]!.k;
    await other.query(`SELECT pg_advisory_lock(${key})`);
    expect(await advisoryLocks(other)).toBeGreaterThan(0);
    const report = await migrator(client, set).migrate({ targetVersion: 1 });
    expect(report.status).toBe('upToDate');
    // Work to do does need the lock, which the other session holds (so the key above is the real one).
    const more = migrationSet({ '0001_a.sql': 'CREATE TABLE a (id int);', '0002_b.sql': 'CREATE TABLE b (id int);' });
    expect(await rejection(migrator(client, more).migrate({ targetVersion: 2 }))).toBeInstanceOf(LockedError);
  });
});
