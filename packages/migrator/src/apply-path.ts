import { type JournalEntry, JournalMovedError, type Migration, MigrationSqlError } from '@sluice/core';

import { GUARD_SQLSTATE } from './journal.js';
import { classifyPgError } from './pg-errors.js';
import { runStatementsOneByOne } from './statement-runner.js';
import { asResults, type BatchEnds, type JournalState, type TenantSession } from './tenant-session.js';
import { transactionBatchSql } from './transaction-batch.js';

/** Who applies a file, recorded in its journal row: a redelivered task recognises its own work by `runId`. */
export interface JournalStamp {
  runId?: string;
  executorId?: string;
}

/**
 * Sends one batch of up files. On an error, reads back (in one round trip, after a ROLLBACK if a
 * transaction is open) whether the lock is held and what the journal holds, and maps the error
 * to the file that failed: the first file of the batch not in the journal.
 */
export async function applyBatch(
  session: TenantSession,
  files: Migration[],
  before: JournalEntry[],
  ends: BatchEnds,
  stamp: JournalStamp,
): Promise<{ kind: 'committed'; serverMs: number } | { kind: 'nothingRan' }> {
  const parts = {
    journal: session.journal,
    timeoutSettings: (m: Migration) => session.timeoutSettings(m, 'LOCAL'),
    journalInsert: (m: Migration) => journalInsert(session, m, 'applied', stamp),
  };
  const text = transactionBatchSql(files, before, parts, ends.prelude, ends.postlude);
  const sent = await session.sendBatch(text, files, (m) => `version ${m.version}`);
  if ('serverMs' in sent) return { kind: 'committed', serverMs: sent.serverMs };
  const { failure } = sent;
  const code = (failure as { code?: unknown }).code;
  let after: JournalState;
  try {
    after = await session.recover();
  } catch {
    throw classifyPgError(failure, session.host, files[0]!.version);
  }
  // The lock guard opens the first batch: without the lock, the message did not even parse.
  if (!session.lockHeld) return { kind: 'nothingRan' };
  // The journal's creation failed (a permission?): no file is to blame.
  if (!after.present || !after.current) throw classifyPgError(failure, session.host);
  const inJournal = new Set(after.entries.map((e) => e.version));
  if (code === GUARD_SQLSTATE.journalMoved) {
    const guardOf = files.findIndex((m) => m.version === Number((failure as { detail?: unknown }).detail));
    const previous = files[guardOf - 1];
    // The file before the guard did not commit, yet the guard ran: that file swallowed its own COMMIT.
    if (previous && !inJournal.has(previous.version)) {
      throw new MigrationSqlError(
        `version ${previous.version}: the file does not end cleanly (an unterminated string, comment or dollar quote?)`,
        undefined,
        { version: previous.version, cause: failure },
      );
    }
    throw new JournalMovedError(
      `version ${files[Math.max(0, guardOf)]!.version} not applied: the journal changed since it was read (another runner migrated this database); a retry reads it again`,
      { cause: failure },
    );
  }
  const failedAt = files.findIndex((m) => !inJournal.has(m.version));
  const failed = files[Math.max(0, failedAt)]!;
  const classified = classifyPgError(failure, session.host, failed.version);
  if (failedAt === 0 && !classified.transient) return { kind: 'nothingRan' };
  throw classified;
}

/** Applies one file with its journal row in one transaction and one round trip; returns the server's time in ms. */
export function applyInTransaction(session: TenantSession, m: Migration, stamp: JournalStamp): Promise<number> {
  const journalRow = `${journalInsert(session, m, 'applied', stamp)} RETURNING duration_ms`;
  return session.sendInTransaction(m, journalRow, (f) => `version ${f.version}`);
}

/**
 * Applies a `no-transaction` file statement by statement; returns the statements' time in ms
 * (network included). Its dirty row goes with the file's session settings, its completion with
 * their reset: two round trips around the statements, no more.
 */
