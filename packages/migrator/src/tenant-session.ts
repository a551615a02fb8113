import { type JournalEntry, LockedError, type Migration, MigrationSqlError, type SluiceError } from '@sluice/core';
import type pg from 'pg';

import {
  advisoryLockKey,
  ensureJournalSql,
  GUARD_SQLSTATE,
  hasCurrentShape,
  type JournalLocation,
  journalTable,
  lockGuardSql,
  lockHeldSql,
  readJournalPlainSql,
  readJournalStateSql,
} from './journal.js';
import type { JournalRead } from './journal-reads.js';
import { type LockFence, takeOverExpiredLock } from './lock-fencing.js';
import { inSpan } from './migration-tracing.js';
import { classifyPgError, isMissingRelationError } from './pg-errors.js';
import { committedVersions } from './transaction-batch.js';

interface JournalRow {
  version: string;
  name: string;
  checksum: string;
  /** NULL in a journal from before the column existed: its rows are all applied ones. */
  status: 'applied' | 'dirty' | null;
  run_id: string | null;
  down_checksum: string | null;
}

/** The journal as one error-free read finds it. */
export interface JournalState {
  /** The table exists. */
  present: boolean;
  /** It has every column of the current shape (else `ensureJournalSql` must run first). */
  current: boolean;
  entries: JournalEntry[];
}

/** What opens and closes a batch sent under the lock: see `TenantSession.batchEnds`. */
export interface BatchEnds {
  prelude: string[];
  postlude: string[];
}

/**
 * One tenant's connection as the migrator uses it: the journal read in one round trip that raises
 * no error on the server, the migration lock (an advisory try-lock) and whether this session holds
 * it now, and what a failed message leaves behind. The forward path (`apply-path.ts`), the way
 * back (`undo-path.ts`, through `UndoSession`) and the journal's repairs all go through it, so the
 * lock's bookkeeping is in one place: an unlock never warns on the server.
 */
export class TenantSession {
  readonly lockKey: string;
  /** The journal table, quoted. */
  readonly table: string;
  /** Whether this session holds the migration lock now. */
  lockHeld = false;

  constructor(
    readonly client: pg.ClientBase,
    /** `host:port`, for host-level errors. */
    readonly host: string,
    readonly journal: JournalLocation,
  ) {
    this.lockKey = advisoryLockKey(journal);
    this.table = journalTable(journal);
  }

  /** The journal's existence, shape and rows in one round trip that raises no error on the server. */
  async readJournalState(prefix = ''): Promise<JournalState & { extra: pg.QueryResult[] }> {
    const results = asResults(await this.query(`${prefix}${readJournalStateSql(this.journal)}`));
    const [flags, rows] = results.slice(-2) as [pg.QueryResult, pg.QueryResult];
    const { present, current } = flags.rows[0] as { present: boolean; current: boolean };
    return { present, current, entries: (rows.rows as JournalRow[]).map(toEntry), extra: results.slice(0, -2) };
  }

  /**
   * The lockless first read, the way `how` says (see journal-reads.ts): `probe` is
   * {@link readJournalState}; `plain` a `SELECT *`, where a missing table (or schema) is an error
   * on the server and `present: false` here.
   */
  async readJournalFirst(how: JournalRead): Promise<JournalState> {
    if (how === 'probe') return this.readJournalState();
    let result: pg.QueryResult;
    try {
      result = asResults(await this.query(readJournalPlainSql(this.journal)))[0]!;
    } catch (error) {
      if (isMissingRelationError(error)) return { present: false, current: false, entries: [] };
      throw error;
    }
    const current = hasCurrentShape(result.fields.map((f) => f.name));
    return { present: true, current, entries: (result.rows as JournalRow[]).map(toEntry) };
  }

  /**
   * What opens and closes a batch sent under the lock (see transaction-batch.ts). The first opens
   * with the lock guard, and with the journal's creation when the lockless read (`known`) found it
   * missing or of an old shape — in its own transaction: statements before a BEGIN in one message
   * would join the first file's. The last closes with the unlock.
   */
  batchEnds(known: Pick<JournalState, 'present' | 'current'>, first: boolean, last: boolean): BatchEnds {
    const prelude = !first
      ? []
      : known.present && known.current
        ? [lockGuardSql(this.journal)]
        : ['BEGIN', lockGuardSql(this.journal), ensureJournalSql(this.journal, known.present), 'COMMIT'];
    const postlude = last ? [`SELECT pg_advisory_unlock(${this.lockKey}) AS sluice_unlocked`] : [];
    return { prelude, postlude };
  }

