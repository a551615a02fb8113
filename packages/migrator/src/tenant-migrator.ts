import {
  type JournalEntry,
  JournalMovedError,
  LockedError,
  type Migration,
  type MigrationSet,
  MigrationSqlError,
  planTenant,
  rollbackTargetOf,
  type SluiceError,
  TargetError,
  type TenantPlan,
} from '@sluice/core';
import type pg from 'pg';

import { downAttributes, downStep, versionAfterUndo } from './down-steps.js';
import {
  advisoryLockKey,
  DEFAULT_JOURNAL,
  ensureJournalSql,
  GUARD_SQLSTATE,
  type JournalLocation,
  journalTable,
  lockGuardSql,
  lockHeldSql,
  readJournalStateSql,
} from './journal.js';
import { type LockFence, takeOverExpiredLock } from './lock-fencing.js';
import { inSpan } from './migration-tracing.js';
import { classifyPgError } from './pg-errors.js';
import { runStatementsOneByOne } from './statement-runner.js';
import { committedVersions, transactionBatchSql } from './transaction-batch.js';
import { undoBatch, undoInTransaction, type UndoSession, undoWithoutTransaction } from './undo-path.js';

export interface MigrateOptions {
  /** Resolved target version. */
  targetVersion: number;
  /** Recorded in the journal; lets a redelivered task recognise its own work. */
  runId?: string;
  executorId?: string;
  /** Report what would be applied; apply nothing. */
  dryRun?: boolean;
  /**
   * Roll back what this run did to the tenant: the target becomes the version the run found here
   * (`targetVersion` is ignored). A tenant the run did not change is left as it is.
   */
  rollbackOf?: string;
  /** With `rollbackOf`: undo versions a later run applied above the run's too (else the tenant is refused). */
  force?: boolean;
  /** Run a down file even when it changed since its up file ran (drift otherwise). */
  allowChangedDown?: boolean;
}

export interface MigrationReport {
  /** `rolledBack`: versions were undone (a target below the tenant, or a rollback of a run). */
  status: 'migrated' | 'upToDate' | 'pending' | 'rolledBack';
  /** Versions applied (or, for a dry run, that would be). */
  applied: number[];
  /** Versions undone, newest first (or, for a dry run, that would be). */
  rolledBack?: number[];
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
  /** NULL in a journal from before the column existed: its rows are all applied ones. */
  status: 'applied' | 'dirty' | null;
  run_id: string | null;
  down_checksum: string | null;
}

/** What a journal read decides: nothing to do for this run, or a plan (up or down). */
type Decision = { kind: 'untouched'; current: number | null } | { kind: 'plan'; plan: TenantPlan };

/** The journal as one error-free read finds it. */
interface JournalState {
  /** The table exists. */
  present: boolean;
  /** It has every column of the current shape (else `ensureJournalSql` must run first). */
  current: boolean;
  entries: JournalEntry[];
}

/**
 * Applies a migration set to one tenant database over an open connection. One runner per
 * database (a session advisory try-lock), each migration in its own transaction with its
 * journal row, `no-transaction` files tracked as dirty until they finish.
 *
 * Round trips: an up-to-date tenant costs one (the journal read, no lock). A tenant with pending
 * files costs one more when they are all transactional: the lock, the journal's creation if it is
 * new, every file in its own transaction behind a guard, and the unlock travel in one message.
 * Nothing in the common path makes the server raise an error (each one is an aborted
 * transaction and a line in its log).
 */
export class TenantMigrator {
  private readonly lockKey: string;
  private readonly table: string;
  /** Whether this session holds the migration lock now (so an unlock never warns on the server). */
  private lockHeld = false;

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

  /**
   * Migrates the tenant. Met by the lock of a stale holder (see lock-fencing.ts), it terminates
   * that session — PostgreSQL rolls its open transaction back — and starts again from a fresh read
   * of the journal; any other holder leaves it `locked`.
   */
  async migrate(options: MigrateOptions): Promise<MigrationReport> {
    try {
      return await this.migrateOnce(options);
    } catch (error) {
      if (!(error instanceof LockedError) || !this.fence) throw error;
      if (!(await takeOverExpiredLock(this.client, this.lockKey, this.fence).catch(() => false))) throw error;
      // The lock was taken to be sure the holder is gone; the next attempt takes it its own way.
      await this.client.query(`SELECT pg_advisory_unlock(${this.lockKey})`).catch(() => undefined);
      return this.migrateOnce(options);
    }
  }

