import {
  type JournalEntry,
  LockedError,
  type Migration,
  type MigrationSet,
  MigrationSqlError,
  planTenant,
  splitSqlStatements,
  TargetError,
} from '@sluice/core';
import type pg from 'pg';

import {
  advisoryLockKey,
  DEFAULT_JOURNAL,
  ensureJournalSql,
  type JournalLocation,
  journalTable,
  selectJournalSql,
} from './journal.js';
import { type LockFence, takeOverExpiredLock } from './lock-fencing.js';
import { inSpan } from './migration-tracing.js';
import { classifyPgError } from './pg-errors.js';

export interface MigrateOptions {
  /** Resolved target version. */
  targetVersion: number;
  /** Recorded in the journal; lets a redelivered task recognise its own work. */
  runId?: string;
  executorId?: string;
  /** Report what would be applied; apply nothing. */
  dryRun?: boolean;
}

export interface MigrationReport {
  status: 'migrated' | 'upToDate' | 'pending';
  /** Versions applied (or, for a dry run, that would be). */
  applied: number[];
  fromVersion: number | null;
  toVersion: number | null;
  /**
   * `journalMs`: journal read (and lock); `executeMs`: migration SQL as the client saw it;
   * `serverMs`: the part of it the database spent (from the journal rows it wrote).
   */
  timings: { journalMs: number; executeMs: number; serverMs: number };
}

interface JournalRow {
  version: string;
  name: string;
  checksum: string;
  status: 'applied' | 'dirty';
  run_id: string | null;
}

const JOURNAL_SHAPE_ERRORS = new Set(['42P01', '42703', '3F000']);

/**
 * Applies a migration set to one tenant database over an open connection. One runner per
 * database (a session advisory try-lock), each migration in its own transaction with its
 * journal row, `no-transaction` files tracked as dirty until they finish.
 *
 * An up-to-date tenant costs one round trip for lock and journal read, and one to unlock.
 */
export class TenantMigrator {
  private readonly lockKey: string;
  private readonly table: string;
  /** Set when the lockless read found no journal (or an old shape): the locked read goes straight to creating it. */
  private journalMissing = false;

  constructor(
    private readonly client: pg.ClientBase,
    private readonly set: MigrationSet,
    private readonly host: string,
    private readonly journal: JournalLocation = DEFAULT_JOURNAL,
    /** Lets this session take the lock from a holder whose lease expired (a frozen executor). */
    private readonly fence?: LockFence,
  ) {
    this.lockKey = advisoryLockKey(journal);
    this.table = journalTable(journal);
  }

  async migrate(options: MigrateOptions): Promise<MigrationReport> {
    if (options.targetVersion !== 0 && !this.set.migrations.some((m) => m.version === options.targetVersion)) {
      throw new TargetError(
        `target ${options.targetVersion} is not in the migration set (latest is ${this.set.latest})`,
      );
    }
    const t0 = performance.now();
    if (options.dryRun) {
      const entries = await inSpan('sluice.journal', {}, () => this.readJournal());
      const plan = planTenant(this.set, entries, options.targetVersion, options.runId);
      const pending = plan.pending.map((m) => m.version);
      return {
        status: pending.length > 0 ? 'pending' : 'upToDate',
        applied: pending,
        fromVersion: plan.current,
        toVersion: plan.pending.at(-1)?.version ?? plan.current,
        timings: { journalMs: performance.now() - t0, executeMs: 0, serverMs: 0 },
      };
    }
    // Most runs find most tenants up to date: one round trip, no lock, no contention. A journal
    // can only gain rows while we read it, so "nothing pending, nothing dirty, no drift" holds.
    // Anything else is decided again under the lock.
    const unlocked = await inSpan('sluice.journal', {}, () => this.readJournalIfClean(options));
    if (unlocked) {
      return { ...unlocked, timings: { journalMs: performance.now() - t0, executeMs: 0, serverMs: 0 } };
    }
    return this.withLock(async (entries) => {
      const plan = planTenant(this.set, entries, options.targetVersion, options.runId);
      const journalMs = performance.now() - t0;
      const t1 = performance.now();
      const applied: number[] = [];
      let serverMs = 0;
      for (const migration of plan.pending) {
        serverMs += await inSpan('sluice.migration', migrationAttributes(migration), () =>
          migration.transactional
            ? this.applyInTransaction(migration, options)
            : this.applyWithoutTransaction(migration, options),
        );
        applied.push(migration.version);
      }
      // A redelivered task: what this run applied on earlier deliveries counts too.
      const reported = [...new Set([...plan.appliedByRun, ...applied])].sort((a, b) => a - b);
      const toVersion = plan.pending.at(-1)?.version ?? plan.current;
      return {
        status: reported.length > 0 ? 'migrated' : 'upToDate',
        applied: reported,
        fromVersion: plan.current,
        toVersion,
        timings: { journalMs, executeMs: performance.now() - t1, serverMs },
      };
    });
  }