  /**
   * Sends a batch message (transaction-batch.ts) of `files`, either way. Every file committed: the
   * server's time. A file that swallowed what followed it (an unterminated string, comment or
   * dollar quote): a MigrationSqlError that names it (`named`). The lock guard raised: a
   * LockedError, after ending the transaction it may have raised in (the journal's creation). Any
   * other error is handed back, for the caller to read back what ran and name the file that failed.
   */
  async sendBatch(
    text: string,
    files: readonly Migration[],
    named: (m: Migration) => string,
  ): Promise<{ serverMs: number } | { failure: unknown }> {
    let failure: unknown;
    try {
      const committed = committedVersions(asResults(await this.client.query(text)));
      if (committed.length === files.length) return { serverMs: committed.reduce((a, c) => a + c.serverMs, 0) };
      const culprit = files[committed.length]!;
      await this.recover();
      throw new MigrationSqlError(
        `${named(culprit)}: the file does not end cleanly (an unterminated string, comment or dollar quote?)`,
        undefined,
        { version: culprit.version },
      );
    } catch (error) {
      if (error instanceof MigrationSqlError) throw error;
      failure = error;
    }
    if ((failure as { code?: unknown }).code === GUARD_SQLSTATE.locked) {
      if (await this.transactionOpen().catch(() => false)) await this.client.query('ROLLBACK').catch(() => undefined);
      throw this.lockedError();
    }
    return { failure };
  }

  /**
   * Runs one file (`m`, either way) with its journal change in one transaction and one round trip;
   * returns the server's time in ms, which `journalChange` returns as `duration_ms`. An error
   * rolls back and is thrown as `onError` maps it; a file that swallowed the statements after it
   * (an unterminated string, comment or dollar quote) is a MigrationSqlError that names it (`named`).
   */
  async sendInTransaction(
    m: Migration,
    journalChange: string,
    named: (m: Migration) => string,
    onError: (error: SluiceError) => SluiceError = (error) => error,
  ): Promise<number> {
    const text = [
      'BEGIN',
      ...this.timeoutSettings(m, 'LOCAL'),
      // The newline guards against a file that ends in a -- comment.
      `${m.sql}\n`,
      journalChange,
      'COMMIT',
    ].join(';\n');
    let results: pg.QueryResult[];
    try {
      results = asResults(await this.client.query(text));
    } catch (error) {
      await this.client.query('ROLLBACK').catch(() => undefined);
      throw onError(classifyPgError(error, this.host, m.version));
    }
    if (results.at(-1)?.command !== 'COMMIT') {
      await this.client.query('ROLLBACK').catch(() => undefined);
      throw new MigrationSqlError(
        `${named(m)}: the file does not end cleanly (an unterminated string, comment or dollar quote?)`,
        undefined,
        { version: m.version },
      );
    }
    const serverMs = Number((results.at(-2)?.rows[0] as { duration_ms?: unknown } | undefined)?.duration_ms);
    return Number.isFinite(serverMs) ? serverMs : 0;
  }

  /** After a failed batch: ends its transaction, then learns whether the lock is held and what the journal holds. */
  async recover(): Promise<JournalState> {
    const open = await this.transactionOpen();
    const state = await this.readJournalState(`${open ? 'ROLLBACK;\n' : ''}${lockHeldSql(this.journal)};\n`);
    this.lockHeld = (state.extra.at(-1)?.rows[0] as { held: boolean } | undefined)?.held ?? false;
    return state;
  }

  /**
   * Whether the session is inside a transaction after a failed message. pg rejects at the error;
   * the status comes with the ReadyForQuery after it, which an empty query (accepted even
   * in an aborted transaction) waits for. A ROLLBACK outside a transaction would be a warning in the server's log.
   */
  async transactionOpen(): Promise<boolean> {
    await this.client.query('');
    return this.client.getTransactionStatus() !== 'I';
  }

