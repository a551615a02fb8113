import { JournalMovedError, MigrationSqlError } from '@sluice/core';
import type pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';

import { JournalReadHints } from '../src/journal-reads.js';
import {
  advisoryLocks,
  appliedVersions,
  HOST,
  migrationSet,
  migrator,
  newerGrammar,
  rejection,
  relationExists,
  testDatabases,
} from './support/postgres.js';

const dbs = testDatabases('batch');
afterAll(() => dbs.dropAll());

/** Counts the messages the migrator sends (each query() call is one simple-protocol round trip), and can act after the n-th. */
function countRoundTrips(client: pg.Client, after?: { call: number; run: () => Promise<void> }): () => number {
  let calls = 0;
  const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = async (...args: unknown[]) => {
    calls += 1;
    const result = await query(...args);
    if (after && calls === after.call) await after.run();
    return result;
  };
  return () => calls;
}

/** This database's aborted transactions (each server-side ERROR is one), flushed from the session first. */
async function rollbacks(observer: pg.Client, session: pg.Client, database: string): Promise<number> {
  // Pending statistics reach shared memory before the session's next ReadyForQuery.
  await session.query('SELECT pg_stat_force_next_flush()');
  await session.query('SELECT 1');
  const result = await observer.query<{ n: string }>(
    'SELECT xact_rollback::text AS n FROM pg_stat_database WHERE datname = $1',
    [database],
  );
  return Number(result.rows[0]!.n);
}

const THREE = {
  '0001_a.sql': 'CREATE TABLE a (id int);\nINSERT INTO a SELECT generate_series(1, 200);',
  '0002_b.sql': 'CREATE TABLE b (id int PRIMARY KEY, a_id int CHECK (a_id > 0));',
  '0003_c.sql': 'CREATE INDEX a_id ON a (id);',
};

