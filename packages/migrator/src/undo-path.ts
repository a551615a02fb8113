import {
  type JournalEntry,
  JournalMovedError,
  type LockedError,
  type Migration,
  MigrationSqlError,
} from '@sluice/core';
import type pg from 'pg';

import { downError } from './down-steps.js';
import { GUARD_SQLSTATE, type JournalLocation } from './journal.js';
import { classifyPgError } from './pg-errors.js';
import { runStatementsOneByOne } from './statement-runner.js';
import { committedVersions, undoBatchSql } from './transaction-batch.js';

/**
 * What the way back needs of the migrator's session: its connection, its journal, whether it holds
 * the migration lock, and how it reads the journal back after a failed message. Met by
 * `TenantSession`, which keeps the lock's bookkeeping; the down files' SQL lives here.
 */
export interface UndoSession {
  readonly client: pg.ClientBase;
  /** `host:port`, for host-level errors. */
  readonly host: string;
  readonly journal: JournalLocation;
  /** The journal table, quoted. */
  readonly table: string;
  /** Whether this session holds the migration lock now (read again by `recover`). */
  readonly lockHeld: boolean;
  /** After a failed message: ends its transaction, learns whether the lock is held and what the journal holds. */
  recover(): Promise<{ entries: JournalEntry[] }>;
  /** Whether the session is inside a transaction after a failed message. */
  transactionOpen(): Promise<boolean>;
  lockedError(): LockedError;
  /** Runs SQL outside a down file, errors classified. */
  query(text: string): Promise<unknown>;
  /** `SET LOCAL|SESSION` statements of a file's own timeouts. */
  timeoutSettings(m: Migration, scope: 'LOCAL' | 'SESSION'): string[];
}

/** Sends one batch of down files; on an error names the version whose down file failed (the first still in the journal). */
export async function undoBatch(
  session: UndoSession,
  steps: Migration[],
  before: JournalEntry[],
  prelude: string[],
  postlude: string[],
): Promise<{ kind: 'committed'; serverMs: number } | { kind: 'nothingRan' }> {
  const text = undoBatchSql(
    steps,
    before,
    {
      journal: session.journal,
      timeoutSettings: (m) => session.timeoutSettings(m, 'LOCAL'),
      journalDelete: (m) => `DELETE FROM ${session.table} WHERE version = ${m.version}`,
    },
    prelude,
    postlude,
  );
  let failure: unknown;
  try {
    const committed = committedVersions(asResults(await session.client.query(text)));
    if (committed.length === steps.length)
      return { kind: 'committed', serverMs: sum(committed.map((c) => c.serverMs)) };
    const culprit = steps[committed.length]!;
    await session.recover();
    throw new MigrationSqlError(
      `version ${culprit.version} (down file ${culprit.file}): the file does not end cleanly (an unterminated string, comment or dollar quote?)`,
      undefined,
      { version: culprit.version },
    );
  } catch (error) {
    if (error instanceof MigrationSqlError) throw error;
    failure = error;
  }
  const code = (failure as { code?: unknown }).code;
  if (code === GUARD_SQLSTATE.locked) {
    if (await session.transactionOpen().catch(() => false))
      await session.client.query('ROLLBACK').catch(() => undefined);
    throw session.lockedError();
  }
  let after: { entries: JournalEntry[] };
  try {
    after = await session.recover();
  } catch {
    throw downError(classifyPgError(failure, session.host, steps[0]!.version), steps[0]!);
  }
  if (!session.lockHeld) return { kind: 'nothingRan' };
  if (code === GUARD_SQLSTATE.journalMoved) {
    throw new JournalMovedError(
      `version ${String((failure as { detail?: unknown }).detail)} not undone: the journal changed since it was read (another runner migrated this database); a retry reads it again`,
      { cause: failure },
    );
  }
  const inJournal = new Set(after.entries.map((e) => e.version));
  const failed = steps.find((m) => inJournal.has(m.version)) ?? steps[0]!;
  throw downError(classifyPgError(failure, session.host, failed.version), failed);
}

/** One down file with the deletion of its journal row, in one transaction and one round trip. */
export async function undoInTransaction(session: UndoSession, step: Migration): Promise<number> {
  const text = [
    'BEGIN',
    ...session.timeoutSettings(step, 'LOCAL'),
    `${step.sql}\n`,
    `DELETE FROM ${session.table} WHERE version = ${step.version} RETURNING (extract(epoch FROM clock_timestamp() - now()) * 1000)::integer AS duration_ms`,
    'COMMIT',
  ].join(';\n');
  let results: pg.QueryResult[];
  try {
    results = asResults(await session.client.query(text));
  } catch (error) {
    await session.client.query('ROLLBACK').catch(() => undefined);
    throw downError(classifyPgError(error, session.host, step.version), step);
  }
  if (results.at(-1)?.command !== 'COMMIT') {
    await session.client.query('ROLLBACK').catch(() => undefined);
    throw new MigrationSqlError(
      `version ${step.version} (down file ${step.file}): the file does not end cleanly (an unterminated string, comment or dollar quote?)`,
      undefined,
      { version: step.version },
    );
  }
  const serverMs = Number((results.at(-2)?.rows[0] as { duration_ms?: unknown } | undefined)?.duration_ms);
  return Number.isFinite(serverMs) ? serverMs : 0;
}

/**
 * A `no-transaction` down file, statement by statement, tracked like its up file: the version's
 * row is `dirty` from before its first statement until its last one has run, then deleted. A
 * failure after the first statement leaves it dirty (the tenant is refused until `sluice repair`).
 */
export async function undoWithoutTransaction(session: UndoSession, step: Migration): Promise<number> {
  const settings = session.timeoutSettings(step, 'SESSION');
  await session.query(
    [`UPDATE ${session.table} SET status = 'dirty' WHERE version = ${step.version}`, ...settings].join(';\n'),
  );
  const durationMs = await runStatementsOneByOne(
    session.client,
    step.statements,
    settings.length > 0,
    async (error, index) => {
      const classified = classifyPgError(error, session.host, step.version);
      if (index === 0 && classified.transient) {
        // Nothing ran: the version stands as it was, so a retry starts clean.
        await session.client
          .query(`UPDATE ${session.table} SET status = 'applied' WHERE version = ${step.version}`)
          .catch(() => undefined);
        return classified;
      }
      return new MigrationSqlError(
        `version ${step.version} (down file ${step.file}, no-transaction) failed at statement ${index + 1} of ${step.statements.length}; the tenant is marked dirty: ${classified.message}`,
        (classified as { sqlState?: string }).sqlState,
        { version: step.version, cause: error },
      );
    },
  );
  await session.query(
    [
      `DELETE FROM ${session.table} WHERE version = ${step.version}`,
      ...(settings.length > 0 ? ['RESET lock_timeout', 'RESET statement_timeout'] : []),
    ].join(';\n'),
  );
  return durationMs;
}

function asResults(r: pg.QueryResult | pg.QueryResult[]): pg.QueryResult[] {
  return Array.isArray(r) ? r : [r];
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
