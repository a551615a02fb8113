import { LockedError } from '@sluice/core';
import { afterAll, describe, expect, it } from 'vitest';

import { advisoryLockKey, DEFAULT_JOURNAL } from '../src/journal.js';
import {
  type FencedHolder,
  leaseApplicationName,
  type LockFence,
  type MigrationLease,
  parseLeaseApplicationName,
  staleHolderReason,
  taskLeaseKey,
} from '../src/lock-fencing.js';
import { TenantMigrator } from '../src/tenant-migrator.js';
import { appliedVersions, HOST, migrationSet, rejection, testDatabases } from './support/postgres.js';

const dbs = testDatabases('fencing');
afterAll(() => dbs.dropAll());

const FILES = {
  '0001_a.sql': 'CREATE TABLE a (id int);',
  '0002_b.sql': 'CREATE TABLE b (id int);',
};
const key = taskLeaseKey('run-1', 'tenant-1');
const lease = (streamSeq: number, deliveryCount: number): MigrationLease => ({
  taskKey: key,
  streamSeq,
  deliveryCount,
});

describe('session names carry the lease', () => {
  it('round-trips within 63 characters, whatever the executor id', () => {
    const name = leaseApplicationName('x'.repeat(80), lease(123_456_789, 3));
    expect(name.length).toBeLessThanOrEqual(63);
    expect(parseLeaseApplicationName(name)).toEqual(lease(123_456_789, 3));
    expect(leaseApplicationName('fz-x1', lease(7, 1))).toBe(`sluice-executor:fz-x1:${key}.7.1`);
    expect(parseLeaseApplicationName('sluice-cli')).toBeUndefined();
    expect(parseLeaseApplicationName('sluice-executor:old-x1:run-1')).toBeUndefined();
  });

  it('a session idle longer than the ack wait has lost its lease; an active one, a briefly idle one or a person has not', () => {
    const fence = { lease: lease(10, 2), ackWaitMs: 1_500 };
    const holder = (l: MigrationLease, state: string, idleMs: number) => ({
      applicationName: leaseApplicationName('x1', l),
      state,
      idleMs,
    });
    expect(staleHolderReason(holder(lease(10, 1), 'idle', 1_500), fence)).toBe('redelivered');
    expect(staleHolderReason(holder(lease(9, 4), 'idle', 1_500), fence)).toBe('redelivered');
    expect(staleHolderReason(holder(lease(10, 1), 'active', 60_000), fence)).toBeUndefined();
    expect(staleHolderReason(holder(lease(10, 1), 'idle', 5), fence)).toBeUndefined();
    // A live executor starved of CPU for a second is not fenced.
    expect(staleHolderReason(holder(lease(10, 1), 'idle', 1_200), fence)).toBeUndefined();
    expect(staleHolderReason(holder(lease(10, 3), 'idle', 1_500), fence)).toBe('idle');
    const other = { taskKey: taskLeaseKey('run-2', 'tenant-1'), streamSeq: 3, deliveryCount: 1 };
    expect(staleHolderReason(holder(other, 'idle', 1_000), fence)).toBeUndefined();
    expect(staleHolderReason(holder(other, 'idle in transaction', 6_000), fence)).toBe('idle');
    expect(staleHolderReason({ applicationName: 'psql', state: 'idle', idleMs: 600_000 }, fence)).toBeUndefined();
  });
});

describe('a stale holder of the migration lock', () => {
  const set = migrationSet(FILES);
  const lockKey = advisoryLockKey(DEFAULT_JOURNAL);

  it('is terminated by a newer delivery of its task, which then migrates the tenant; the stale session is gone', async () => {
    const db = await dbs.create();
    const stale = await db.connectTenant({ applicationName: leaseApplicationName('x1', lease(10, 1)) });
    await stale.query(`SELECT pg_advisory_lock(${lockKey})`);
    // The holder's last statement ended more than a second ago (a frozen process).
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const fenced: FencedHolder[] = [];
    const fence: LockFence = { lease: lease(10, 2), ackWaitMs: 1_000, onFenced: (h) => fenced.push(h) };
    const fresh = await db.connectTenant({ applicationName: leaseApplicationName('x2', fence.lease) });
    const report = await new TenantMigrator(fresh, set, HOST, undefined, fence).migrate({
      targetVersion: 2,
      runId: 'run-1',
    });
    expect(report).toMatchObject({ status: 'migrated', applied: [1, 2] });
    expect(fenced).toEqual([expect.objectContaining({ reason: 'redelivered' })]);
    expect(await appliedVersions(fresh)).toEqual([1, 2]);
    // The woken holder cannot go on: its session was ended by the server.
    expect(await rejection(stale.query('SELECT 1'))).toBeInstanceOf(Error);
  });

  it('is fenced as well when the journal exists and the lock is taken by the first batch', async () => {
    const db = await dbs.create();
    const setup = await db.connectTenant();
    await new TenantMigrator(setup, set, HOST).migrate({ targetVersion: 1, runId: 'run-0' });
    const stale = await db.connectTenant({ applicationName: leaseApplicationName('x1', lease(10, 1)) });
    await stale.query(`SELECT pg_advisory_lock(${lockKey})`);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const fenced: FencedHolder[] = [];
    const fence: LockFence = { lease: lease(10, 2), ackWaitMs: 1_000, onFenced: (h) => fenced.push(h) };
    const fresh = await db.connectTenant();
    const report = await new TenantMigrator(fresh, set, HOST, undefined, fence).migrate({
      targetVersion: 2,
      runId: 'run-1',
    });
    expect(report).toMatchObject({ status: 'migrated', applied: [2] });
    expect(fenced).toHaveLength(1);
    expect(await appliedVersions(fresh)).toEqual([1, 2]);
  });

  it('is left alone without a fence, or while its statement runs: the newcomer is `locked`', async () => {
    const db = await dbs.create();
    const holder = await db.connectTenant({ applicationName: leaseApplicationName('x1', lease(10, 1)) });
    await holder.query(`SELECT pg_advisory_lock(${lockKey})`);
    const running = holder.query('SELECT pg_sleep(3)');
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const fresh = await db.connectTenant();
    const fence: LockFence = { lease: lease(10, 2), ackWaitMs: 1_000 };
    expect(
      await rejection(new TenantMigrator(fresh, set, HOST, undefined, fence).migrate({ targetVersion: 2 })),
    ).toBeInstanceOf(LockedError);
    expect(await rejection(new TenantMigrator(fresh, set, HOST).migrate({ targetVersion: 2 }))).toBeInstanceOf(
      LockedError,
    );
    await running;
    expect((await holder.query('SELECT 1 AS one')).rows[0]).toEqual({ one: 1 });
  });
});
