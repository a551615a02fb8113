import type { JournalEntry, TenantPlan } from '@sluice/core';

import { versionAfterUndo } from './down-steps.js';

/** What a migration did to one tenant (what the executor turns into the tenant's outcome). */
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

type Timings = MigrationReport['timings'];

/** Only the journal was read (since `t0`): no SQL ran. */
export function journalOnly(t0: number): Timings {
  return { journalMs: performance.now() - t0, executeMs: 0, serverMs: 0 };
}

/** A rollback of a run that changed nothing in this tenant: nothing to undo, nothing touched. */
export function untouchedReport(current: number | null, t0: number): MigrationReport {
  return { status: 'upToDate', applied: [], fromVersion: current, toVersion: current, timings: journalOnly(t0) };
}

/** A dry run: what the plan would apply or undo, from the journal `entries` it was made from. */
export function dryRunReport(plan: TenantPlan, entries: readonly JournalEntry[], t0: number): MigrationReport {
  const pending = plan.pending.map((m) => m.version);
  const undo = plan.undo.map((m) => m.version);
  return {
    status: pending.length > 0 || undo.length > 0 ? 'pending' : 'upToDate',
    applied: pending,
    ...(undo.length > 0 ? { rolledBack: undo } : {}),
    fromVersion: plan.current,
    toVersion: undo.length > 0 ? versionAfterUndo(entries, undo) : (plan.pending.at(-1)?.version ?? plan.current),
    timings: journalOnly(t0),
  };
}

/** The way forward: the versions `applied` now, and those this run applied on earlier deliveries of its task. */
export function appliedReport(plan: TenantPlan, applied: number[], timings: Timings): MigrationReport {
  const reported = [...new Set([...plan.appliedByRun, ...applied])].sort((a, b) => a - b);
  return {
    status: reported.length > 0 ? 'migrated' : 'upToDate',
    applied: reported,
    fromVersion: plan.current,
    toVersion: plan.pending.at(-1)?.version ?? plan.current,
    timings,
  };
}

/** The way back: the versions `undone`, newest first, from the journal `entries` the plan was made from. */
export function undoReport(
  plan: TenantPlan,
  entries: readonly JournalEntry[],
  undone: number[],
  timings: Timings,
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
