import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import type { MigrationSet } from '@sluice/core';
import { runner } from 'node-pg-migrate';

/** Writes the migration set as node-pg-migrate migrations (`pgm.sql`, `noTransaction` where the file asks). */
export async function writeNodePgMigrateDir(set: MigrationSet, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const m of set.migrations) {
    const body = [
      `export const up = (pgm) => {`,
      ...(m.transactional ? [] : ['  pgm.noTransaction();']),
      `  pgm.sql(${JSON.stringify(m.sql)});`,
      `};`,
      '',
    ].join('\n');
    await writeFile(
      path.join(dir, `${String(m.version).padStart(4, '0')}_${m.name.replace(/[^a-z0-9_]/gi, '_')}.mjs`),
      body,
    );
  }
  return dir;
}

/** node-pg-migrate's own runner for one tenant database: lock, journal (`pgmigrations`), every pending file. */
export async function migrateTenantWithNodePgMigrate(databaseUrl: string, dir: string): Promise<number> {
  const applied = await runner({
    databaseUrl,
    dir,
    direction: 'up',
    migrationsTable: 'pgmigrations',
    count: Infinity,
    // One transaction per file: a no-transaction file cannot share one with the others.
    singleTransaction: false,
    checkOrder: true,
    verbose: false,
    log: () => undefined,
  });
  return applied.length;
}
