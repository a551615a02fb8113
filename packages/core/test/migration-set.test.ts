import { createHash } from 'node:crypto';

import { loadSqlParser } from '@sluice/sql-parser';
import { describe, expect, it } from 'vitest';

import { MigrationSetError } from '../src/errors.js';
import {
  checksumOf,
  createMigrationSet,
  describeWithoutDown,
  type MigrationSource,
  resolveTarget,
} from '../src/migration-set.js';

const parser = await loadSqlParser();

const src = (file: string, sql = `-- ${file}\nSELECT 1;`): MigrationSource => ({ file, sql });

function setError(sources: MigrationSource[]): MigrationSetError {
  try {
    createMigrationSet(sources, parser);
  } catch (error) {
    expect(error).toBeInstanceOf(MigrationSetError);
    return error as MigrationSetError;
  }
  throw new Error('expected createMigrationSet to throw');
}

describe('checksumOf', () => {
  it('is the sha256 hex of the text', () => {
    expect(checksumOf('SELECT 1;\n')).toBe(createHash('sha256').update('SELECT 1;\n').digest('hex'));
    expect(checksumOf('')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('ignores CRLF vs LF and a leading byte-order mark', () => {
    const lf = 'CREATE TABLE t (id int);\nSELECT 1;\n';
    expect(checksumOf(lf.replace(/\n/g, '\r\n'))).toBe(checksumOf(lf));
    expect(checksumOf(`\uFEFF${lf}`)).toBe(checksumOf(lf));
    expect(checksumOf(`\uFEFF${lf.replace(/\n/g, '\r\n')}`)).toBe(checksumOf(lf));
  });

  it('changes for any other change, including white space and a BOM in the middle', () => {
    const base = checksumOf('SELECT 1;\n');
    expect(checksumOf('SELECT 2;\n')).not.toBe(base);
    expect(checksumOf('SELECT 1; \n')).not.toBe(base);
    expect(checksumOf('SELECT 1;')).not.toBe(base);
    expect(checksumOf('SELECT 1;\n\n')).not.toBe(base);
    expect(checksumOf('SELECT\uFEFF 1;\n')).not.toBe(checksumOf('SELECT 1;\n'));
  });
});

describe('createMigrationSet', () => {
  it('orders migrations by numeric version, not by name or input order', () => {
    const set = createMigrationSet(
      [src('10_ten.sql'), src('0002_two.sql'), src('1_one.sql'), src('9_nine.sql')],
      parser,
    );
    expect(set.migrations.map((m) => m.version)).toEqual([1, 2, 9, 10]);
    expect(set.migrations.map((m) => m.name)).toEqual(['one', 'two', 'nine', 'ten']);
    expect(set.latest).toBe(10);
  });

  it('fills every field of a migration', () => {
    const sql = 'CREATE TABLE users (id bigint);\n';
    const [m] = createMigrationSet([{ file: '0001_create-users_table.sql', sql }], parser).migrations;
    expect(m).toEqual({
      version: 1,
      name: 'create-users_table',
      file: '0001_create-users_table.sql',
      sql,
      checksum: checksumOf(sql),
      transactional: true,
      statements: ['CREATE TABLE users (id bigint)'],
    });
  });

  it('ignores files that do not end in .sql', () => {
    const set = createMigrationSet(
      [src('0001_a.sql'), src('README.md'), src('0002_b.sql.bak'), src('0003_c.txt'), src('.gitkeep')],
      parser,
    );
    expect(set.migrations.map((m) => m.file)).toEqual(['0001_a.sql']);
  });

  it('is empty with latest 0 for no sources', () => {
    const set = createMigrationSet([], parser);
    expect(set.migrations).toEqual([]);
    expect(set.latest).toBe(0);
    expect(set.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it.each([
    'init.sql',
    '0001.sql',
    '0001_.sql',
    '0001-init.sql',
    'v1_init.sql',
    '0001_init table.sql',
    '0001__init.sql',
    '0001_in.it.sql',
    '-1_init.sql',
  ])('rejects the malformed name %s', (file) => {
    expect(setError([src(file)]).message).toContain(file);
  });

  it('rejects a version that is not a safe integer', () => {
    expect(setError([src('99999999999999999999_huge.sql')]).message).toMatch(/too large/);
  });

  it('rejects two files with one version, even when spelled differently', () => {
    const error = setError([src('0001_a.sql'), src('1_b.sql')]);
    expect(error.message).toContain('1_b.sql');
    expect(error.message).toContain('0001_a.sql');
    expect(error.code).toBe('invalid_migration_set');
    expect(error.transient).toBe(false);
  });

  it('freezes the set and its migration list', () => {
    const set = createMigrationSet([src('0001_a.sql')], parser);
    expect(Object.isFrozen(set)).toBe(true);
    expect(Object.isFrozen(set.migrations)).toBe(true);
  });

  describe('directives', () => {
    const one = (sql: string) => createMigrationSet([{ file: '0001_x.sql', sql }], parser).migrations[0]!;

    it('marks -- sluice:no-transaction files as not transactional', () => {
      expect(one('-- sluice:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (c);').transactional).toBe(false);
      expect(one('--sluice:no-transaction\nSELECT 1;').transactional).toBe(false);
      expect(one('SELECT 1;').transactional).toBe(true);
    });

    it('parses lock-timeout and statement-timeout durations into ms', () => {
      const m = one('-- Adds an index.\n-- sluice:lock-timeout 5s\n-- sluice:statement-timeout 2min\nSELECT 1;');
      expect(m.lockTimeoutMs).toBe(5000);
      expect(m.statementTimeoutMs).toBe(120_000);
      expect(m.transactional).toBe(true);
    });

    it('leaves the timeouts undefined when no directive sets them', () => {
      const m = one('-- just a comment\nSELECT 1;');
      expect(m.lockTimeoutMs).toBeUndefined();
      expect(m.statementTimeoutMs).toBeUndefined();
      expect('lockTimeoutMs' in m).toBe(false);
    });

    it('reads directives after blank lines, a BOM and CRLF line endings', () => {
      const m = one('\uFEFF\r\n\r\n-- sluice:no-transaction\r\n-- sluice:lock-timeout 500ms\r\nSELECT 1;\r\n');
      expect(m.transactional).toBe(false);
      expect(m.lockTimeoutMs).toBe(500);
    });

    it('reads directives only in the leading comment block', () => {
      const m = one('-- header\nSELECT 1;\n-- sluice:no-transaction\n-- sluice:lock-timeout 5s\n-- sluice:bogus');
      expect(m.transactional).toBe(true);
      expect(m.lockTimeoutMs).toBeUndefined();
    });

    it('rejects an unknown directive, naming the file and the directive', () => {
      const error = setError([{ file: '0007_x.sql', sql: '-- sluice:no-transactions\nSELECT 1;' }]);
      expect(error.message).toContain('0007_x.sql');
      expect(error.message).toContain('sluice:no-transactions');
    });

    it.each([
      '-- sluice:lock-timeout',
      '-- sluice:lock-timeout soon',
      '-- sluice:statement-timeout 5 days',
      '-- sluice:statement-timeout -1s',
      '-- sluice:lock-timeout 5000',
    ])('rejects a timeout without a valid duration: %s', (line) => {
      expect(setError([{ file: '0001_x.sql', sql: `${line}\nSELECT 1;` }]).message).toMatch(/needs a duration/);
    });
  });

  describe('digest', () => {
    const base = [src('0001_a.sql', 'SELECT 1;'), src('0002_b.sql', 'SELECT 2;'), src('0003_c.sql', 'SELECT 3;')];

    it('does not depend on input order or on non-.sql files', () => {
      const a = createMigrationSet(base, parser);
      const b = createMigrationSet([base[2]!, src('notes.md'), base[0]!, base[1]!], parser);
      expect(b.digest).toBe(a.digest);
    });

    it('does not depend on line endings or a BOM', () => {
      const crlf = base.map((s) => ({ file: s.file, sql: `\uFEFF${s.sql}\r\n` }));
      const lf = base.map((s) => ({ file: s.file, sql: `${s.sql}\n` }));
      expect(createMigrationSet(crlf, parser).digest).toBe(createMigrationSet(lf, parser).digest);
    });

    it('changes when any file changes, is added or is removed', () => {
      const digest = createMigrationSet(base, parser).digest;
      for (let i = 0; i < base.length; i++) {
        const changed = base.map((s, j) => (j === i ? { file: s.file, sql: `${s.sql} ` } : s));
        expect(createMigrationSet(changed, parser).digest).not.toBe(digest);
      }
      expect(createMigrationSet([...base, src('0004_d.sql')], parser).digest).not.toBe(digest);
      expect(createMigrationSet(base.slice(0, 2), parser).digest).not.toBe(digest);
    });

    it('changes when a file is renumbered', () => {
      const renumbered = [base[0]!, base[1]!, { file: '0004_c.sql', sql: base[2]!.sql }];
      expect(createMigrationSet(renumbered, parser).digest).not.toBe(createMigrationSet(base, parser).digest);
    });
  });
});

describe('resolveTarget', () => {
  const set = createMigrationSet([src('0001_a.sql'), src('0002_b.sql'), src('0005_e.sql')], parser);

  it('resolves latest to the highest version', () => {
    expect(resolveTarget(set, 'latest')).toBe(5);
    expect(resolveTarget(createMigrationSet([], parser), 'latest')).toBe(0);
  });

  it('accepts a version in the set, and 0', () => {
    expect(resolveTarget(set, 2)).toBe(2);
    expect(resolveTarget(set, 5)).toBe(5);
    expect(resolveTarget(set, 0)).toBe(0);
  });

  it.each([3, 6, -1, 1.5])('rejects %s, a version that is not in the set', (target) => {
    expect(() => resolveTarget(set, target)).toThrow(MigrationSetError);
    expect(() => resolveTarget(set, target)).toThrow(/latest is 5/);
  });
});

describe('strictness found by review', () => {
  it.each([
    '-- sluice:lock_timeout 5s',
    '-- sluice:No-Transaction',
    '-- sluice: no-transaction',
    '-- SLUICE:no-transaction',
  ])('rejects the near-miss directive %s', (line) => {
    expect(setError([src('0001_a.sql', `${line}\nSELECT 1;`)]).message).toMatch(/directive/);
  });

  it('reads directives from files with CR-only line endings', () => {
    const set = createMigrationSet([src('0001_a.sql', '-- sluice:lock-timeout 5s\rSELECT 1;')], parser);
    expect(set.migrations[0]?.lockTimeoutMs).toBe(5_000);
  });

  it('refuses version 0', () => {
    expect(setError([src('0000_init.sql')]).message).toMatch(/start at 1/);
  });

  it('refuses transaction control inside a transactional file', () => {
    expect(
      setError([src('0001_a.sql', 'CREATE TABLE t (id int);\nCOMMIT;\nCREATE TABLE u (id int);')]).message,
    ).toMatch(/transaction control/);
    expect(() => createMigrationSet([src('0001_a.sql', 'DO $$ BEGIN PERFORM 1; END $$;')], parser)).not.toThrow();
    expect(() => createMigrationSet([src('0001_a.sql', '-- sluice:no-transaction\nCOMMIT;')], parser)).not.toThrow();
  });
});

describe('down files', () => {
  const base = [src('0001_a.sql'), src('0002_b.sql'), src('0003_c.sql')];

  it('attaches NNNN_name.down.sql to its up file, checksummed, with its own directives', () => {
    const set = createMigrationSet(
      [
        ...base,
        src('0002_b.down.sql', '-- sluice:no-transaction\n-- sluice:lock-timeout 2s\nDROP INDEX CONCURRENTLY i;'),
        src('0003_c.down.sql', 'DROP TABLE c;'),
      ],
      parser,
    );
    expect(set.migrations.map((m) => m.version)).toEqual([1, 2, 3]);
    const down = set.migrations[1]!.down!;
    expect(down).toMatchObject({ file: '0002_b.down.sql', transactional: false, lockTimeoutMs: 2000 });
    expect(down.checksum).toBe(checksumOf(down.sql));
    expect(down.statements).toEqual(['DROP INDEX CONCURRENTLY i']);
    expect(set.migrations[2]!.down!.transactional).toBe(true);
    expect(set.migrations[0]!.down).toBeUndefined();
    expect(set.withoutDown).toEqual([1]);
    expect(describeWithoutDown(set)).toBe('1 of 3 versions have no down file (no way back below: 1)');
  });

  it('states which versions have no way back, as ranges', () => {
    const set = createMigrationSet([...base, src('0004_d.sql'), src('0003_c.down.sql', 'DROP TABLE c;')], parser);
    expect(set.withoutDown).toEqual([1, 2, 4]);
    expect(describeWithoutDown(set)).toBe('3 of 4 versions have no down file (no way back below: 1-2, 4)');
    expect(describeWithoutDown(createMigrationSet(base, parser))).toBe(
      'no version has a down file (no way back below: 1-3)',
    );
    const full = createMigrationSet([src('0001_a.sql'), src('0001_a.down.sql', 'SELECT 1;')], parser);
    expect(describeWithoutDown(full)).toBeNull();
  });

  it('refuses a down file without its up file, naming the file it needs', () => {
    expect(setError([...base, src('0007_x.down.sql')]).message).toBe(
      '0007_x.down.sql: a down file needs its up file 0007_x.sql',
    );
    expect(setError([...base, src('0002_other.down.sql')]).message).toBe(
      '0002_other.down.sql: a down file needs its up file 0002_other.sql (version 2 is 0002_b.sql)',
    );
  });

  it('checks a down file like an up file (transaction control, directives, syntax)', () => {
    expect(setError([...base, src('0001_a.down.sql', 'COMMIT;')]).message).toMatch(
      /0001_a.down.sql:1:1: transaction control \(COMMIT\)/,
    );
    expect(setError([...base, src('0001_a.down.sql', '-- sluice:no-transactions\nSELECT 1;')]).message).toMatch(
      /0001_a.down.sql: unknown directive/,
    );
  });

  it('puts down files in the digest, and leaves the digest of a set without them as it was', () => {
    const plain = createMigrationSet(base, parser);
    const expected = createHash('sha256')
      .update(plain.migrations.map((m) => `${m.version}:${m.checksum}`).join('\n'), 'utf8')
      .digest('hex');
    expect(plain.digest).toBe(expected);
    const withDown = createMigrationSet([...base, src('0003_c.down.sql', 'DROP TABLE c;')], parser);
    expect(withDown.digest).not.toBe(plain.digest);
    const changedDown = createMigrationSet([...base, src('0003_c.down.sql', 'DROP TABLE c CASCADE;')], parser);
    expect(changedDown.digest).not.toBe(withDown.digest);
  });
});
