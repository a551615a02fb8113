import { LockTimeoutError } from '@sluice/core';
import type pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';

import {
  advisoryLocks,
  appliedVersions,
  journalRows,
  migrationSet,
  migrator,
  rejection,
  relationExists,
  type TestDatabase,
  testDatabases,
} from './support/postgres.js';

const dbs = testDatabases('locktimeout');
afterAll(() => dbs.dropAll());

const CREATE = { '0001_held.sql': 'CREATE TABLE held (id int);' };

/** A tenant at version 1, and another session holding `held` in ACCESS EXCLUSIVE mode inside an open transaction. */
async function heldTable(): Promise<{ tenant: TestDatabase; holder: pg.Client }> {
  const tenant = await dbs.create();
  const setup = await tenant.connect();
  await migrator(setup, migrationSet(CREATE)).migrate({ targetVersion: 1 });
  const holder = await tenant.connect();
  await holder.query('BEGIN');
  await holder.query('LOCK TABLE held IN ACCESS EXCLUSIVE MODE');
  return { tenant, holder };
}

async function expectLockTimeout(promise: Promise<unknown>, version: number, withinMs: number): Promise<void> {
  const started = performance.now();
  const error = await rejection(promise);
  const elapsed = performance.now() - started;
  expect(error).toBeInstanceOf(LockTimeoutError);
  expect(error).toMatchObject({ sqlState: '55P03', version, transient: true, code: 'lock_timeout' });
  expect(elapsed).toBeLessThan(withinMs);
}

async function showLockTimeout(client: pg.Client): Promise<string> {
  return (await client.query<{ lock_timeout: string }>('SHOW lock_timeout')).rows[0]!.lock_timeout;
}

describe('a held table lock', () => {
  it('hits the per-file `-- sluice:lock-timeout` and comes back as a transient LockTimeoutError, applying nothing', async () => {
    const { tenant, holder } = await heldTable();
    const client = await tenant.connectTenant({ lockTimeoutMs: 30_000 });
    const set = migrationSet({
      ...CREATE,
      '0002_alter.sql':
        '-- sluice:lock-timeout 500ms\nCREATE TABLE side (id int);\nALTER TABLE held ADD COLUMN extra int;',
    });

    await expectLockTimeout(migrator(client, set).migrate({ targetVersion: 2 }), 2, 5_000);

    expect(await appliedVersions(client)).toEqual([1]);
    expect(await relationExists(client, 'side')).toBe(false);
    expect(await advisoryLocks(client)).toBe(0);
    // The override was local to the migration's transaction.
    expect(await showLockTimeout(client)).toBe('30s');

    // Retried once the lock is gone, it applies.
    await holder.query('COMMIT');
    expect((await migrator(client, set).migrate({ targetVersion: 2 })).applied).toEqual([2]);
  });

  it('hits the connection-level lockTimeoutMs when the file sets none', async () => {
    const { tenant, holder } = await heldTable();
    const client = await tenant.connectTenant({ lockTimeoutMs: 300 });
    expect(await showLockTimeout(client)).toBe('300ms');
    const set = migrationSet({ ...CREATE, '0002_alter.sql': 'ALTER TABLE held ADD COLUMN extra int;' });

    await expectLockTimeout(migrator(client, set).migrate({ targetVersion: 2 }), 2, 5_000);

    expect(await appliedVersions(client)).toEqual([1]);
    await holder.query('ROLLBACK');
  });

  it('in the first statement of a no-transaction file forgets the attempt (not dirty) and restores the session timeout', async () => {
    const { tenant, holder } = await heldTable();
    const client = await tenant.connectTenant({ lockTimeoutMs: 30_000 });
    const set = migrationSet({
      ...CREATE,
      '0002_index.sql':
        '-- sluice:no-transaction\n-- sluice:lock-timeout 300ms\nCREATE INDEX CONCURRENTLY held_id_idx ON held (id);',
    });

    await expectLockTimeout(migrator(client, set).migrate({ targetVersion: 2 }), 2, 5_000);

    expect((await journalRows(client)).map((r) => [r.version, r.status])).toEqual([[1, 'applied']]);
    expect(await relationExists(client, 'held_id_idx')).toBe(false);
    expect(await showLockTimeout(client)).toBe('30s');
    expect(await advisoryLocks(client)).toBe(0);

    await holder.query('COMMIT');
    expect((await migrator(client, set).migrate({ targetVersion: 2 })).applied).toEqual([2]);
    expect(await showLockTimeout(client)).toBe('30s');
  });
});
