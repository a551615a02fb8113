import type { LintSeverity } from '@sluice/contracts';

/** A lint rule: its stable name, how bad it is, why, and what to write instead (`docs/lint.md`). */
export interface LintRule {
  severity: LintSeverity;
  why: string;
  instead: string;
}

/** Every rule, by its stable name. Names never change; a retired rule keeps its name unused. */
export const LINT_RULES = {
  'index-without-concurrently': {
    severity: 'error',
    why: 'CREATE INDEX on an existing table holds a SHARE lock for the whole build: every write to the table waits.',
    instead: 'CREATE INDEX CONCURRENTLY in a `-- sluice:no-transaction` file.',
  },
  'reindex-without-concurrently': {
    severity: 'error',
    why: 'REINDEX locks out writes to the table (and reads that use the index) until it is done.',
    instead: 'REINDEX … CONCURRENTLY (PostgreSQL 12+) in a `-- sluice:no-transaction` file.',
  },
  'constraint-without-not-valid': {
    severity: 'error',
    why: 'Adding a foreign key or check constraint scans the whole table under a lock that blocks writes (and, for a foreign key, the referenced table too).',
    instead:
      'ADD CONSTRAINT … NOT VALID, then VALIDATE CONSTRAINT in a later file (it takes a lock that lets reads and writes through).',
  },
  'set-not-null-without-check': {
    severity: 'error',
    why: 'SET NOT NULL scans the whole table under ACCESS EXCLUSIVE, unless a validated CHECK (col IS NOT NULL) proves it.',
    instead:
      'ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT c (a later file); then SET NOT NULL (and drop c).',
  },
  'column-type-rewrite': {
    severity: 'error',
    why: 'Changing a column type rewrites the table and its indexes under ACCESS EXCLUSIVE (except binary-compatible changes such as varchar(n) to a larger limit or to text).',
    instead: 'Add a new column, backfill it in batches, switch the application, drop the old column later.',
  },
  'add-column-volatile-default': {
    severity: 'error',
    why: 'A column whose default is volatile (random(), gen_random_uuid(), clock_timestamp(), a serial or identity, a stored generated column) rewrites the table under ACCESS EXCLUSIVE; a constant or now() does not (PostgreSQL 11+).',
    instead: 'Add the column without a default (or with a constant), set the default separately, backfill in batches.',
  },
  'unique-without-using-index': {
    severity: 'error',
    why: 'Adding a UNIQUE or PRIMARY KEY constraint builds its index under ACCESS EXCLUSIVE.',
    instead:
      'CREATE UNIQUE INDEX CONCURRENTLY (no-transaction file), then ADD CONSTRAINT … UNIQUE USING INDEX / PRIMARY KEY USING INDEX.',
  },
  'vacuum-full': {
    severity: 'error',
    why: 'VACUUM FULL rewrites the table under ACCESS EXCLUSIVE: no reads, no writes until it ends.',
    instead: 'Plain VACUUM (it cannot run in a migration transaction either), or pg_repack outside migrations.',
  },
  cluster: {
    severity: 'error',
    why: 'CLUSTER rewrites the table under ACCESS EXCLUSIVE.',
    instead: 'pg_repack outside migrations, or leave physical order alone.',
  },
  'lock-table': {
    severity: 'error',
    why: 'An explicit LOCK TABLE holds its lock until the file commits and queues every other session behind it.',
    instead: 'Let each statement take the lock it needs, with a short lock timeout.',
  },
  'rename-column': {
    severity: 'error',
    why: 'Renaming a column breaks the application code still running against the old name.',
    instead: 'Add the new column, write both, backfill, switch readers, drop the old one in a later release.',
  },
  'rename-table': {
    severity: 'error',
    why: 'Renaming a table breaks the application code still running against the old name.',
    instead: 'Create the new table (or a view with the old name), move readers and writers, drop the old name later.',
  },
  'drop-column': {
    severity: 'error',
    why: 'Dropping a column breaks the application code still reading or writing it.',
    instead:
      'Stop using the column in a release first, then drop it (and say so with `-- sluice:lint-ignore drop-column <reason>`).',
  },
  'drop-table': {
    severity: 'error',
    why: 'Dropping a table breaks the application code still using it, and its data is gone.',
    instead: 'Stop using the table in a release first, then drop it with an ignore that says so.',
  },
  'unbounded-dml-in-ddl-transaction': {
    severity: 'warning',
    why: 'An UPDATE or DELETE without WHERE in a file that also changes the schema touches every row while the file holds its DDL locks.',
    instead: 'Backfill in batches in its own no-transaction file or outside migrations; keep DDL files short.',
  },
  'concurrently-in-transaction': {
    severity: 'error',
    why: 'CONCURRENTLY (and VACUUM) cannot run inside a transaction block: the file fails on every tenant.',
    instead: 'Put the statement in a file that starts with `-- sluice:no-transaction`.',
  },
  'int-primary-key': {
    severity: 'warning',
    why: 'An int or serial primary key runs out at 2,147,483,647, and widening it later rewrites the table.',
    instead: 'bigint (bigint GENERATED ALWAYS AS IDENTITY, or bigserial).',
  },
  'prefer-text': {
    severity: 'warning',
    why: 'char(n) pads and varchar(n) only caps the length; raising the cap later can need a rewrite.',
    instead: 'text, with a CHECK (char_length(col) <= n) constraint when a limit matters.',
  },
  'missing-lock-timeout': {
    severity: 'warning',
    why: 'A statement that takes a strong lock queues behind long transactions, and every query on the table queues behind it, for as long as lock_timeout allows.',
    instead:
      '`-- sluice:lock-timeout 2s` (or SET lock_timeout) below the session default; a lock timeout is retried later.',
  },
  'invalid-lint-ignore': {
    severity: 'error',
    why: 'A lint-ignore comment must name a rule and give the reason, or it silences nothing.',
    instead:
      '`-- sluice:lint-ignore RULE reason` right above the statement, or `-- sluice:lint-ignore-file RULE reason` at the top.',
  },
} as const satisfies Record<string, LintRule>;

export type LintRuleName = keyof typeof LINT_RULES;

export function isLintRuleName(name: string): name is LintRuleName {
  return Object.hasOwn(LINT_RULES, name);
}