  /**
   * Takes the migration lock (never waiting), reads the journal, runs `work`, unlocks.
   * `known`: what the lockless read found. No journal (or an old shape): the lock, the journal's
   * creation and its read go in one message; otherwise the creation follows only if needed.
   */
  async withLock<T>(
    known: Pick<JournalState, 'present' | 'current'> | undefined,
    work: (entries: JournalEntry[]) => Promise<T>,
  ): Promise<T> {
    const entries = await inSpan('sluice.lock', {}, () => this.lockAndRead(known));
    try {
      return await work(entries);
    } finally {
      await this.unlock();
    }
  }

  private async lockAndRead(known: Pick<JournalState, 'present' | 'current'> | undefined): Promise<JournalEntry[]> {
    if (known && !(known.present && known.current)) {
      // The guard raises when the lock is taken elsewhere, so the creation never runs without it.
      try {
        const created = await this.readJournalState(
          `${lockGuardSql(this.journal)};\n${ensureJournalSql(this.journal, known.present)};\n`,
        );
        this.lockHeld = true;
        return created.entries;
      } catch (error) {
        if ((error as SluiceError).sqlState === GUARD_SQLSTATE.locked) throw this.lockedError();
        // The message is one implicit transaction: the lock taken in it is a session lock and stays.
        this.lockHeld = true;
        await this.unlock();
        throw error;
      }
    }
    const state = await this.readJournalState(`SELECT pg_try_advisory_lock(${this.lockKey}) AS locked;\n`);
    if (!(state.extra[0]?.rows[0] as { locked: boolean } | undefined)?.locked) throw this.lockedError();
    this.lockHeld = true;
    if (state.present && state.current) return state.entries;
    try {
      return (await this.readJournalState(`${ensureJournalSql(this.journal, state.present)};\n`)).entries;
    } catch (error) {
      await this.unlock();
      throw error;
    }
  }

  async unlock(): Promise<void> {
    if (!this.lockHeld) return;
    this.lockHeld = false;
    await this.client.query(`SELECT pg_advisory_unlock(${this.lockKey})`).catch(() => undefined);
  }

  /**
   * Ends the session of a holder whose lease expired (see lock-fencing.ts) — PostgreSQL rolls its
   * open transaction back — and lets the lock go again. False when the holder is not stale.
   */
  async takeOverExpiredLock(fence: LockFence): Promise<boolean> {
    if (!(await takeOverExpiredLock(this.client, this.lockKey, fence).catch(() => false))) return false;
    // The lock was taken to be sure the holder is gone; the next attempt takes it its own way.
    await this.client.query(`SELECT pg_advisory_unlock(${this.lockKey})`).catch(() => undefined);
    return true;
  }

  lockedError(): LockedError {
    return new LockedError('another runner holds the migration lock of this database');
  }

  /** `SET LOCAL|SESSION` statements of a file's own timeouts. */
  timeoutSettings(m: Migration, scope: 'LOCAL' | 'SESSION'): string[] {
    const out: string[] = [];
    if (m.lockTimeoutMs !== undefined) out.push(`SET ${scope} lock_timeout = ${m.lockTimeoutMs}`);
    if (m.statementTimeoutMs !== undefined) out.push(`SET ${scope} statement_timeout = ${m.statementTimeoutMs}`);
    return out;
  }

  /** A string as an SQL literal (NULL for null). */
  lit(value: string | null): string {
    return value === null ? 'NULL' : this.client.escapeLiteral(value);
  }

  /** Runs SQL outside a migration file, errors classified. */
  async query(text: string): Promise<pg.QueryResult | pg.QueryResult[]> {
    try {
      return await this.client.query(text);
    } catch (error) {
      throw classifyPgError(error, this.host);
    }
  }
}

/** A multi-statement message's results, always as a list (pg gives one result for one statement). */
export function asResults(r: pg.QueryResult | pg.QueryResult[]): pg.QueryResult[] {
  return Array.isArray(r) ? r : [r];
}

function toEntry(row: JournalRow): JournalEntry {
  return {
    version: Number(row.version),
    name: row.name,
    checksum: row.checksum,
    status: row.status ?? 'applied',
    // A journal of an old shape, read plainly, has no such columns at all.
    runId: row.run_id ?? null,
    downChecksum: row.down_checksum ?? null,
  };
}
