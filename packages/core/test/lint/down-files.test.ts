import { describe, expect, it } from 'vitest';

import { lintMigrationSet } from '../../src/lint/lint-migration-set.js';
import { createMigrationSet } from '../../src/migration-set.js';
import { BASE, parser, rulesOf } from './lint-support.js';

/** The findings of `0002_change.down.sql`, the down file of an `ADD COLUMN`. */
function lintDown(down: string) {
  const set = createMigrationSet(
    [
      { file: '0001_base.sql', sql: BASE },
      { file: '0002_change.sql', sql: '-- sluice:lock-timeout 2s\nALTER TABLE users ADD COLUMN nickname text;' },
      { file: '0002_change.down.sql', sql: down },
    ],
    parser,
  );
  return lintMigrationSet(set, parser).filter((f) => f.file === '0002_change.down.sql');
}

describe('down files', () => {
  it('may drop or rename what their up file added: that is their job', () => {
    expect(lintDown('-- sluice:lock-timeout 2s\nALTER TABLE users DROP COLUMN nickname;')).toEqual([]);
    expect(lintDown('-- sluice:lock-timeout 2s\nDROP TABLE orders;')).toEqual([]);
    expect(lintDown('-- sluice:lock-timeout 2s\nALTER TABLE users RENAME COLUMN name TO full_name;')).toEqual([]);
  });

  it('are still flagged for a strong lock without a lock_timeout, and for locks and rewrites', () => {
    const findings = lintDown('ALTER TABLE users DROP COLUMN nickname;');
    expect(rulesOf(findings)).toEqual(['missing-lock-timeout']);
    expect(findings[0]).toMatchObject({ file: '0002_change.down.sql', line: 1 });
    expect(rulesOf(lintDown('-- sluice:lock-timeout 2s\nCREATE INDEX i ON users (email);'))).toEqual([
      'index-without-concurrently',
    ]);
  });

  it('come after the up files, newest version first', () => {
    const set = createMigrationSet(
      [
        { file: '0001_a.sql', sql: 'CREATE TABLE a (id int);' },
        { file: '0001_a.down.sql', sql: 'LOCK TABLE users;' },
        { file: '0002_b.sql', sql: 'CREATE TABLE b (id int);' },
        { file: '0002_b.down.sql', sql: 'LOCK TABLE users;' },
      ],
      parser,
    );
    const files = lintMigrationSet(set, parser).map((f) => f.file);
    expect([...new Set(files)]).toEqual(['0002_b.down.sql', '0001_a.down.sql']);
  });
});
