import { type JournalEntry, type Migration, MigrationSqlError, type SluiceError } from '@sluice/core';

/**
 * A version's way back as a {@link Migration}: the version and name of the up file, the file, SQL,
 * checksum and directives of its down file — so the migrator's timeouts, batching and spans treat
 * it like any file. The plan guarantees the down file exists.
 */
export function downStep(m: Migration): Migration {
  const down = m.down!;
  return {
    version: m.version,
    name: m.name,
    file: down.file,
    sql: down.sql,
    checksum: down.checksum,
    transactional: down.transactional,
    statements: down.statements,
    ...(down.lockTimeoutMs !== undefined ? { lockTimeoutMs: down.lockTimeoutMs } : {}),
    ...(down.statementTimeoutMs !== undefined ? { statementTimeoutMs: down.statementTimeoutMs } : {}),
  };
}

/** A failed down file's error, named as such: `version 5 (down file 0005_x.down.sql): …`. */
export function downError(error: SluiceError, step: Migration): SluiceError {
  if (!(error instanceof MigrationSqlError) || !error.message.startsWith(`version ${step.version}: `)) return error;
  return new MigrationSqlError(
    `version ${step.version} (down file ${step.file}): ${error.message.slice(`version ${step.version}: `.length)}`,
    error.sqlState,
    { version: step.version, cause: error },
  );
}

/** The highest version left in a journal once `undone` are gone (null: none left). */
export function versionAfterUndo(entries: readonly JournalEntry[], undone: readonly number[]): number | null {
  const left = entries.map((e) => e.version).filter((v) => !undone.includes(v));
  return left.length === 0 ? null : Math.max(...left);
}

/** A down step's span attributes: the version it takes back, and that it is a down file. */
export function downAttributes(step: Migration) {
  return {
    'sluice.version': step.version,
    'sluice.migration.name': step.name,
    'sluice.migration.transactional': step.transactional,
    'sluice.migration.direction': 'down',
  };
}
