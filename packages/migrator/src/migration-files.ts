import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

import { createMigrationSet, type MigrationSet, MigrationSetError } from '@sluice/core';
import { loadSqlParser } from '@sluice/sql-parser';

/** Reads every `NNNN_name.sql` in a folder into a checksummed migration set, parsed with PostgreSQL's parser. */
export async function loadMigrationDir(dir: string): Promise<MigrationSet> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    throw new MigrationSetError(
      `cannot read the migrations folder ${dir} (SLUICE_MIGRATIONS_DIR): ${(error as Error).message}`,
      { cause: error },
    );
  }
  const files = await Promise.all(
    names
      .filter((n) => n.endsWith('.sql'))
      .map(async (file) => ({ file, sql: await readFile(path.join(dir, file), 'utf8') })),
  );
  return createMigrationSet(files, await loadSqlParser());
}
