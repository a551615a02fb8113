import { loadSqlParser } from '@sluice/sql-parser';
import { describe, expect, it } from 'vitest';

import { MigrationSetError } from '../src/errors.js';
import { createMigrationSet, type MigrationSource } from '../src/migration-set.js';
import { parseStatements, SqlSyntaxError } from '../src/sql-parser.js';

const parser = await loadSqlParser();
const one = (sql: string, file = '0001_a.sql') => createMigrationSet([{ file, sql }], parser).migrations[0]!;

function refusal(source: MigrationSource): MigrationSetError {
  try {
    createMigrationSet([source], parser);
  } catch (error) {
    expect(error).toBeInstanceOf(MigrationSetError);
    return error as MigrationSetError;
  }
  throw new Error('expected the set to be refused');
}

describe('statements split by PostgreSQL’s parser', () => {
  it('keeps a SQL-standard function body (BEGIN ATOMIC … END) in one statement and accepts the file', () => {
    const fn = 'CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT 2;\nEND';
    const m = one(`${fn};\nSELECT f();\n`);
    expect(m.statements).toEqual([fn, 'SELECT f()']);
    expect(m.transactional).toBe(true);
  });

  it('keeps a rule’s action list DO ALSO (a; b) in one statement', () => {
    const rule =
      'CREATE RULE audit_accounts AS ON UPDATE TO accounts DO ALSO (INSERT INTO audit VALUES (old.id); NOTIFY accounts_changed)';
    const m = one(`CREATE TABLE accounts (id bigint);\nCREATE TABLE audit (id bigint);\n${rule};\n`);
    expect(m.statements).toEqual(['CREATE TABLE accounts (id bigint)', 'CREATE TABLE audit (id bigint)', rule]);
  });

  it('splits strings, dollar quotes and comments holding semicolons correctly', () => {
    const sql = [
      "INSERT INTO t VALUES ('a;b', E'it\\'s; fine');",
      'DO $body$ BEGIN PERFORM 1; END $body$;',
      '/* a; /* nested; */ still; */ SELECT "x;y" FROM t -- trailing; comment',
      ';',
    ].join('\n');
    expect(parseStatements('f.sql', sql, parser).map((s) => s.text)).toEqual([
      "INSERT INTO t VALUES ('a;b', E'it\\'s; fine')",
      'DO $body$ BEGIN PERFORM 1; END $body$',
      'SELECT "x;y" FROM t -- trailing; comment',
    ]);
  });

  it('gives each statement the line and column of its first token, and the comments right above it', () => {
    const sql = '-- one\nSELECT 1;\n\n-- unrelated\n\n-- two\n-- two, again\n  SELECT 2;';
    const statements = parseStatements('f.sql', sql, parser);
    expect(statements.map(({ line, column, comments }) => ({ line, column, comments }))).toEqual([
      { line: 2, column: 1, comments: ['one'] },
      { line: 8, column: 3, comments: ['two', 'two, again'] },
    ]);
  });

  it('counts columns in characters when the file holds non-ASCII text', () => {
    const sql = "-- données\nSELECT 'é'; SELECT 'ü' FROM;";
    const error = refusal({ file: '0001_a.sql', sql });
    expect(error).toBeInstanceOf(SqlSyntaxError);
    expect(error.message).toBe('0001_a.sql:2:28: syntax error at or near ";"');
    expect(parseStatements('f.sql', "-- données 🚀\nSELECT 'é'; SELECT 2", parser)[1]).toMatchObject({
      text: 'SELECT 2',
      line: 2,
      column: 13,
    });
  });
});

describe('transaction control in a transactional file', () => {
  it('allows SAVEPOINT, RELEASE and ROLLBACK TO SAVEPOINT: they stay inside the file’s transaction', () => {
    const sql = [
      'CREATE TABLE t (id bigint PRIMARY KEY);',
      'SAVEPOINT before_seed;',
      'INSERT INTO t VALUES (1);',
      'ROLLBACK TO SAVEPOINT before_seed;',
      'RELEASE SAVEPOINT before_seed;',
    ].join('\n');
    expect(one(sql).statements).toHaveLength(5);
  });

  it.each([
    ['PREPARE TRANSACTION', "PREPARE TRANSACTION 'x'", 'PREPARE'],
    ['COMMIT PREPARED', "COMMIT PREPARED 'x'", 'COMMIT'],
    ['ROLLBACK PREPARED', "ROLLBACK PREPARED 'x'", 'ROLLBACK'],
    ['COMMIT', 'COMMIT', 'COMMIT'],
    ['END', 'END', 'END'],
    ['BEGIN', 'BEGIN', 'BEGIN'],
    ['START TRANSACTION', 'START TRANSACTION', 'START'],
    ['ROLLBACK', 'ROLLBACK', 'ROLLBACK'],
    ['ABORT', 'ABORT', 'ABORT'],
  ])('refuses %s, naming the file, line and column', (_name, statement, keyword) => {
    const error = refusal({ file: '0001_a.sql', sql: `CREATE TABLE t (id bigint);\n  ${statement};\n` });
    expect(error.message).toBe(
      `0001_a.sql:2:3: transaction control (${keyword}) is not allowed; each file runs in its own transaction (use -- sluice:no-transaction for statements that cannot)`,
    );
  });

  it('leaves transaction control to no-transaction files', () => {
    expect(one('-- sluice:no-transaction\nCOMMIT;\nSELECT 1;').statements).toEqual(['COMMIT', 'SELECT 1']);
  });
});

describe('a file that does not parse', () => {
  it('is refused with the parser’s message, the file, the line and the column', () => {
    const error = refusal({
      file: '0007_typo.sql',
      sql: 'CREATE TABLE t (id bigint);\nALTER TABLE t ADD COLUM x int;\n',
    });
    expect(error).toBeInstanceOf(SqlSyntaxError);
    expect(error).toMatchObject({ file: '0007_typo.sql', line: 2, column: 27 });
    expect(error.message).toBe('0007_typo.sql:2:27: syntax error at or near "int"');
  });

  it('reports an unterminated string where PostgreSQL does', () => {
    const error = refusal({ file: '0001_a.sql', sql: "SELECT 1;\nSELECT 'open;\n" });
    expect(error.message).toMatch(/^0001_a\.sql:2:8: unterminated quoted string/);
  });

  it('accepts an empty file, and one of only comments, as no statements', () => {
    expect(one('').statements).toEqual([]);
    expect(one('  \n').statements).toEqual([]);
    expect(one('-- nothing yet\n').statements).toEqual([]);
  });

  it('counts a byte-order mark as no column', () => {
    expect(one('\uFEFFSELECT 1;').statements).toEqual(['SELECT 1']);
  });
});
