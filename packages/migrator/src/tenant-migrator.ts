import {
  type JournalEntry,
  LockedError,
  type Migration,
  type MigrationSet,
  planTenant,
  rollbackTargetOf,
  TargetError,
  type TenantPlan,
} from '@sluice/core';
import type pg from 'pg';

import { appliedEntry, applyBatch, applyInTransaction, applyWithoutTransaction } from './apply-path.js';
import { downAttributes, downStep } from './down-steps.js';
import { DEFAULT_JOURNAL, type JournalLocation } from './journal.js';
import { baselineJournal, repairJournal } from './journal-admin.js';
import type { JournalReadHints } from './journal-reads.js';
import type { LockFence } from './lock-fencing.js';
import {
  appliedReport,
  dryRunReport,
  journalOnly,
  type MigrationReport,
  undoReport,
  untouchedReport,
} from './migration-report.js';
import { batchAttributes, inSpan, migrationAttributes } from './migration-tracing.js';
import { type JournalState, TenantSession } from './tenant-session.js';
import { splitTransactional } from './transaction-batch.js';
import { undoBatch, undoInTransaction, undoWithoutTransaction } from './undo-path.js';

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
  /**
   * How the first read asks for the journal, learnt per host (journal-reads.ts); without it, the
   * read that never raises an error on the server.
   */
  journalReads?: JournalReadHints;
}

/** What a journal read decides: nothing to do for this run, or a plan (up or down). */
type Decision = { kind: 'untouched'; current: number | null } | { kind: 'plan'; plan: TenantPlan };

/**
 * Applies a migration set to one tenant database over an open connection. One runner per
 * database (a session advisory try-lock), each migration in its own transaction with its
 * journal row, `no-transaction` files tracked as dirty until they finish.
 *
 * Round trips: an up-to-date tenant costs one (the journal read, no lock). A tenant with pending
 * files costs one more when they are all transactional: the lock, the journal's creation if it is
 * new, every file in its own transaction behind a guard, and the unlock travel in one message.
 * Nothing in the common path makes the server raise an error (each one is an aborted
 * transaction and a line in its log), but the plain first read of a database that has no journal
 * yet, where the caller's hints chose it (journal-reads.ts).
 *
 * This class decides and carries out the plan; the session (`tenant-session.ts`) keeps the lock
 * and reads the journal, `apply-path.ts` and `undo-path.ts` send the files each way.
 */
export class TenantMigrator {
  private readonly session: TenantSession;

