import { createServer, type Socket } from 'node:net';

import { DatabaseError, HostUnavailableError } from '@sluice/core';
import { afterAll, describe, expect, it } from 'vitest';

import { type ConnectOptions, connectTenant } from '../src/connect.js';
import { isHostLevel } from '../src/pg-errors.js';
import {
  appliedVersions,
  closedPort,
  migrationSet,
  migrator,
  rejection,
  relationExists,
  SERVER_URL,
  testDatabases,
  waitFor,
} from './support/postgres.js';

const dbs = testDatabases('connect');
afterAll(() => dbs.dropAll());

function options(databaseUrl: string, host: string, overrides: Partial<ConnectOptions> = {}): ConnectOptions {
  return { databaseUrl, host, connectTimeoutMs: 2_000, lockTimeoutMs: 1_000, statementTimeoutMs: 10_000, ...overrides };
}

describe('connection errors', () => {
  it('a closed port is a transient, host-level HostUnavailableError', async () => {
    const port = await closedPort();
    const host = `127.0.0.1:${port}`;

    const error = await rejection(connectTenant(options(`postgres://postgres@${host}/postgres`, host)));

    expect(error).toBeInstanceOf(HostUnavailableError);
    expect(error).toMatchObject({ transient: true, host, code: 'host_unavailable' });
    expect(isHostLevel(error)).toBe(true);
    expect((error as Error).message).toContain(host);
    expect((error as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('a server that accepts but never answers times out as a host-level error after connectTimeoutMs', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(silent.address() as { port: number }).port}`;
    try {
      const started = performance.now();
      const error = await rejection(
        connectTenant(options(`postgres://postgres@${host}/postgres`, host, { connectTimeoutMs: 300 })),
      );
      expect(performance.now() - started).toBeLessThan(3_000);
      expect(error).toBeInstanceOf(HostUnavailableError);
      expect(isHostLevel(error)).toBe(true);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('a database or role that does not exist is permanent and not held against the host', async () => {
    const missingDb = await rejection(
      connectTenant(options(`${SERVER_URL}/sluice_no_such_database_${Date.now()}`, '127.0.0.1:5432')),
    );
    expect(missingDb).toBeInstanceOf(DatabaseError);
    expect(missingDb).toMatchObject({ transient: false, sqlState: '3D000' });
    expect(isHostLevel(missingDb)).toBe(false);

    const missingRole = await rejection(
      connectTenant(options('postgres://sluice_no_such_role@127.0.0.1:5432/postgres', '127.0.0.1:5432')),
    );
    expect(missingRole).toMatchObject({ transient: false, sqlState: '28000' });
    expect(isHostLevel(missingRole)).toBe(false);
  });
});

describe('a connection', () => {
  it('starts with the configured timeouts and application name (set in the startup packet)', async () => {
    const tenant = await dbs.create();
    const client = await tenant.connectTenant({
      lockTimeoutMs: 1_500,
      statementTimeoutMs: 45_000,
      applicationName: 'sluice-test',
    });
    const settings = await client.query<{ lock_timeout: string; statement_timeout: string; application_name: string }>(
      "SELECT current_setting('lock_timeout') AS lock_timeout, current_setting('statement_timeout') AS statement_timeout, current_setting('application_name') AS application_name",
    );
    expect(settings.rows[0]).toEqual({
      lock_timeout: '1500ms',
      statement_timeout: '45s',
      application_name: 'sluice-test',
    });
  });

  it('terminated by the server mid-migration fails as a transient host error and leaves the version unapplied', async () => {
    const tenant = await dbs.create();
    const client = await tenant.connectTenant({ applicationName: 'sluice-terminated' });
    const observer = await tenant.connect();
    const set = migrationSet({
      '0001_one.sql': 'CREATE TABLE one (id int);',
      '0002_slow.sql': 'CREATE TABLE slow (id int);\nSELECT pg_sleep(10);',
    });
    await migrator(client, set).migrate({ targetVersion: 1 });

    const running = rejection(migrator(client, set).migrate({ targetVersion: 2 }));
    const findBackend =
      "SELECT pid FROM pg_stat_activity WHERE application_name = 'sluice-terminated' AND query LIKE '%pg_sleep%' AND state = 'active'";
    await waitFor(
      async () => (await observer.query(findBackend)).rowCount === 1,
      10_000,
      'the migration to start sleeping',
    );
    await observer.query(`SELECT pg_terminate_backend(pid) FROM (${findBackend}) b`);

    const error = await running;
    expect(error).toBeInstanceOf(HostUnavailableError);
    expect(error).toMatchObject({ transient: true, sqlState: '57P01' });
    expect(await appliedVersions(observer)).toEqual([1]);
    expect(await relationExists(observer, 'slow')).toBe(false);
  });
});