  private async migrateOnce(options: MigrateOptions): Promise<MigrationReport> {
    if (
      options.rollbackOf === undefined &&
      options.targetVersion !== 0 &&
      !this.set.migrations.some((m) => m.version === options.targetVersion)
    ) {
      throw new TargetError(
        `target ${options.targetVersion} is not in the migration set (latest is ${this.set.latest})`,
      );
    }
    const t0 = performance.now();
    // Most runs find most tenants up to date: one round trip, no lock, no contention. A journal
    // can only gain rows while we read it, so "nothing pending, nothing dirty, no drift" holds.
    const state = await inSpan('sluice.journal', {}, () => this.readJournalState());
    if (options.dryRun) {
      const decision = this.decide(state.entries, options);
      if (decision.kind === 'untouched') return untouchedReport(decision.current, t0);
      const { plan } = decision;
      const pending = plan.pending.map((m) => m.version);
      const undo = plan.undo.map((m) => m.version);
      return {
        status: pending.length > 0 || undo.length > 0 ? 'pending' : 'upToDate',
        applied: pending,
        ...(undo.length > 0 ? { rolledBack: undo } : {}),
        fromVersion: plan.current,
        toVersion:
          undo.length > 0 ? versionAfterUndo(state.entries, undo) : (plan.pending.at(-1)?.version ?? plan.current),
        timings: { journalMs: performance.now() - t0, executeMs: 0, serverMs: 0 },
      };
    }
    let decision: Decision | undefined;
    try {
      decision = this.decide(state.entries, options);
    } catch {
      // Dirty, drifted, irreversible, changed by a later run: decided again under the lock, where the error is final.
      decision = undefined;
    }
    if (decision?.kind === 'untouched') return untouchedReport(decision.current, t0);
    const plan = decision?.plan;
    if (plan && plan.pending.length === 0 && plan.undo.length === 0) {
      return {
        status: plan.appliedByRun.length > 0 ? 'migrated' : 'upToDate',
        applied: plan.appliedByRun,
        fromVersion: plan.current,
        toVersion: plan.current,
        timings: { journalMs: performance.now() - t0, executeMs: 0, serverMs: 0 },
      };
    }
    if (plan?.undo[0]?.down?.transactional) return this.undoBatched(plan, state, options, t0);
    if (plan?.pending[0]?.transactional) return this.migrateBatched(plan, state, options, t0);
    return this.withLock(state, (entries) => this.applyLocked(entries, options, t0));
  }

  /**
   * The target for this journal — the request's, or for a rollback of a run the version that run
   * found — and the plan to reach it. Throws the tenant's refusal (dirty, drift, irreversible,
   * changed by a later run).
   */
  private decide(entries: readonly JournalEntry[], options: MigrateOptions): Decision {
    const target =
      options.rollbackOf === undefined
        ? options.targetVersion
        : rollbackTargetOf(entries, options.rollbackOf, { force: options.force ?? false });
    if (target === null) {
      const current = entries.length === 0 ? null : Math.max(...entries.map((e) => e.version));
      return { kind: 'untouched', current };
    }
    const plan = planTenant(this.set, entries, target, options.runId, {
      allowChangedDown: options.allowChangedDown ?? false,
    });
    return { kind: 'plan', plan };
  }

  /** Under the lock, from the journal it read: the plan decided again and carried out file by file. */
  private async applyLocked(
    entries: readonly JournalEntry[],
    options: MigrateOptions,
    t0: number,
  ): Promise<MigrationReport> {
    const decision = this.decide(entries, options);
    if (decision.kind === 'untouched') return untouchedReport(decision.current, t0);
    if (decision.plan.undo.length > 0) return this.undoEach(decision.plan, entries, t0);
    return this.applyPlan(decision.plan, options, t0);
  }

  /** Reads the journal without taking the lock (dry runs, status); an old-shape journal is read as it is. */
  async readJournal(): Promise<JournalEntry[]> {
    return (await this.readJournalState()).entries;
  }

  /** The journal's existence, shape and rows in one round trip that raises no error on the server. */
  private async readJournalState(prefix = ''): Promise<JournalState & { extra: pg.QueryResult[] }> {
    const results = asResults(await this.query(`${prefix}${readJournalStateSql(this.journal)}`));
    const [flags, rows] = results.slice(-2) as [pg.QueryResult, pg.QueryResult];
    const { present, current } = flags.rows[0] as { present: boolean; current: boolean };
    return { present, current, entries: (rows.rows as JournalRow[]).map(toEntry), extra: results.slice(0, -2) };
  }