  constructor(
    client: pg.ClientBase,
    private readonly set: MigrationSet,
    host: string,
    journal: JournalLocation = DEFAULT_JOURNAL,
    /** Lets this session take the lock from a holder whose lease expired (a frozen executor). */
    private readonly fence?: LockFence,
  ) {
    this.session = new TenantSession(client, host, journal);
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
      if (!(await this.session.takeOverExpiredLock(this.fence))) throw error;
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
    const state = await inSpan('sluice.journal', {}, () => this.readFirst(options.journalReads));
    if (options.dryRun) {
      const decision = this.decide(state.entries, options);
      if (decision.kind === 'untouched') return untouchedReport(decision.current, t0);
      return dryRunReport(decision.plan, state.entries, t0);
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
    if (plan && plan.pending.length === 0 && plan.undo.length === 0) return appliedReport(plan, [], journalOnly(t0));
    if (plan?.undo[0]?.down?.transactional) return this.undoBatched(plan, state, options, t0);
    if (plan?.pending[0]?.transactional) return this.migrateBatched(plan, state, options, t0);
    return this.session.withLock(state, (entries) => this.applyLocked(entries, options, t0));
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
  async readJournal(hints?: JournalReadHints): Promise<JournalEntry[]> {
    return (await this.readFirst(hints)).entries;
  }

  /** The lockless read, the way the host's hints say, teaching them what it found. */
  private async readFirst(hints: JournalReadHints | undefined): Promise<JournalState> {
    if (!hints) return this.session.readJournalState();
    const state = await this.session.readJournalFirst(hints.choose(this.session.host));
    hints.observe(this.session.host, state.present);
    return state;
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
            applyWithoutTransaction(this.session, segment[0]!, options),
          );
          applied.push(segment[0]!.version);
          entries.push(appliedEntry(segment[0]!, options));
          continue;
        }
        const ends = this.session.batchEnds(state, index === 0, last);
        const outcome = await inSpan('sluice.migration', batchAttributes(segment), () =>
          applyBatch(this.session, segment, entries, ends, options),
        );
        if (outcome.kind === 'committed') {
          this.session.lockHeld = !last;
          serverMs += outcome.serverMs;
          for (const m of segment) {
            applied.push(m.version);
            entries.push(appliedEntry(m, options));
          }
          continue;
        }
        // Nothing of the batch ran (the message did not parse, or its first file failed): the
        // files go one by one, the path that names the failing file and keeps earlier ones.
        if (!this.session.lockHeld)
          return await this.session.withLock(state, (locked) => this.applyLocked(locked, options, t0));
        const rest = plan.pending.slice(applied.length);
        serverMs += await this.applyEach(rest, options, applied);
        break;
      }
    } finally {
      await this.session.unlock();
    }
    return appliedReport(plan, applied, { journalMs, executeMs: performance.now() - t1, serverMs });
  }

  /** Applies `plan` file by file (the lock held), the path for sets that start with a `no-transaction` file. */
  private async applyPlan(plan: TenantPlan, options: MigrateOptions, t0: number): Promise<MigrationReport> {
    const journalMs = performance.now() - t0;
    const t1 = performance.now();
    const applied: number[] = [];
    const serverMs = await this.applyEach(plan.pending, options, applied);
    return appliedReport(plan, applied, { journalMs, executeMs: performance.now() - t1, serverMs });
  }

  /** One round trip per transactional file, the statements of a `no-transaction` one each on their own. */
  private async applyEach(files: readonly Migration[], options: MigrateOptions, applied: number[]): Promise<number> {
    let serverMs = 0;
    for (const migration of files) {
      serverMs += await inSpan('sluice.migration', migrationAttributes(migration), () =>
        migration.transactional
          ? applyInTransaction(this.session, migration, options)
          : applyWithoutTransaction(this.session, migration, options),
      );
      applied.push(migration.version);
    }
    return serverMs;
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
            undoWithoutTransaction(this.session, step),
          );
          undone.push(step.version);
          entries = entries.filter((e) => e.version !== step.version);
          continue;
        }
        // A journal with versions to undo is present: the guard, and its upgrade if it is old.
        const ends = this.session.batchEnds(state, index === 0, last);
        const outcome = await inSpan(
          'sluice.migration',
          { ...batchAttributes(segment), 'sluice.migration.direction': 'down' },
          () => undoBatch(this.session, segment, entries, ends),
        );
        if (outcome.kind === 'committed') {
          this.session.lockHeld = !last;
          serverMs += outcome.serverMs;
          for (const step of segment) undone.push(step.version);
          entries = entries.filter((e) => !undone.includes(e.version));
          continue;
        }
        // The message never ran (it did not even take the lock): file by file under the lock.
        return await this.session.withLock(state, (locked) => this.applyLocked(locked, options, t0));
      }
    } finally {
      await this.session.unlock();
    }
    return undoReport(plan, state.entries, undone, { journalMs, executeMs: performance.now() - t1, serverMs });
  }

  /** The plan's down files one by one, the lock held (a first down file that is `no-transaction`, or a fallback). */
  private async undoEach(plan: TenantPlan, entries: readonly JournalEntry[], t0: number): Promise<MigrationReport> {
    const journalMs = performance.now() - t0;
    const t1 = performance.now();
    const undone: number[] = [];
    let serverMs = 0;
    for (const step of plan.undo.map(downStep)) {
      serverMs += await inSpan('sluice.migration', downAttributes(step), () =>
        step.transactional ? undoInTransaction(this.session, step) : undoWithoutTransaction(this.session, step),
      );
      undone.push(step.version);
    }
    return undoReport(plan, entries, undone, { journalMs, executeMs: performance.now() - t1, serverMs });
  }

  /**
   * Marks every version up to `version` as applied without running it, for databases that
   * already have the schema. Refused when the journal already holds anything.
   */
  baseline(version: number, executorId?: string): Promise<number[]> {
    return baselineJournal(this.session, this.set, version, executorId);
  }

  /**
   * Resolves a dirty version after a person has looked at the database:
   * `retry` forgets the attempt (the next run applies the file again),
   * `applied` records it as done (the person finished it by hand).
   */
  repair(version: number, resolution: 'retry' | 'applied'): Promise<void> {
    return repairJournal(this.session, this.set, version, resolution);
  }
}
