import {
  type JournalEntry,
  JournalMovedError,
  type Migration,
  MigrationSqlError,
  type SluiceError,
} from '@sluice/core';
import type pg from 'pg';

import { downError } from './down-steps.js';
import { GUARD_SQLSTATE, type JournalLocation } from './journal.js';
import { classifyPgError } from './pg-errors.js';
import { runStatementsOneByOne } from './statement-runner.js';
import type { BatchEnds } from './tenant-session.js';
import { undoBatchSql } from './transaction-batch.js';

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
  /** Sends a batch; see `TenantSession.sendBatch`. */
  sendBatch(
    text: string,
    files: readonly Migration[],
    named: (m: Migration) => string,
  ): Promise<{ serverMs: number } | { failure: unknown }>;
  /** Sends one file in a transaction; see `TenantSession.sendInTransaction`. */
  sendInTransaction(
    m: Migration,
    journalChange: string,
    named: (m: Migration) => string,
    onError: (error: SluiceError) => SluiceError,
  ): Promise<number>;
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
  ends: BatchEnds,
): Promise<{ kind: 'committed'; serverMs: number } | { kind: 'nothingRan' }> {
  const parts = {
    journal: session.journal,
    timeoutSettings: (m: Migration) => session.timeoutSettings(m, 'LOCAL'),
    journalDelete: (m: Migration) => `DELETE FROM ${session.table} WHERE version = ${m.version}`,
  };
  const text = undoBatchSql(steps, before, parts, ends.prelude, ends.postlude);
  const sent = await session.sendBatch(text, steps, downFileNamed);
  if ('serverMs' in sent) return { kind: 'committed', serverMs: sent.serverMs };
  const { failure } = sent;
  const code = (failure as { code?: unknown }).code;
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
export function undoInTransaction(session: UndoSession, step: Migration): Promise<number> {
  const rowDeleted = `DELETE FROM ${session.table} WHERE version = ${step.version} RETURNING (extract(epoch FROM clock_timestamp() - now()) * 1000)::integer AS duration_ms`;
  return session.sendInTransaction(step, rowDeleted, downFileNamed, (error) => downError(error, step));
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

/** How a down file is named in an error: `version 5 (down file 0005_x.down.sql)`. */
function downFileNamed(step: Migration): string {
  return `version ${step.version} (down file ${step.file})`;
}