export async function applyWithoutTransaction(
  session: TenantSession,
  m: Migration,
  stamp: JournalStamp,
): Promise<number> {
  const statements = m.statements;
  // Only a concurrent index build can leave an invalid index behind: no catalog scan otherwise.
  const buildsConcurrently = /\bconcurrently\b/i.test(m.sql);
  const invalidBefore = buildsConcurrently ? await invalidIndexes(session) : [];
  const settings = session.timeoutSettings(m, 'SESSION');
  await session.query([journalInsert(session, m, 'dirty', stamp), ...settings].join(';\n'));
  const durationMs = await runStatementsOneByOne(
    session.client,
    statements,
    settings.length > 0,
    async (error, index) => {
      const classified = classifyPgError(error, session.host, m.version);
      // CREATE INDEX CONCURRENTLY commits its catalog entry before it waits: a failed build
      // leaves an invalid index behind, which IF NOT EXISTS would later skip. Then it is dirty.
      const leftovers = buildsConcurrently
        ? (await invalidIndexes(session).catch(() => [])).filter((name) => !invalidBefore.includes(name))
        : [];
      if (leftovers.length > 0) {
        return new MigrationSqlError(
          `version ${m.version} (no-transaction) failed and left invalid index ${leftovers.join(', ')}; the tenant is marked dirty (drop the index, then sluice repair): ${classified.message}`,
          (classified as { sqlState?: string }).sqlState,
          { version: m.version, cause: error },
        );
      }
      if (index === 0 && classified.transient) {
        // Nothing ran: forget the attempt so a retry starts clean.
        await session.client
          .query(`DELETE FROM ${session.table} WHERE version = ${m.version} AND status = 'dirty'`)
          .catch(() => undefined);
        return classified;
      }
      return new MigrationSqlError(
        `version ${m.version} (no-transaction) failed at statement ${index + 1} of ${statements.length}; the tenant is marked dirty: ${classified.message}`,
        'sqlState' in classified ? (classified as { sqlState?: string }).sqlState : undefined,
        { version: m.version, cause: error },
      );
    },
  );
  await session.query(
    [
      `UPDATE ${session.table} SET status = 'applied', applied_at = now(), duration_ms = ${durationMs} WHERE version = ${m.version}`,
      ...(settings.length > 0 ? ['RESET lock_timeout', 'RESET statement_timeout'] : []),
    ].join(';\n'),
  );
  return durationMs;
}

/** The journal entry of a file just applied, as a read would find it. */
export function appliedEntry(m: Migration, stamp: JournalStamp): JournalEntry {
  return { version: m.version, name: m.name, checksum: m.checksum, status: 'applied', runId: stamp.runId ?? null };
}

/** Names of the invalid indexes in the database (left by failed concurrent builds). */
async function invalidIndexes(session: TenantSession): Promise<string[]> {
  const [result] = asResults(
    await session.query('SELECT indexrelid::regclass::text AS name FROM pg_index WHERE NOT indisvalid ORDER BY 1'),
  );
  return (result!.rows as Array<{ name: string }>).map((r) => r.name);
}

function journalInsert(session: TenantSession, m: Migration, status: 'applied' | 'dirty', stamp: JournalStamp): string {
  // duration_ms: time since the transaction began (now() is the transaction start).
  // down_checksum: the down file beside it now, so a rollback can tell whether it changed since.
  return `INSERT INTO ${session.table} (version, name, checksum, status, duration_ms, run_id, executor_id, down_checksum) VALUES (${m.version}, ${session.lit(m.name)}, ${session.lit(m.checksum)}, '${status}', (extract(epoch FROM clock_timestamp() - now()) * 1000)::integer, ${session.lit(stamp.runId ?? null)}, ${session.lit(stamp.executorId ?? null)}, ${session.lit(m.down?.checksum ?? null)})`;
}
