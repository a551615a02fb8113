import type { MigrationSet } from '@sluice/core';
import pg from 'pg';

const LOCK_KEY = 424_242;

/**
 * The per-tenant procedure of a careful hand-written script: one connection, an advisory lock,
 * a journal table, then each pending file in its own transaction with its journal row
 * (BEGIN, the file, INSERT, COMMIT: one statement per round trip, as such scripts are written),
 * `no-transaction` files statement by statement. Returns the versions applied.
 */
export async function migrateTenantNaively(databaseUrl: string, set: MigrationSet): Promise<number[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(`SELECT pg_advisory_lock(${LOCK_KEY})`);
    await client.query(
      'CREATE TABLE IF NOT EXISTS naive_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set(
      (await client.query<{ version: number }>('SELECT version FROM naive_migrations')).rows.map((r) => r.version),
    );
    const applied: number[] = [];
    for (const m of set.migrations) {
      if (done.has(m.version)) continue;
      if (m.transactional) {
        await client.query('BEGIN');
        try {
          await client.query(m.sql);
          await client.query('INSERT INTO naive_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK');
          throw error;
        }
      } else {
        for (const statement of m.statements) await client.query(statement);
        await client.query('INSERT INTO naive_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      }
      applied.push(m.version);
    }
    await client.query(`SELECT pg_advisory_unlock(${LOCK_KEY})`);
    return applied;
  } finally {
    await client.end();
  }
}

/** Runs `work` over every item with at most `concurrency` at once (a worker pool, no broker). */
export async function runPool<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/**
 * The careful script: the same procedure with one round trip per step that can share one —
 * lock, journal creation and read together, each file with its journal row as one
 * `BEGIN; file; INSERT; COMMIT` message, then the unlock.
 */
export async function migrateTenantCarefully(databaseUrl: string, set: MigrationSet): Promise<number[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const results = (await client.query(
      `SELECT pg_advisory_lock(${LOCK_KEY}); CREATE TABLE IF NOT EXISTS careful_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now()); SELECT version FROM careful_migrations`,
    )) as unknown as Array<pg.QueryResult<{ version: number }>>;
    const done = new Set(results[2]!.rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of set.migrations) {
      if (done.has(m.version)) continue;
      const row = `INSERT INTO careful_migrations (version, name) VALUES (${m.version}, ${client.escapeLiteral(m.name)})`;
      if (m.transactional) {
        try {
          await client.query(`BEGIN;\n${m.sql}\n;\n${row};\nCOMMIT`);
        } catch (error) {
          await client.query('ROLLBACK');
          throw error;
        }
      } else {
        for (const statement of m.statements) await client.query(statement);
        await client.query(row);
      }
      applied.push(m.version);
    }
    await client.query(`SELECT pg_advisory_unlock(${LOCK_KEY})`);
    return applied;
  } finally {
    await client.end();
  }
}
