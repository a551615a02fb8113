import { DirtyError, LockedError } from '@sluice/core';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { type ChildMigrator, killChildMigrators, startChildMigrator } from './support/child-migrator.js';
import {
  advisoryLocks,
  appliedVersions,
  effectCounts,
  journalRows,
  migrationDir,
  migrationSet,
  migrator,
  rejection,
  relationExists,
  testDatabases,
  waitFor,
} from './support/postgres.js';

const dbs = testDatabases('killed');

// Only the process under test (application_name victim-…) sleeps, so the next run is quick.
const SLEEP_IF_VICTIM =
  "SELECT pg_sleep(CASE WHEN current_setting('application_name') LIKE 'victim%' THEN 3 ELSE 0 END)";
const FILES = {
  '0001_effects.sql': 'CREATE TABLE effects (version int NOT NULL);\nINSERT INTO effects VALUES (1);',
  '0002_half.sql': `CREATE TABLE half (id int);\nINSERT INTO effects VALUES (2);\n${SLEEP_IF_VICTIM};\nINSERT INTO half VALUES (1);`,
  '0003_after.sql': 'CREATE TABLE after_half (id int);\nINSERT INTO effects VALUES (3);',
};
const NO_TX_FILES = {
  '0001_effects.sql': FILES['0001_effects.sql'],
  '0002_two_steps.sql': `-- sluice:no-transaction\nCREATE TABLE step_one (id int);\n${SLEEP_IF_VICTIM};\nCREATE TABLE step_two (id int);`,
};

let dirs: Array<Awaited<ReturnType<typeof migrationDir>>> = [];
beforeAll(async () => {
  dirs = await Promise.all([migrationDir(FILES), migrationDir(NO_TX_FILES)]);
});
afterEach(killChildMigrators);
afterAll(async () => {
  await dbs.dropAll();
  await Promise.all(dirs.map((d) => d.remove()));
});

/** Starts a migrator process and SIGKILLs it while its backend is inside pg_sleep, in the middle of version 2. */
async function killMidMigration(observer: pg.Client, child: ChildMigrator): Promise<number> {
  const { backendPid } = await child.ready;
  await waitFor(
    async () =>
      (
        await observer.query(
          // The wait event, not the query text: a batch of files is longer than the text
          // pg_stat_activity keeps (track_activity_query_size).
          "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND wait_event = 'PgSleep'",
          [backendPid],
        )
      ).rowCount === 1,
    15_000,
    'the migration to reach pg_sleep',
  );
  child.kill('SIGKILL');
  await child.exited;
  return backendPid;
}

async function backendGone(observer: pg.Client, pid: number): Promise<void> {
  await waitFor(
    async () => (await observer.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount === 0,
    15_000,
    `backend ${pid} to exit`,
  );
}

describe('a migrator process killed (SIGKILL) in the middle of a transactional migration', () => {
  it('leaves nothing half-applied when the server drops the dead session (client_connection_check_interval); the next run applies it', async () => {
    const tenant = await dbs.create();
    const observer = await tenant.connect();
    const child = startChildMigrator({
      databaseUrl: tenant.url,
      migrationsDir: dirs[0]!.dir,
      runId: 'run-1',
      applicationName: 'victim-checked',
      clientConnectionCheckMs: 100,
    });

    const pid = await killMidMigration(observer, child);
    await backendGone(observer, pid);

    expect(await relationExists(observer, 'half')).toBe(false);
    expect(await appliedVersions(observer)).toEqual([1]);
    expect(await effectCounts(observer)).toEqual([{ version: 1, n: 1 }]);
    expect(await advisoryLocks(observer)).toBe(0);

    const next = await migrator(observer, migrationSet(FILES)).migrate({ targetVersion: 3, runId: 'run-1' });
    // Everything run-1 applied, on this delivery or an earlier one.
    expect(next.applied).toEqual([1, 2, 3]);
    expect(await relationExists(observer, 'half')).toBe(true);
    expect(await effectCounts(observer)).toEqual([1, 2, 3].map((version) => ({ version, n: 1 })));
  });

  it('with default session settings: never half-applied, locked while the orphaned backend runs, exactly once in the end', async () => {
    const tenant = await dbs.create();
    const observer = await tenant.connect();
    const child = startChildMigrator({
      databaseUrl: tenant.url,
      migrationsDir: dirs[0]!.dir,
      runId: 'run-1',
      applicationName: 'victim-default',
    });

    const pid = await killMidMigration(observer, child);

    // Mid-flight, nobody else can see any of version 2.
    expect(await relationExists(observer, 'half')).toBe(false);
    expect(await appliedVersions(observer)).toEqual([1]);
    // The backend has not noticed its client is gone: it still holds the lock, and a retry is told so.
    const retry = await rejection(
      migrator(observer, migrationSet(FILES)).migrate({ targetVersion: 3, runId: 'run-1' }),
    );
    expect(retry).toBeInstanceOf(LockedError);

    await backendGone(observer, pid);
    // The server already had the whole batch (one simple query: versions 1 to 3, each its own
    // transaction, then the unlock) and ran it to the end: versions 2 and 3 are complete, each file
    // with its journal row. Either way, never one without the other.
    expect(await relationExists(observer, 'half')).toBe(true);
    expect(await appliedVersions(observer)).toEqual([1, 2, 3]);
    expect((await observer.query('SELECT count(*)::int AS n FROM half')).rows[0]).toEqual({ n: 1 });
    expect(await advisoryLocks(observer)).toBe(0);

    const next = await migrator(observer, migrationSet(FILES)).migrate({ targetVersion: 3, runId: 'run-1' });
    // Everything run-1 applied, found in the journal.
    expect(next).toMatchObject({ status: 'migrated', applied: [1, 2, 3] });
    expect(await appliedVersions(observer)).toEqual([1, 2, 3]);
    expect(await effectCounts(observer)).toEqual([1, 2, 3].map((version) => ({ version, n: 1 })));
  });
});

describe('a migrator process killed in the middle of a no-transaction migration', () => {
  it('leaves the version dirty, so the next run refuses the tenant until repair', async () => {
    const tenant = await dbs.create();
    const observer = await tenant.connect();
    const child = startChildMigrator({
      databaseUrl: tenant.url,
      migrationsDir: dirs[1]!.dir,
      runId: 'run-1',
      applicationName: 'victim-no-tx',
    });

    const pid = await killMidMigration(observer, child);
    await backendGone(observer, pid);

    expect(await relationExists(observer, 'step_one')).toBe(true);
    expect(await relationExists(observer, 'step_two')).toBe(false);
    expect((await journalRows(observer)).map((r) => [r.version, r.status])).toEqual([
      [1, 'applied'],
      [2, 'dirty'],
    ]);
    expect(await advisoryLocks(observer)).toBe(0);

    const next = await rejection(migrator(observer, migrationSet(NO_TX_FILES)).migrate({ targetVersion: 2 }));
    expect(next).toBeInstanceOf(DirtyError);
    expect(next).toMatchObject({ version: 2, transient: false });
  });
});
