import { ChangedByLaterRunError, DirtyError, DriftError, type DriftItem, IrreversibleError } from './errors.js';
import type { Migration, MigrationSet } from './migration-set.js';

/** One row of a tenant's journal, as the planner needs it. */
export interface JournalEntry {
  version: number;
  name: string;
  checksum: string;
  /** `dirty`: a no-transaction migration (or down file) started and did not finish. */
  status: 'applied' | 'dirty';
  /** The run that applied it, when known. */
  runId: string | null;
  /**
   * Checksum of the version's down file when the version was applied; null when it had none then
   * (or the row predates down files). A rollback refuses a down file that changed since.
   */
  downChecksum?: string | null;
}

export interface TenantPlan {
  /** Highest applied version, or null for a fresh database. */
  current: number | null;
  /** Migrations to apply, in order. */
  pending: Migration[];
  /** Versions already applied by the given run (a redelivered task finds its own work done). */
  appliedByRun: number[];
  /**
   * A target below the tenant: the versions to undo, newest first, each with its down file
   * (`pending` is then empty). Empty otherwise.
   */
  undo: Migration[];
}

export interface PlanOptions {
  /** Run a down file even when it differs from the one beside its up file when that ran. */
  allowChangedDown?: boolean;
}

/**
 * Decides what to apply to (or, for a target below the tenant, undo in) one tenant, refusing
 * when that would be unsafe: a dirty journal, drift between the journal and the files, a version
 * to undo without a down file, or a down file changed since its up file ran.
 * Pure: the migrator reads the journal, this decides.
 */
export function planTenant(
  set: MigrationSet,
  journal: readonly JournalEntry[],
  targetVersion: number,
  runId?: string,
  options: PlanOptions = {},
): TenantPlan {
  const dirty = journal.find((e) => e.status === 'dirty');
  if (dirty) {
    throw new DirtyError(
      `version ${dirty.version} (${dirty.name}) is dirty: a no-transaction migration or down file failed midway; inspect the database, then run sluice repair --version ${dirty.version}`,
      { version: dirty.version },
    );
  }
  const files = new Map(set.migrations.map((m) => [m.version, m]));
  const applied = new Set(journal.map((e) => e.version));
  const drift: DriftItem[] = [];
  for (const entry of journal) {
    const file = files.get(entry.version);
    if (!file) drift.push({ kind: 'missing_file', version: entry.version });
    else if (file.checksum !== entry.checksum) drift.push({ kind: 'checksum_mismatch', version: entry.version });
  }
  const current = journal.length === 0 ? null : Math.max(...journal.map((e) => e.version));
  // A file older than the newest applied version that was never applied: someone added it late.
  if (current !== null) {
    for (const m of set.migrations) {
      if (m.version < current && !applied.has(m.version)) drift.push({ kind: 'out_of_order', version: m.version });
    }
  }
  if (drift.length > 0) throw new DriftError(drift.sort((a, b) => a.version - b.version));
  const appliedByRun = runId === undefined ? [] : journal.filter((e) => e.runId === runId).map((e) => e.version);
  if (current !== null && targetVersion < current) {
    return { current, pending: [], appliedByRun, undo: planUndo(files, journal, targetVersion, options) };
  }
  return {
    current,
    pending: set.migrations.filter((m) => !applied.has(m.version) && m.version <= targetVersion),
    appliedByRun,
    undo: [],
  };
}

/** The versions above `targetVersion`, newest first, once each is known to have its own down file. */
function planUndo(
  files: ReadonlyMap<number, Migration>,
  journal: readonly JournalEntry[],
  targetVersion: number,
  options: PlanOptions,
): Migration[] {
  const above = journal.filter((e) => e.version > targetVersion).sort((a, b) => b.version - a.version);
  const undo = above.map((e) => files.get(e.version)!);
  const without = undo.filter((m) => !m.down);
  if (without.length > 0) {
    const versions = without.map((m) => m.version).sort((a, b) => a - b);
    throw new IrreversibleError(
      versions,
      `cannot go back to ${targetVersion}: ${versions
        .map((v) => `version ${v} (${files.get(v)!.file})`)
        .join(', ')} ${versions.length === 1 ? 'has' : 'have'} no down file; nothing was undone`,
    );
  }
  if (!options.allowChangedDown) {
    const changed = above.filter(
      (e) => typeof e.downChecksum === 'string' && e.downChecksum !== files.get(e.version)!.down!.checksum,
    );
    if (changed.length > 0) {
      throw new DriftError(
        changed
          .map((e) => ({ kind: 'down_checksum_mismatch', version: e.version }) as const)
          .sort((a, b) => a.version - b.version),
      );
    }
  }
  return undo;
}

/**
 * The target that rolls back what run `runId` did to one tenant: the version the run found,
 * which is the newest version below the run's own rows (0 when there is none). Null when the run
 * changed nothing here. Versions above the run's, applied by a later run or by hand, would be
 * undone too: refused ({@link ChangedByLaterRunError}) unless `force`.
 */
export function rollbackTargetOf(
  journal: readonly JournalEntry[],
  runId: string,
  options: { force?: boolean } = {},
): number | null {
  const own = journal.filter((e) => e.runId === runId).map((e) => e.version);
  if (own.length === 0) return null;
  const lowest = Math.min(...own);
  const highest = Math.max(...own);
  const later = journal.filter((e) => e.version > highest && e.runId !== runId);
  if (later.length > 0 && !options.force) {
    const versions = later.map((e) => e.version).sort((a, b) => a - b);
    const runs = [...new Set(later.map((e) => e.runId ?? 'no run (baseline or by hand)'))];
    throw new ChangedByLaterRunError(
      versions,
      `changed after run ${runId}: version${versions.length === 1 ? '' : 's'} ${versions.join(', ')} by ${runs.join(', ')}; left alone (rollback --force undoes them too)`,
    );
  }
  const below = journal.filter((e) => e.version < lowest).map((e) => e.version);
  return below.length === 0 ? 0 : Math.max(...below);
}
