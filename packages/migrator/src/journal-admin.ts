import { type MigrationSet, TargetError } from '@sluice/core';

import type { TenantSession } from './tenant-session.js';

/**
 * Marks every version up to `version` as applied without running it, for databases that
 * already have the schema. Refused when the journal already holds anything.
 */
export async function baselineJournal(
  session: TenantSession,
  set: MigrationSet,
  version: number,
  executorId?: string,
): Promise<number[]> {
  if (!set.migrations.some((m) => m.version === version)) {
    throw new TargetError(`baseline version ${version} is not in the migration set`);
  }
  return session.withLock(undefined, async (entries) => {
    if (entries.length > 0) {
      throw new TargetError(
        `cannot baseline: the journal already holds versions up to ${Math.max(...entries.map((e) => e.version))}`,
      );
    }
    const rows = set.migrations.filter((m) => m.version <= version);
    if (rows.length > 0) {
      const values = rows
        .map(
          (m) =>
            `(${m.version}, ${session.lit(m.name)}, ${session.lit(m.checksum)}, 'applied', true, ${session.lit(executorId ?? null)}, ${session.lit(m.down?.checksum ?? null)})`,
        )
        .join(', ');
      await session.query(
        `INSERT INTO ${session.table} (version, name, checksum, status, baseline, executor_id, down_checksum) VALUES ${values}`,
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
export async function repairJournal(
  session: TenantSession,
  set: MigrationSet,
  version: number,
  resolution: 'retry' | 'applied',
): Promise<void> {
  await session.withLock(undefined, async (entries) => {
    const entry = entries.find((e) => e.version === version);
    if (!entry || entry.status !== 'dirty') {
      const dirty = entries.find((e) => e.status === 'dirty');
      throw new TargetError(
        `version ${version} is not dirty${dirty ? ` (version ${dirty.version} is)` : ' (no version is dirty)'}`,
      );
    }
    if (resolution === 'retry') {
      await session.query(`DELETE FROM ${session.table} WHERE version = ${version} AND status = 'dirty'`);
    } else {
      const file = set.migrations.find((m) => m.version === version);
      const checksum = file?.checksum ?? entry.checksum;
      await session.query(
        `UPDATE ${session.table} SET status = 'applied', checksum = ${session.lit(checksum)}, applied_at = now() WHERE version = ${version}`,
      );
    }
  });
}