  /**
   * The plan's files under the lock. The leading transactional files travel in one message with
   * the lock guard (and the journal's creation when it is new): guards make it safe to act on a
   * plan made from the lockless read. Later files go one by one (a `no-transaction` file cannot
   * share a message, which runs as one transaction block), then the rest in one more batch.
   */
  private async migrateBatched(
    plan: TenantPlan,
    state: JournalState,
    options: MigrateOptions,
    t0: number,
  ): Promise<MigrationReport> {
    const journalMs = performance.now() - t0;
    const t1 = performance.now();
    const segments = splitTransactional(plan.pending);
    const entries = [...state.entries];
    const applied: number[] = [];
    let serverMs = 0;
    try {
      for (const [index, segment] of segments.entries()) {
        const last = index === segments.length - 1;
        if (!segment[0]!.transactional) {
          serverMs += await inSpan('sluice.migration', migrationAttributes(segment[0]!), () =>
            this.applyWithoutTransaction(segment[0]!, options),
          );
          applied.push(segment[0]!.version);
          entries.push(appliedEntry(segment[0]!, options));
          continue;
        }
        // Its own transaction: statements before a BEGIN in one message would join the first file's.
        const prelude =
          index === 0
            ? state.present && state.current
              ? [lockGuardSql(this.journal)]
              : ['BEGIN', lockGuardSql(this.journal), ensureJournalSql(this.journal, state.present), 'COMMIT']
            : [];
        const unlock = last ? [`SELECT pg_advisory_unlock(${this.lockKey}) AS sluice_unlocked`] : [];
        const outcome = await inSpan('sluice.migration', batchAttributes(segment), () =>
          this.applyBatch(segment, entries, prelude, unlock, options),
        );
        if (outcome.kind === 'committed') {
          this.lockHeld = !last;
          serverMs += outcome.serverMs;
          for (const m of segment) {
            applied.push(m.version);
            entries.push(appliedEntry(m, options));
          }
          continue;
        }
        // Nothing of the batch ran (the message did not parse, or its first file failed): the
        // files go one by one, the path that names the failing file and keeps earlier ones.
        if (!this.lockHeld) return await this.withLock(state, (locked) => this.applyLocked(locked, options, t0));
        const rest = plan.pending.slice(applied.length);
        serverMs += await this.applyEach(rest, options, applied);
        break;
      }
    } finally {
      await this.unlock();
    }
    return this.report(plan, applied, { journalMs, executeMs: performance.now() - t1, serverMs });
  }

  /**
   * Sends one batch. On an error, reads back (in one round trip, after a ROLLBACK if a
   * transaction is open) whether the lock is held and what the journal holds, and maps the error
   * to the file that failed: the first file of the batch not in the journal.
   */
  private async applyBatch(
    files: Migration[],
    before: JournalEntry[],
    prelude: string[],
    postlude: string[],
    options: MigrateOptions,
  ): Promise<{ kind: 'committed'; serverMs: number } | { kind: 'nothingRan' }> {
    const text = transactionBatchSql(
      files,
      before,
      {
        journal: this.journal,
        timeoutSettings: (m) => this.timeoutSettings(m, 'LOCAL'),
        journalInsert: (m) => this.journalInsert(m, 'applied', options),
      },
      prelude,
      postlude,
    );
    let failure: unknown;
    try {
      const results = asResults(await this.client.query(text));
      const committed = committedVersions(results);
      if (committed.length === files.length)
        return { kind: 'committed', serverMs: sum(committed.map((c) => c.serverMs)) };
      // A file swallowed what followed it (an unterminated string, comment or dollar quote).
      const culprit = files[committed.length]!;
      await this.recover();
      throw new MigrationSqlError(
        `version ${culprit.version}: the file does not end cleanly (an unterminated string, comment or dollar quote?)`,
        undefined,
        { version: culprit.version },
      );
    } catch (error) {
      if (error instanceof MigrationSqlError) throw error;
      failure = error;
    }
    const code = (failure as { code?: unknown }).code;
    if (code === GUARD_SQLSTATE.locked) {
      // The guard may have raised inside the journal's creation transaction.
      if (await this.transactionOpen().catch(() => false)) await this.client.query('ROLLBACK').catch(() => undefined);
      throw this.lockedError();
    }
    let after: JournalState;
    try {
      after = await this.recover();
    } catch {
      throw classifyPgError(failure, this.host, files[0]!.version);
    }
    // The lock guard opens the first batch: without the lock, the message did not even parse.
    if (!this.lockHeld) return { kind: 'nothingRan' };
    // The journal's creation failed (a permission?): no file is to blame.
    if (!after.present || !after.current) throw classifyPgError(failure, this.host);
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
    const classified = classifyPgError(failure, this.host, failed.version);
    if (failedAt === 0 && !classified.transient) return { kind: 'nothingRan' };
    throw classified;
  }