  /** Reads the journal without taking the lock (dry runs, status); an old-shape journal is read as it is. */
  async readJournal(): Promise<JournalEntry[]> {
    try {
      const result = await this.client.query<JournalRow>(selectJournalSql(this.journal));
      return result.rows.map(toEntry);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === '42703') {
        // A journal from before the current shape: its rows are all applied ones.
        const legacy = await this.query(
          `SELECT version::text AS version, name, checksum, 'applied' AS status, NULL::text AS run_id FROM ${this.table} ORDER BY version`,
        );
        return (legacy.rows as JournalRow[]).map(toEntry);
      }
      if (isJournalShapeError(error)) return [];
      throw classifyPgError(error, this.host);
    }
  }

  /** The report of a tenant with nothing to do, read without the lock; undefined when the lock is needed. */
  private async readJournalIfClean(options: MigrateOptions): Promise<Omit<MigrationReport, 'timings'> | undefined> {
    let entries: JournalEntry[];
    try {
      entries = (await this.client.query<JournalRow>(selectJournalSql(this.journal))).rows.map(toEntry);
    } catch (error) {
      if (isJournalShapeError(error)) {
        this.journalMissing = true;
        return undefined;
      }
      throw classifyPgError(error, this.host);
    }
    let plan;
    try {
      plan = planTenant(this.set, entries, options.targetVersion, options.runId);
    } catch {
      return undefined;
    }
    if (plan.pending.length > 0) return undefined;
    return {
      status: plan.appliedByRun.length > 0 ? 'migrated' : 'upToDate',
      applied: plan.appliedByRun,
      fromVersion: plan.current,
      toVersion: plan.current,
    };
  }

  /**
   * Marks every version up to `version` as applied without running it, for databases that
   * already have the schema. Refused when the journal already holds anything.
   */
  async baseline(version: number, executorId?: string): Promise<number[]> {
    if (!this.set.migrations.some((m) => m.version === version)) {
      throw new TargetError(`baseline version ${version} is not in the migration set`);
    }
    return this.withLock(async (entries) => {
      if (entries.length > 0) {
        throw new TargetError(
          `cannot baseline: the journal already holds versions up to ${Math.max(...entries.map((e) => e.version))}`,
        );
      }
      const rows = this.set.migrations.filter((m) => m.version <= version);
      if (rows.length > 0) {
        const values = rows
          .map(
            (m) =>
              `(${m.version}, ${this.lit(m.name)}, ${this.lit(m.checksum)}, 'applied', true, ${this.lit(executorId ?? null)})`,
          )
          .join(', ');
        await this.query(
          `INSERT INTO ${this.table} (version, name, checksum, status, baseline, executor_id) VALUES ${values}`,
        );
      }
      return rows.map((m) => m.version);
    });
  }

  /**
   * Resolves a dirty version after a person has looked at the database:
   * `retry` forgets the attempt (the next run applies the file again),
   * `applied` records it as done (the person finished it by hand).
   */
  async repair(version: number, resolution: 'retry' | 'applied'): Promise<void> {
    await this.withLock(async (entries) => {
      const entry = entries.find((e) => e.version === version);
      if (!entry || entry.status !== 'dirty') {
        const dirty = entries.find((e) => e.status === 'dirty');
        throw new TargetError(
          `version ${version} is not dirty${dirty ? ` (version ${dirty.version} is)` : ' (no version is dirty)'}`,
        );
      }
      if (resolution === 'retry') {
        await this.query(`DELETE FROM ${this.table} WHERE version = ${version} AND status = 'dirty'`);
      } else {
        const file = this.set.migrations.find((m) => m.version === version);
        const checksum = file?.checksum ?? entry.checksum;
        await this.query(
          `UPDATE ${this.table} SET status = 'applied', checksum = ${this.lit(checksum)}, applied_at = now() WHERE version = ${version}`,
        );
      }
    });
  }

  /** Takes the database's migration lock (never waiting), reads the journal, runs `work`, unlocks. */
  private async withLock<T>(work: (entries: JournalEntry[]) => Promise<T>): Promise<T> {
    const entries = await inSpan('sluice.lock', {}, () => this.lockAndRead());
    try {
      return await work(entries);
    } finally {
      await this.client.query(`SELECT pg_advisory_unlock(${this.lockKey})`).catch(() => undefined);
    }
  }

  private async lockAndRead(): Promise<JournalEntry[]> {
    const lockSql = `SELECT pg_try_advisory_lock(${this.lockKey}) AS locked`;
    if (this.journalMissing) return this.lockAndCreate(lockSql);
    try {
      // One round trip: lock and journal read in one simple query.
      const results = (await this.client.query(
        `${lockSql}; ${selectJournalSql(this.journal)}`,
      )) as unknown as pg.QueryResult[];
      if ((results[0]?.rows[0] as { locked: boolean } | undefined)?.locked)
        return (results[1]?.rows as JournalRow[]).map(toEntry);
      await this.takeOverOrThrow();
      // The holder's rolled-back transaction left the journal as it was committed: read it again.
      return (await this.client.query<JournalRow>(selectJournalSql(this.journal))).rows.map(toEntry);
    } catch (error) {
      if (!isJournalShapeError(error)) throw classifyPgError(error, this.host);
    }
    // First run on this database, or a journal of an older shape. A session lock survives the
    // failed statement that followed it, so start from a clean slate, then lock and create.
    await this.client.query(`SELECT pg_advisory_unlock(${this.lockKey})`).catch(() => undefined);
    return this.lockAndCreate(lockSql);
  }

  /** Two round trips: the lock, then (holding it) create or upgrade the journal and read it. */
  private async lockAndCreate(lockSql: string): Promise<JournalEntry[]> {
    const locked = await this.query(lockSql);
    if (!(locked.rows[0] as { locked: boolean } | undefined)?.locked) await this.takeOverOrThrow();
    try {
      const results = (await this.query(
        `${ensureJournalSql(this.journal)};\n${selectJournalSql(this.journal)}`,
      )) as unknown as pg.QueryResult | pg.QueryResult[];
      const last = Array.isArray(results) ? results.at(-1) : results;
      return ((last?.rows ?? []) as JournalRow[]).map(toEntry);
    } catch (error) {
      await this.client.query(`SELECT pg_advisory_unlock(${this.lockKey})`).catch(() => undefined);
      throw error;
    }
  }

  /** The lock is held by another session: take it from a stale holder (see lock-fencing.ts), or fail `locked`. */
  private async takeOverOrThrow(): Promise<void> {
    if (this.fence && (await takeOverExpiredLock(this.client, this.lockKey, this.fence))) return;
    throw this.lockedError();
  }

  private lockedError(): LockedError {
    return new LockedError('another runner holds the migration lock of this database');
  }

  /** Applies one file with its journal row in one transaction and one round trip; returns the server's time in ms. */
  private async applyInTransaction(m: Migration, options: MigrateOptions): Promise<number> {
    const text = [
      'BEGIN',
      ...this.timeoutSettings(m, 'LOCAL'),
      // The newline guards against a file that ends in a -- comment.
      `${m.sql}\n`,
      `${this.journalInsert(m, 'applied', options)} RETURNING duration_ms`,
      'COMMIT',
    ].join(';\n');
    let results: pg.QueryResult[];
    try {
      const r = (await this.client.query(text)) as unknown as pg.QueryResult | pg.QueryResult[];
      results = Array.isArray(r) ? r : [r];
    } catch (error) {
      await this.client.query('ROLLBACK').catch(() => undefined);
      throw classifyPgError(error, this.host, m.version);
    }
    // An unterminated string or comment in the file would swallow our INSERT and COMMIT.
    if (results.at(-1)?.command !== 'COMMIT') {
      await this.client.query('ROLLBACK').catch(() => undefined);
      throw new MigrationSqlError(
        `version ${m.version}: the file does not end cleanly (an unterminated string, comment or dollar quote?)`,
        undefined,
        { version: m.version },
      );
    }
    const serverMs = Number((results.at(-2)?.rows[0] as { duration_ms?: unknown } | undefined)?.duration_ms);
    return Number.isFinite(serverMs) ? serverMs : 0;
  }

  /** Applies a `no-transaction` file statement by statement; returns the statements' time in ms (network included). */
  private async applyWithoutTransaction(m: Migration, options: MigrateOptions): Promise<number> {
    const statements = splitSqlStatements(m.sql);
    const invalidBefore = await this.invalidIndexes();
    await this.query(this.journalInsert(m, 'dirty', options));
    const settings = this.timeoutSettings(m, 'SESSION');
    if (settings.length > 0) await this.query(settings.join('; '));
    const started = Date.now();
    try {
      for (const [index, statement] of statements.entries()) {
        try {
          await this.client.query(statement);
        } catch (error) {
          const classified = classifyPgError(error, this.host, m.version);
          // CREATE INDEX CONCURRENTLY commits its catalog entry before it waits: a failed build
          // leaves an invalid index behind, which IF NOT EXISTS would later skip. Then it is dirty.
          const leftovers = (await this.invalidIndexes().catch(() => [])).filter(
            (name) => !invalidBefore.includes(name),
          );
          if (leftovers.length > 0) {
            throw new MigrationSqlError(
              `version ${m.version} (no-transaction) failed and left invalid index ${leftovers.join(', ')}; the tenant is marked dirty (drop the index, then sluice repair): ${classified.message}`,
              (classified as { sqlState?: string }).sqlState,
              { version: m.version, cause: error },
            );
          }
          if (index === 0 && classified.transient) {
            // Nothing ran: forget the attempt so a retry starts clean.
            await this.client
              .query(`DELETE FROM ${this.table} WHERE version = ${m.version} AND status = 'dirty'`)
              .catch(() => undefined);
            throw classified;
          }
          throw new MigrationSqlError(
            `version ${m.version} (no-transaction) failed at statement ${index + 1} of ${statements.length}; the tenant is marked dirty: ${classified.message}`,
            'sqlState' in classified ? (classified as { sqlState?: string }).sqlState : undefined,
            { version: m.version, cause: error },
          );
        }
      }
    } finally {
      if (settings.length > 0)
        await this.client.query('RESET lock_timeout; RESET statement_timeout').catch(() => undefined);
    }
    const durationMs = Date.now() - started;
    await this.query(
      `UPDATE ${this.table} SET status = 'applied', applied_at = now(), duration_ms = ${durationMs} WHERE version = ${m.version}`,
    );
    return durationMs;
  }

  /** Names of the invalid indexes in the database (left by failed concurrent builds). */
  private async invalidIndexes(): Promise<string[]> {
    const result = await this.query(
      'SELECT indexrelid::regclass::text AS name FROM pg_index WHERE NOT indisvalid ORDER BY 1',
    );
    return (result.rows as Array<{ name: string }>).map((r) => r.name);
  }

  private timeoutSettings(m: Migration, scope: 'LOCAL' | 'SESSION'): string[] {
    const out: string[] = [];
    if (m.lockTimeoutMs !== undefined) out.push(`SET ${scope} lock_timeout = ${m.lockTimeoutMs}`);
    if (m.statementTimeoutMs !== undefined) out.push(`SET ${scope} statement_timeout = ${m.statementTimeoutMs}`);
    return out;
  }

  private journalInsert(m: Migration, status: 'applied' | 'dirty', options: MigrateOptions): string {
    // duration_ms: time since the transaction began (now() is the transaction start).
    return `INSERT INTO ${this.table} (version, name, checksum, status, duration_ms, run_id, executor_id) VALUES (${m.version}, ${this.lit(m.name)}, ${this.lit(m.checksum)}, '${status}', (extract(epoch FROM clock_timestamp() - now()) * 1000)::integer, ${this.lit(options.runId ?? null)}, ${this.lit(options.executorId ?? null)})`;
  }

  private lit(value: string | null): string {
    return value === null ? 'NULL' : this.client.escapeLiteral(value);
  }

  private async query(text: string): Promise<pg.QueryResult> {
    try {
      return await this.client.query(text);
    } catch (error) {
      throw classifyPgError(error, this.host);
    }
  }
}

function migrationAttributes(m: Migration) {
  return {
    'sluice.version': m.version,
    'sluice.migration.name': m.name,
    'sluice.migration.transactional': m.transactional,
  };
}

function toEntry(row: JournalRow): JournalEntry {
  return {
    version: Number(row.version),
    name: row.name,
    checksum: row.checksum,
    status: row.status,
    runId: row.run_id,
  };
}

function isJournalShapeError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && JOURNAL_SHAPE_ERRORS.has(code);
}