describe('transactional files in one message', () => {
  it('migrates a new database in two round trips (journal read; lock, journal, files, unlock) and checks an up-to-date one in one', async () => {
    const tenant = await dbs.create();
    const client = await tenant.connectTenant({});
    const roundTrips = countRoundTrips(client);
    const report = await migrator(client, migrationSet(THREE)).migrate({ targetVersion: 3 });
    expect(report).toMatchObject({ status: 'migrated', applied: [1, 2, 3], fromVersion: null, toVersion: 3 });
    expect(roundTrips()).toBe(2);
    expect(await appliedVersions(client)).toEqual([1, 2, 3]);
    expect(await advisoryLocks(client)).toBe(0);

    const before = roundTrips();
    expect((await migrator(client, migrationSet(THREE)).migrate({ targetVersion: 3 })).status).toBe('upToDate');
    expect(roundTrips() - before).toBe(1);
  });

  it('makes the server raise no error on a first run or an up-to-date one (the failing control does count)', async () => {
    const tenant = await dbs.create();
    const observer = await tenant.connect();
    const client = await tenant.connectTenant({});
    const start = await rollbacks(observer, client, tenant.name);

    await migrator(client, migrationSet(THREE)).migrate({ targetVersion: 2 });
    await migrator(client, migrationSet(THREE)).migrate({ targetVersion: 3 });
    await migrator(client, migrationSet(THREE)).migrate({ targetVersion: 3 });
    await migrator(client, migrationSet(THREE)).migrate({ targetVersion: 3, dryRun: true });
    expect(await rollbacks(observer, client, tenant.name)).toBe(start);

    // The method sees errors: a failing file is one aborted transaction (and its retry one file by one, another).
    const broken = migrationSet({ ...THREE, '0004_broken.sql': 'SELECT 1/0;' });
    await rejection(migrator(client, broken).migrate({ targetVersion: 4 }));
    expect(await rollbacks(observer, client, tenant.name)).toBeGreaterThan(start);
  });

  it('reads journals plainly once a host has shown one; a database without one then costs one error', async () => {
    const hints = new JournalReadHints();
    const [first, second] = [await dbs.create(), await dbs.create()];
    const observers = [await first.connect(), await second.connect()];
    const clients = [await first.connectTenant({}), await second.connectTenant({})];
    const before = [
      await rollbacks(observers[0]!, clients[0]!, first.name),
      await rollbacks(observers[1]!, clients[1]!, second.name),
    ];
    const errorsSince = async (i: 0 | 1) =>
      (await rollbacks(observers[i]!, clients[i]!, [first, second][i]!.name)) - before[i]!;
    const run = (i: 0 | 1, dryRun = false) =>
      migrator(clients[i]!, migrationSet(THREE)).migrate({ targetVersion: 3, journalReads: hints, dryRun });

    // A host never met: the error-free probe; a new database is migrated in two round trips, no error.
    expect(hints.choose(HOST)).toBe('probe');
    const roundTrips = countRoundTrips(clients[0]!);
    expect(await run(0)).toMatchObject({ status: 'migrated', applied: [1, 2, 3] });
    expect(roundTrips()).toBe(2);
    expect(await errorsSince(0)).toBe(0);
    expect(hints.choose(HOST)).toBe('probe');
    // A probe that finds a journal puts the host on plain reads: up to date in one round trip, no error.
    expect(await run(0)).toMatchObject({ status: 'upToDate', fromVersion: 3 });
    expect(hints.choose(HOST)).toBe('plain');
    const upToDate = countRoundTrips(clients[0]!);
    expect(await run(0)).toMatchObject({ status: 'upToDate', fromVersion: 3 });
    expect(await run(0, true)).toMatchObject({ status: 'upToDate' });
    expect(upToDate()).toBe(2);
    expect(await errorsSince(0)).toBe(0);
    // A database without a journal met by a plain read: one error, migrated all the same; the host is probed again.
    expect(await run(1)).toMatchObject({ status: 'migrated', applied: [1, 2, 3] });
    expect(await errorsSince(1)).toBe(1);
    expect(hints.choose(HOST)).toBe('probe');
  });

  it('keeps the files before a failing one committed and names the failing file and version', async () => {
    const tenant = await dbs.create();
    const client = await tenant.connectTenant({});
    const set = migrationSet({
      ...THREE,
      '0004_fails.sql': 'CREATE TABLE d (id int);\nINSERT INTO b VALUES (1, -1);',
      '0005_never.sql': 'CREATE TABLE e (id int);',
    });
    const roundTrips = countRoundTrips(client);

    const error = await rejection(migrator(client, set).migrate({ targetVersion: 5 }));

    expect(error).toBeInstanceOf(MigrationSqlError);
    expect(error).toMatchObject({ version: 4, sqlState: '23514', transient: false });
    expect((error as Error).message).toMatch(/^version 4: /);
    // Read, batch; after the error: wait for the transaction status, learn what committed (after a ROLLBACK), unlock.
    expect(roundTrips()).toBe(5);
    expect(await appliedVersions(client)).toEqual([1, 2, 3]);
    expect(await relationExists(client, 'd')).toBe(false);
    expect(await relationExists(client, 'e')).toBe(false);
    expect(await advisoryLocks(client)).toBe(0);
    expect(client.getTransactionStatus()).toBe('I');
  });

  it('reports a file the server cannot parse by its version, with the files before it applied', async () => {
    const tenant = await dbs.create();
    const client = await tenant.connectTenant({});
    // Sluice's parser accepted the set (say a newer grammar than the server's); the server's syntax
    // error fails the whole message before anything runs: the files then go one by one.
    const set = migrationSet({ ...THREE, '0002_b.sql': 'CREATE TABLE b (id int,);' }, newerGrammar('TABLE b'));

    const error = await rejection(migrator(client, set).migrate({ targetVersion: 3 }));

    expect(error).toBeInstanceOf(MigrationSqlError);
    expect(error).toMatchObject({ version: 2, sqlState: '42601' });
    expect(await appliedVersions(client)).toEqual([1]);
    expect(await advisoryLocks(client)).toBe(0);
  });

  it('raises JournalMovedError, applying nothing, when another runner moved the journal after the read', async () => {
    const tenant = await dbs.create();
    const client = await tenant.connectTenant({});
    const other = await tenant.connectTenant({});
    const set = migrationSet(THREE);
    // Between this runner's journal read and its batch, another runner applies version 1.
    countRoundTrips(client, {
      call: 1,
      run: async () => {
        await migrator(other, set).migrate({ targetVersion: 1 });
      },
    });

    const error = await rejection(migrator(client, set).migrate({ targetVersion: 3 }));

    expect(error).toBeInstanceOf(JournalMovedError);
    expect(error).toMatchObject({ code: 'journal_moved', transient: true });
    expect(await appliedVersions(other)).toEqual([1]);
    expect(await relationExists(other, 'b')).toBe(false);
    expect(await advisoryLocks(other)).toBe(0);
    // The retry reads the journal again and applies the rest.
    expect((await migrator(client, set).migrate({ targetVersion: 3 })).applied).toEqual([2, 3]);
  });

  it('sends a long run of files in messages of at most 64 files', async () => {
    const tenant = await dbs.create();
    const client = await tenant.connectTenant({});
    const files = Object.fromEntries(
      Array.from({ length: 70 }, (_, i) => [
        `${String(i + 1).padStart(4, '0')}_t${i + 1}.sql`,
        `CREATE TABLE t${i + 1} (id int);`,
      ]),
    );
    const roundTrips = countRoundTrips(client);
    expect((await migrator(client, migrationSet(files)).migrate({ targetVersion: 70 })).applied).toHaveLength(70);
    // Read; files 1-64 with the lock; files 65-70 with the unlock.
    expect(roundTrips()).toBe(3);
    expect(await advisoryLocks(client)).toBe(0);
  });

  it('batches the files on each side of a no-transaction file', async () => {
    const tenant = await dbs.create();
    const client = await tenant.connectTenant({});
    const set = migrationSet({
      ...THREE,
      '0004_concurrent.sql': '-- sluice:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS b_a ON b (a_id);',
      '0005_e.sql': 'CREATE TABLE e (id int);',
      '0006_f.sql': 'CREATE TABLE f (id int);',
    });
    const roundTrips = countRoundTrips(client);
    expect((await migrator(client, set).migrate({ targetVersion: 6 })).applied).toEqual([1, 2, 3, 4, 5, 6]);
    // Read; batch 1-3; invalid indexes, dirty row, statement, completion; batch 5-6 with the unlock.
    expect(roundTrips()).toBe(7);
    expect(await advisoryLocks(client)).toBe(0);
  });
});
