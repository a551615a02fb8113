import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { createMigrationSet, type MigrationSet, type SqlParser } from '@sluice/core';
import { loadSqlParser } from '@sluice/sql-parser';
import pg from 'pg';

import { type ConnectOptions, connectTenant } from '../../src/connect.js';
import { type JournalLocation } from '../../src/journal.js';
import { TenantMigrator } from '../../src/tenant-migrator.js';

const parser = await loadSqlParser();

/** The machine's Postgres: trust auth, user postgres. Tests only ever create and drop their own databases on it. */
export const SERVER_URL = 'postgres://postgres@127.0.0.1:5432';
export const HOST = '127.0.0.1:5432';

export interface TestDatabase {
  name: string;
  url: string;
  /** A plain connection, ended by `dropAll`. */
  connect(options?: Omit<pg.ClientConfig, 'connectionString'>): Promise<pg.Client>;
  /** A connection the way the executor opens one (`connectTenant`), also ended by `dropAll`. */
  connectTenant(options?: Partial<ConnectOptions>): Promise<pg.Client>;
}

export interface TestDatabases {
  /** A new empty database, named after the file's label and a random suffix. */
  create(): Promise<TestDatabase>;
  /** Ends every connection opened through `connect` and drops every database created (WITH FORCE). */
  dropAll(): Promise<void>;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: `${SERVER_URL}/postgres` });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Databases for one test file: a random prefix so concurrent files and runs never collide. */
export function testDatabases(label: string): TestDatabases {
  const prefix = `sluice_mig_${label}_${randomBytes(3).toString('hex')}`;
  const names: string[] = [];
  const clients: pg.Client[] = [];
  return {
    async create() {
      const name = `${prefix}_${names.length + 1}`;
      await admin((c) => c.query(`CREATE DATABASE "${name}" TEMPLATE template0`));
      names.push(name);
      const url = `${SERVER_URL}/${name}`;
      return {
        name,
        url,
        async connect(options = {}) {
          const client = new pg.Client({ ...options, connectionString: url });
          // A DROP ... WITH (FORCE) ends the session under us; that is expected, not a crash.
          client.on('error', () => undefined);
          await client.connect();
          clients.push(client);
          return client;
        },
        async connectTenant(options = {}) {
          const client = await connectTenant({
            databaseUrl: url,
            host: HOST,
            connectTimeoutMs: 5_000,
            lockTimeoutMs: 30_000,
            statementTimeoutMs: 60_000,
            ...options,
          });
          clients.push(client);
          return client;
        },
      };
    },
    async dropAll() {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      await admin(async (c) => {
        for (const name of names) await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      });
    },
  };
}

/** An in-memory migration set from `{ '0001_name.sql': sql }`, read by PostgreSQL's parser (or another grammar). */
export function migrationSet(files: Record<string, string>, grammar: SqlParser = parser): MigrationSet {
  return createMigrationSet(
    Object.entries(files).map(([file, sql]) => ({ file, sql })),
    grammar,
  );
}

/**
 * The grammar of a newer PostgreSQL than the server's: files holding `marker` parse as one
 * statement, so the server is the first to refuse them (a set linted with a newer parser, version skew).
 */
export function newerGrammar(marker: string): SqlParser {
  return {
    parse: (sql) =>
      sql.includes(marker)
        ? {
            ok: true,
            statements: [{ tree: { SelectStmt: {} }, start: 0, end: sql.trimEnd().replace(/;$/, '').length }],
          }
        : parser.parse(sql),
  };
}

export function migrator(client: pg.ClientBase, set: MigrationSet, journal?: JournalLocation): TenantMigrator {
  return new TenantMigrator(client, set, HOST, journal);
}

/** Writes migration files into a fresh temp folder; `remove` deletes it. */
export async function migrationDir(files: Record<string, string>): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-migrations-'));
  await Promise.all(Object.entries(files).map(([file, sql]) => writeFile(path.join(dir, file), sql)));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface JournalRowView {
  version: number;
  status: string;
  checksum: string;
  run_id: string | null;
  executor_id: string | null;
  baseline: boolean;
  duration_ms: number | null;
}

/** The journal as a test reads it (the current shape). */
export async function journalRows(
  client: pg.ClientBase,
  table = 'public.sluice_migrations',
): Promise<JournalRowView[]> {
  const result = await client.query<JournalRowView & { version: string }>(
    `SELECT version::text AS version, status, checksum, run_id, executor_id, baseline, duration_ms FROM ${table} ORDER BY version`,
  );
  return result.rows.map((r) => ({ ...r, version: Number(r.version) }));
}

export async function appliedVersions(client: pg.ClientBase, table?: string): Promise<number[]> {
  return (await journalRows(client, table)).filter((r) => r.status === 'applied').map((r) => r.version);
}

/** How often each version ran, for sets whose files each insert their version into an `effects` table. */
export async function effectCounts(client: pg.ClientBase): Promise<Array<{ version: number; n: number }>> {
  return (
    await client.query<{ version: number; n: number }>(
      'SELECT version, count(*)::int AS n FROM effects GROUP BY version ORDER BY version',
    )
  ).rows;
}

export async function relationExists(client: pg.ClientBase, name: string): Promise<boolean> {
  const result = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::text AS oid', [name]);
  return result.rows[0]?.oid !== null;
}

/** Advisory locks held in a database by any session: the migration lock must never outlive a run. */
export async function advisoryLocks(client: pg.ClientBase): Promise<number> {
  const result = await client.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
  );
  return result.rows[0]!.n;
}

/** The error a promise rejects with; fails the test if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

/** A localhost port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
