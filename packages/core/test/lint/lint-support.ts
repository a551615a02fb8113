import type { LintFinding } from '@sluice/contracts';
import { loadSqlParser } from '@sluice/sql-parser';

import { lintMigrationSet, type LintOptions } from '../../src/lint/lint-migration-set.js';
import { createMigrationSet } from '../../src/migration-set.js';

export const parser = await loadSqlParser();

/** The tables an application already has: what the files under test change. */
export const BASE = `CREATE TABLE users (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email text NOT NULL,
  name varchar(100),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id bigint NOT NULL,
  total numeric(10,2) NOT NULL,
  status text NOT NULL
);
`;

/**
 * Lints `0001_base.sql` (the existing schema) followed by `sql` as `0002_change.sql`, and returns
 * the findings of the second file only.
 */
export function lintChange(sql: string, options?: LintOptions): LintFinding[] {
  const set = createMigrationSet(
    [
      { file: '0001_base.sql', sql: BASE },
      { file: '0002_change.sql', sql },
    ],
    parser,
  );
  return lintMigrationSet(set, parser, options).filter((f) => f.file === '0002_change.sql');
}

/** The rules found (not ignored), in order. */
export function rulesOf(findings: LintFinding[]): string[] {
  return findings.filter((f) => f.ignored === undefined).map((f) => f.rule);
}

/** Lints `sql` as a change and returns the rules it broke, with the usual short lock timeout set. */
export function rules(sql: string): string[] {
  return rulesOf(lintChange(sql)).filter((r) => r !== 'missing-lock-timeout');
}
