import type { JournalEntry, Migration } from '@sluice/core';

import { journalDigest, journalGuardSql, type JournalLocation } from './journal.js';

/** The statements a batch wraps around each file, built by the migrator (journal row, timeouts). */
export interface BatchParts {
  journal: JournalLocation;
  /** `SET LOCAL` statements of a file's own timeouts. */
  timeoutSettings: (m: Migration) => string[];
  /** The file's journal row; the batch appends a `RETURNING` that names the version it committed. */
  journalInsert: (m: Migration) => string;
}

/**
 * One simple-query message that applies `files` in order, each in its own transaction with its
 * journal row: `BEGIN; <journal guard>; <file>; <journal row>; COMMIT; BEGIN; …`. The server stops
 * at the first error, so the files before a failing one stay committed and none after it runs.
 * Each guard raises `SL002` unless the journal holds exactly what the plan expects before that
 * file: the rows read (`before`) plus the files committed ahead of it in the batch.
 * `prelude` (lock guard, journal creation) goes first, `postlude` (unlock) last.
 */
export function transactionBatchSql(
  files: readonly Migration[],
  before: readonly JournalEntry[],
  parts: BatchParts,
  prelude: readonly string[],
  postlude: readonly string[],
): string {
  const expected = before.map((e) => ({ version: e.version, status: e.status, checksum: e.checksum }));
  const statements = [...prelude];
  for (const m of files) {
    statements.push(
      'BEGIN',
      journalGuardSql(parts.journal, journalDigest(expected), m.version),
      ...parts.timeoutSettings(m),
      // The newline guards against a file that ends in a -- comment.
      `${m.sql}\n`,
      `${parts.journalInsert(m)} RETURNING version::text AS sluice_version, duration_ms AS sluice_duration_ms`,
      'COMMIT',
    );
    expected.push({ version: m.version, status: 'applied', checksum: m.checksum });
  }
  statements.push(...postlude);
  return statements.join(';\n');
}

interface ResultLike {
  command: string;
  fields: Array<{ name: string }>;
  rows: unknown[];
}

/**
 * What a batch committed, from its results: every journal row it wrote must be followed by its
 * COMMIT. A file with an unterminated string or comment could swallow the statements after it;
 * then the versions returned stop short of the files sent. Returns the server's time per version.
 */
export function committedVersions(results: readonly ResultLike[]): Array<{ version: number; serverMs: number }> {
  const out: Array<{ version: number; serverMs: number }> = [];
  for (const [i, r] of results.entries()) {
    if (r.fields.length !== 2 || r.fields[0]?.name !== 'sluice_version' || r.fields[1]?.name !== 'sluice_duration_ms')
      continue;
    if (results[i + 1]?.command !== 'COMMIT') break;
    const row = r.rows[0] as { sluice_version: string; sluice_duration_ms: number | null } | undefined;
    if (!row) break;
    const serverMs = Number(row.sluice_duration_ms);
    out.push({ version: Number(row.sluice_version), serverMs: Number.isFinite(serverMs) ? serverMs : 0 });
  }
  return out;
}

/** What a batch of down files wraps around each one: the version's journal row is deleted with it. */
export interface UndoBatchParts {
  journal: JournalLocation;
  /** `SET LOCAL` statements of the down file's own timeouts. */
  timeoutSettings: (step: Migration) => string[];
  /** Deletes the version's journal row; the batch appends the same `RETURNING` as an apply's. */
  journalDelete: (step: Migration) => string;
}

/**
 * The way back, in one message: for each step (a version's down file, newest version first),
 * `BEGIN; <journal guard>; <down file>; DELETE <its journal row>; COMMIT`. The same guarantees as
 * {@link transactionBatchSql}: the server stops at the first error, so versions undone before a
 * failing down file stay undone and none after it runs, and each guard proves the journal holds
 * exactly what the plan expects at that point (the rows read, less the versions undone ahead).
 * Each step is a {@link Migration} whose file, SQL and directives are the down file's.
 */
export function undoBatchSql(
  steps: readonly Migration[],
  before: readonly JournalEntry[],
  parts: UndoBatchParts,
  prelude: readonly string[],
  postlude: readonly string[],
): string {
  let expected = before.map((e) => ({ version: e.version, status: e.status, checksum: e.checksum }));
  const statements = [...prelude];
  for (const step of steps) {
    statements.push(
      'BEGIN',
      journalGuardSql(parts.journal, journalDigest(expected), step.version),
      ...parts.timeoutSettings(step),
      // The newline guards against a file that ends in a -- comment.
      `${step.sql}\n`,
      `${parts.journalDelete(step)} RETURNING version::text AS sluice_version, (extract(epoch FROM clock_timestamp() - now()) * 1000)::integer AS sluice_duration_ms`,
      'COMMIT',
    );
    expected = expected.filter((e) => e.version !== step.version);
  }
  statements.push(...postlude);
  return statements.join(';\n');
}

/** A batch's bounds: the server parses a whole message before running any of it. */
const BATCH_MAX_FILES = 64;
const BATCH_MAX_SQL_CHARS = 4 * 1024 * 1024;

/**
 * Splits pending files into runs of transactional ones (at most BATCH_MAX_FILES files and
 * BATCH_MAX_SQL_CHARS of SQL each) and single `no-transaction` ones, in order.
 */
export function splitTransactional(files: readonly Migration[]): Migration[][] {
  const out: Migration[][] = [];
  let chars = 0;
  for (const m of files) {
    const last = out.at(-1);
    if (
      m.transactional &&
      last?.[0]?.transactional &&
      last.length < BATCH_MAX_FILES &&
      chars + m.sql.length <= BATCH_MAX_SQL_CHARS
    ) {
      last.push(m);
      chars += m.sql.length;
    } else {
      out.push([m]);
      chars = m.sql.length;
    }
  }
  return out;
}
