import { IrreversibleError, LockedError, MigrationSqlError } from '@sluice/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { advisoryLockKey, DEFAULT_JOURNAL, ensureJournalSql } from '../src/journal.js';
import { killChildMigrators, startChildMigrator } from './support/child-migrator.js';
import {
  advisoryLocks,
  appliedVersions,
  effectCounts,
  migrationDir,
  migrationSet,
  migrator,
  rejection,
  testDatabases,
} from './support/postgres.js';

const dbs = testDatabases('concurrent');
let files: Awaited<ReturnType<typeof migrationDir>>;

// Every migration leaves a row in `effects`, so a version that ran twice shows as a count of 2.
const FILES = {
  '0001_effects.sql': 'CREATE TABLE effects (version int NOT NULL);\nINSERT INTO effects VALUES (1);',
  // The window: whoever holds the lock holds it for at least this long.
  '0002_slow.sql': 'SELECT pg_sleep(1);\nINSERT INTO effects VALUES (2);',
  '0003_more.sql': 'CREATE TABLE more (id int);\nINSERT INTO effects VALUES (3);',
};

beforeAll(async () => {
  files = await migrationDir(FILES);
});
afterEach(killChildMigrators);
afterAll(async () => {
  await dbs.dropAll();
  await files?.remove();
});

describe('two processes migrating one database at once', () => {
  async function race(databaseUrl: string) {
    const children = ['a', 'b'].map((name) =>
      startChildMigrator({
        databaseUrl,
        migrationsDir: files.dir,
        runId: 'run-1',
        applicationName: `race-${name}`,
        waitForGo: true,
      }),
    );
    // Both are connected before either calls migrate(): process start-up cannot serialise them.
    await Promise.all(children.map((c) => c.ready));
    for (const child of children) child.go();
    const results = await Promise.all(children.map((c) => c.result));
    await Promise.all(children.map((c) => c.exited));
    return results;
  }

  const cases = [
    { on: 'a fresh database (both also race to create the journal)', journalFirst: false },
    { on: 'a database whose journal exists', journalFirst: true },
  ];
  for (const { on, journalFirst } of cases) {
    it(`applies every version exactly once on ${on}; the loser gets the transient locked error`, async () => {
      const tenant = await dbs.create();
      const client = await tenant.connect();
      if (journalFirst) await client.query(ensureJournalSql(DEFAULT_JOURNAL));

      const results = await race(tenant.url);

      expect(results.filter((r) => r.event === 'done')).toEqual([
        { event: 'done', status: 'migrated', applied: [1, 2, 3] },
      ]);
      expect(results.filter((r) => r.event === 'error')).toEqual([
        expect.objectContaining({ name: 'LockedError', code: 'locked', transient: true }),
      ]);
      const once = [1, 2, 3].map((version) => ({ version, n: 1 }));
      expect(await effectCounts(client)).toEqual(once);
      expect(await appliedVersions(client)).toEqual([1, 2, 3]);
      expect(await advisoryLocks(client)).toBe(0);

      // The loser's task, redelivered, finds its run's work done and runs nothing again.
      const retry = await migrator(client, migrationSet(FILES)).migrate({ targetVersion: 3, runId: 'run-1' });
      expect(retry).toMatchObject({ status: 'migrated', applied: [1, 2, 3] });
      expect(await effectCounts(client)).toEqual(once);
    });
  }
});

describe('the migration lock', () => {
  it('is a try-lock: a held lock fails fast with LockedError instead of waiting', async () => {
    const tenant = await dbs.create();
    const holder = await tenant.connect();
    const client = await tenant.connect();
    await holder.query(`SELECT pg_advisory_lock(${advisoryLockKey(DEFAULT_JOURNAL)})`);

    const started = performance.now();
    const error = await rejection(migrator(client, migrationSet(FILES)).migrate({ targetVersion: 3 }));
    expect(error).toBeInstanceOf(LockedError);
    expect((error as LockedError).transient).toBe(true);
    expect(performance.now() - started).toBeLessThan(1_000);
    // Repair and baseline take the same lock.
    expect(await rejection(migrator(client, migrationSet(FILES)).baseline(1))).toBeInstanceOf(LockedError);
    expect(await rejection(migrator(client, migrationSet(FILES)).repair(1, 'retry'))).toBeInstanceOf(LockedError);

    await holder.query(`SELECT pg_advisory_unlock(${advisoryLockKey(DEFAULT_JOURNAL)})`);
    expect((await migrator(client, migrationSet(FILES)).migrate({ targetVersion: 1 })).applied).toEqual([1]);
  });

  it('is released on every path: success, up to date, SQL error, refused target, dry run', async () => {
    const tenant = await dbs.create();
    const client = await tenant.connect();
    const observer = await tenant.connect();
    const good = migrationSet(FILES);
    const broken = migrationSet({ ...FILES, '0004_broken.sql': 'SELECT 1/0;' });

    await migrator(client, good).migrate({ targetVersion: 1 });
    expect(await advisoryLocks(observer)).toBe(0);
    await migrator(client, good).migrate({ targetVersion: 1 });
    expect(await advisoryLocks(observer)).toBe(0);
    expect(await rejection(migrator(client, broken).migrate({ targetVersion: 4 }))).toBeInstanceOf(MigrationSqlError);
    expect(await advisoryLocks(observer)).toBe(0);
    expect(await rejection(migrator(client, broken).migrate({ targetVersion: 1 }))).toBeInstanceOf(IrreversibleError);
    expect(await advisoryLocks(observer)).toBe(0);
    await migrator(client, broken).migrate({ targetVersion: 4, dryRun: true });
    expect(await advisoryLocks(observer)).toBe(0);
  });
});