  /** After a failed batch: ends its transaction, then learns whether the lock is held and what the journal holds. */
  private async recover(): Promise<JournalState> {
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
  private async transactionOpen(): Promise<boolean> {
    await this.client.query('');
    return this.client.getTransactionStatus() !== 'I';
  }

  /** Applies `plan` file by file (the lock held), the path for sets that start with a `no-transaction` file. */
  private async applyPlan(plan: TenantPlan, options: MigrateOptions, t0: number): Promise<MigrationReport> {
    const journalMs = performance.now() - t0;
    const t1 = performance.now();
    const applied: number[] = [];
    const serverMs = await this.applyEach(plan.pending, options, applied);
    return this.report(plan, applied, { journalMs, executeMs: performance.now() - t1, serverMs });
  }

  /** One round trip per transactional file, the statements of a `no-transaction` one each on their own. */
  private async applyEach(files: readonly Migration[], options: MigrateOptions, applied: number[]): Promise<number> {
    let serverMs = 0;
    for (const migration of files) {
      serverMs += await inSpan('sluice.migration', migrationAttributes(migration), () =>
        migration.transactional
          ? this.applyInTransaction(migration, options)
          : this.applyWithoutTransaction(migration, options),
      );
      applied.push(migration.version);
    }
    return serverMs;
  }

  private report(plan: TenantPlan, applied: number[], timings: MigrationReport['timings']): MigrationReport {
    // A redelivered task: what this run applied on earlier deliveries counts too.
    const reported = [...new Set([...plan.appliedByRun, ...applied])].sort((a, b) => a - b);
    return {
      status: reported.length > 0 ? 'migrated' : 'upToDate',
      applied: reported,
      fromVersion: plan.current,
      toVersion: plan.pending.at(-1)?.version ?? plan.current,
      timings,
    };
  }

  /**
   * The way back, batched like the way forward: the lock guard and every transactional down file
   * (newest version first, each in its own transaction with the deletion of its journal row) in one
   * message; a `no-transaction` down file on its own, its row `dirty` until it finishes.
   */
  private async undoBatched(
    plan: TenantPlan,
    state: JournalState,
    options: MigrateOptions,
    t0: number,
  ): Promise<MigrationReport> {
    const journalMs = performance.now() - t0;
    const t1 = performance.now();
    const segments = splitTransactional(plan.undo.map(downStep));
    let entries = [...state.entries];
    const undone: number[] = [];
    let serverMs = 0;
    try {
      for (const [index, segment] of segments.entries()) {
        const last = index === segments.length - 1;
        if (!segment[0]!.transactional) {
          const step = segment[0]!;
          serverMs += await inSpan('sluice.migration', downAttributes(step), () =>
            undoWithoutTransaction(this.undoSession(), step),
          );
          undone.push(step.version);
          entries = entries.filter((e) => e.version !== step.version);
          continue;
        }
        const prelude =
          index === 0
            ? state.current
              ? [lockGuardSql(this.journal)]
              : ['BEGIN', lockGuardSql(this.journal), ensureJournalSql(this.journal, true), 'COMMIT']
            : [];
        const unlock = last ? [`SELECT pg_advisory_unlock(${this.lockKey}) AS sluice_unlocked`] : [];
        const outcome = await inSpan(
          'sluice.migration',
          { ...batchAttributes(segment), 'sluice.migration.direction': 'down' },
          () => undoBatch(this.undoSession(), segment, entries, prelude, unlock),
        );
        if (outcome.kind === 'committed') {
          this.lockHeld = !last;
          serverMs += outcome.serverMs;
          for (const step of segment) undone.push(step.version);
          entries = entries.filter((e) => !undone.includes(e.version));
          continue;
        }
        // The message never ran (it did not even take the lock): file by file under the lock.
        return await this.withLock(state, (locked) => this.applyLocked(locked, options, t0));
      }
    } finally {
      await this.unlock();
    }
    return undoReport(plan, state.entries, undone, { journalMs, executeMs: performance.now() - t1, serverMs });
  }

  /** This session as the way back sees it (undo-path.ts): the lock's state read live. */
  private undoSession(): UndoSession {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the getter below reads the live lock state
    const migrator = this;
    return {
      client: this.client,
      host: this.host,
      journal: this.journal,
      table: this.table,
      get lockHeld() {
        return migrator.lockHeld;
      },
      recover: () => this.recover(),
      transactionOpen: () => this.transactionOpen(),
      lockedError: () => this.lockedError(),
      query: (text) => this.query(text),
      timeoutSettings: (m, scope) => this.timeoutSettings(m, scope),
    };
  }

  /** The plan's down files one by one, the lock held (a first down file that is `no-transaction`, or a fallback). */
  private async undoEach(plan: TenantPlan, entries: readonly JournalEntry[], t0: number): Promise<MigrationReport> {
    const journalMs = performance.now() - t0;
    const t1 = performance.now();
    const undone: number[] = [];
    let serverMs = 0;
    for (const step of plan.undo.map(downStep)) {
      serverMs += await inSpan('sluice.migration', downAttributes(step), () =>
        step.transactional
          ? undoInTransaction(this.undoSession(), step)
          : undoWithoutTransaction(this.undoSession(), step),
      );
      undone.push(step.version);
    }
    return undoReport(plan, entries, undone, { journalMs, executeMs: performance.now() - t1, serverMs });
  }

  /**
   * Marks every version up to `version` as applied without running it, for databases that
   * already have the schema. Refused when the journal already holds anything.
   */
  async baseline(version: number, executorId?: string): Promise<number[]> {
    if (!this.set.migrations.some((m) => m.version === version)) {
      throw new TargetError(`baseline version ${version} is not in the migration set`);
    }
    return this.withLock(undefined, async (entries) => {
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
              `(${m.version}, ${this.lit(m.name)}, ${this.lit(m.checksum)}, 'applied', true, ${this.lit(executorId ?? null)}, ${this.lit(m.down?.checksum ?? null)})`,
          )
          .join(', ');
        await this.query(
          `INSERT INTO ${this.table} (version, name, checksum, status, baseline, executor_id, down_checksum) VALUES ${values}`,
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
    await this.withLock(undefined, async (entries) => {
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

  /**
   * Takes the database's migration lock (never waiting), reads the journal, runs `work`, unlocks.
   * `known`: what the lockless read found. No journal (or an old shape): the lock, the journal's
   * creation and its read go in one message; otherwise the creation follows only if needed.
   */
  private async withLock<T>(
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

  private async unlock(): Promise<void> {
    if (!this.lockHeld) return;
    this.lockHeld = false;
    await this.client.query(`SELECT pg_advisory_unlock(${this.lockKey})`).catch(() => undefined);
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

  /**
   * Applies a `no-transaction` file statement by statement; returns the statements' time in ms
   * (network included). Its dirty row goes with the file's session settings, its completion with
   * their reset: two round trips around the statements, no more.
   */
  private async applyWithoutTransaction(m: Migration, options: MigrateOptions): Promise<number> {
    const statements = m.statements;
    // Only a concurrent index build can leave an invalid index behind: no catalog scan otherwise.
    const buildsConcurrently = /\bconcurrently\b/i.test(m.sql);
    const invalidBefore = buildsConcurrently ? await this.invalidIndexes() : [];
    const settings = this.timeoutSettings(m, 'SESSION');
    await this.query([this.journalInsert(m, 'dirty', options), ...settings].join(';\n'));
    const durationMs = await runStatementsOneByOne(
      this.client,
      statements,
      settings.length > 0,
      async (error, index) => {
        const classified = classifyPgError(error, this.host, m.version);
        // CREATE INDEX CONCURRENTLY commits its catalog entry before it waits: a failed build
        // leaves an invalid index behind, which IF NOT EXISTS would later skip. Then it is dirty.
        const leftovers = buildsConcurrently
          ? (await this.invalidIndexes().catch(() => [])).filter((name) => !invalidBefore.includes(name))
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
          await this.client
            .query(`DELETE FROM ${this.table} WHERE version = ${m.version} AND status = 'dirty'`)
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
    await this.query(
      [
        `UPDATE ${this.table} SET status = 'applied', applied_at = now(), duration_ms = ${durationMs} WHERE version = ${m.version}`,
        ...(settings.length > 0 ? ['RESET lock_timeout', 'RESET statement_timeout'] : []),
      ].join(';\n'),
    );
    return durationMs;
  }

  /** Names of the invalid indexes in the database (left by failed concurrent builds). */
  private async invalidIndexes(): Promise<string[]> {
    const [result] = asResults(
      await this.query('SELECT indexrelid::regclass::text AS name FROM pg_index WHERE NOT indisvalid ORDER BY 1'),
    );
    return (result!.rows as Array<{ name: string }>).map((r) => r.name);
  }

  private timeoutSettings(m: Migration, scope: 'LOCAL' | 'SESSION'): string[] {
    const out: string[] = [];
    if (m.lockTimeoutMs !== undefined) out.push(`SET ${scope} lock_timeout = ${m.lockTimeoutMs}`);
    if (m.statementTimeoutMs !== undefined) out.push(`SET ${scope} statement_timeout = ${m.statementTimeoutMs}`);
    return out;
  }

  private journalInsert(m: Migration, status: 'applied' | 'dirty', options: MigrateOptions): string {
    // duration_ms: time since the transaction began (now() is the transaction start).
    // down_checksum: the down file beside it now, so a rollback can tell whether it changed since.
    return `INSERT INTO ${this.table} (version, name, checksum, status, duration_ms, run_id, executor_id, down_checksum) VALUES (${m.version}, ${this.lit(m.name)}, ${this.lit(m.checksum)}, '${status}', (extract(epoch FROM clock_timestamp() - now()) * 1000)::integer, ${this.lit(options.runId ?? null)}, ${this.lit(options.executorId ?? null)}, ${this.lit(m.down?.checksum ?? null)})`;
  }

  private lit(value: string | null): string {
    return value === null ? 'NULL' : this.client.escapeLiteral(value);
  }

  private async query(text: string): Promise<pg.QueryResult | pg.QueryResult[]> {
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

/** A batch's span: the versions it carries (the first as `sluice.version`, like a single file's). */
function batchAttributes(files: readonly Migration[]) {
  return {
    'sluice.version': files[0]!.version,
    'sluice.versions': files.map((m) => m.version),
    'sluice.migration.name': files.map((m) => m.name).join(', '),
    'sluice.migration.transactional': true,
  };
}

/** A batch's bounds: the server parses a whole message before running any of it. */
const BATCH_MAX_FILES = 64;
const BATCH_MAX_SQL_CHARS = 4 * 1024 * 1024;

/**
 * Splits pending files into runs of transactional ones (at most BATCH_MAX_FILES files and
 * BATCH_MAX_SQL_CHARS of SQL each) and single `no-transaction` ones, in order.
 */
function splitTransactional(files: readonly Migration[]): Migration[][] {
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

function appliedEntry(m: Migration, options: MigrateOptions): JournalEntry {
  return { version: m.version, name: m.name, checksum: m.checksum, status: 'applied', runId: options.runId ?? null };
}

function asResults(r: pg.QueryResult | pg.QueryResult[]): pg.QueryResult[] {
  return Array.isArray(r) ? r : [r];
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function toEntry(row: JournalRow): JournalEntry {
  return {
    version: Number(row.version),
    name: row.name,
    checksum: row.checksum,
    status: row.status ?? 'applied',
    runId: row.run_id,
    downChecksum: row.down_checksum,
  };
}

/** A rollback of a run that changed nothing in this tenant: nothing to undo, nothing touched. */
function untouchedReport(current: number | null, t0: number): MigrationReport {
  return {
    status: 'upToDate',
    applied: [],
    fromVersion: current,
    toVersion: current,
    timings: { journalMs: performance.now() - t0, executeMs: 0, serverMs: 0 },
  };
}

function undoReport(
  plan: TenantPlan,
  entries: readonly JournalEntry[],
  undone: number[],
  timings: MigrationReport['timings'],
): MigrationReport {
  return {
    status: undone.length > 0 ? 'rolledBack' : 'upToDate',
    applied: [],
    rolledBack: undone,
    fromVersion: plan.current,
    toVersion: versionAfterUndo(entries, undone),
    timings,
  };
}
