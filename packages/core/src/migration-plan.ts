import { DirtyError, DriftError, type DriftItem, TargetError } from './errors.js';
import type { Migration, MigrationSet } from './migration-set.js';

/** One row of a tenant's journal, as the planner needs it. */
export interface JournalEntry {
  version: number;
  name: string;
  checksum: string;
  /** `dirty`: a no-transaction migration started and did not finish. */
  status: 'applied' | 'dirty';
  /** The run that applied it, when known. */
  runId: string | null;
}

export interface TenantPlan {
  /** Highest applied version, or null for a fresh database. */
  current: number | null;
  /** Migrations to apply, in order. */
  pending: Migration[];
  /** Versions already applied by the given run (a redelivered task finds its own work done). */
  appliedByRun: number[];
}

/**
 * Decides what to apply to one tenant, refusing when that would be unsafe:
 * a dirty journal, drift between the journal and the files, or a target behind the tenant.
 * Pure: the migrator reads the journal, this decides.
 */
export function planTenant(
  set: MigrationSet,
  journal: readonly JournalEntry[],
  targetVersion: number,
  runId?: string,
): TenantPlan {
  const dirty = journal.find((e) => e.status === 'dirty');
  if (dirty) {
    throw new DirtyError(
      `version ${dirty.version} (${dirty.name}) is dirty: a no-transaction migration failed midway; inspect the database, then run sluice repair --version ${dirty.version}`,
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
  if (current !== null && targetVersion < current) {
    throw new TargetError(
      `target ${targetVersion} is behind the applied version ${current}; down migrations are not supported`,
    );
  }
  return {
    current,
    pending: set.migrations.filter((m) => !applied.has(m.version) && m.version <= targetVersion),
    appliedByRun: runId === undefined ? [] : journal.filter((e) => e.runId === runId).map((e) => e.version),
  };
}
