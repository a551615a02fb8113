import { describe, expect, it } from 'vitest';

import { splitSqlStatements } from '../src/sql-splitter.js';

describe('splitSqlStatements', () => {
  it('splits on top-level semicolons and trims each statement', () => {
    expect(splitSqlStatements('  SELECT 1;\n\tSELECT 2 ;\nSELECT 3;  ')).toEqual(['SELECT 1', 'SELECT 2', 'SELECT 3']);
  });

  it('keeps a trailing statement that has no semicolon', () => {
    expect(splitSqlStatements('SELECT 1;\nSELECT 2')).toEqual(['SELECT 1', 'SELECT 2']);
    expect(splitSqlStatements('SELECT 1')).toEqual(['SELECT 1']);
  });

  it('returns nothing for empty, blank or semicolon-only input', () => {
    expect(splitSqlStatements('')).toEqual([]);
    expect(splitSqlStatements('  \n\t ')).toEqual([]);
    expect(splitSqlStatements(';;; ;\n;')).toEqual([]);
  });

  it('drops empty statements between consecutive semicolons', () => {
    expect(splitSqlStatements('SELECT 1;;; ;SELECT 2;')).toEqual(['SELECT 1', 'SELECT 2']);
  });

  describe('string literals', () => {
    it('does not split on a semicolon inside a single-quoted string', () => {
      expect(splitSqlStatements("INSERT INTO t VALUES ('a;b'); SELECT 2;")).toEqual([
        "INSERT INTO t VALUES ('a;b')",
        'SELECT 2',
      ]);
    });

    it("treats '' as an escaped quote, not the end of the string", () => {
      expect(splitSqlStatements("SELECT 'it''s; fine'; SELECT 2")).toEqual(["SELECT 'it''s; fine'", 'SELECT 2']);
      expect(splitSqlStatements("UPDATE t SET n = 'O''Brien;';\nSELECT ''';'''")).toEqual([
        "UPDATE t SET n = 'O''Brien;'",
        "SELECT ''';'''",
      ]);
    });

    it("honours backslash escapes in E'…' strings", () => {
      expect(splitSqlStatements("SELECT E'\\'; still inside'; SELECT 2")).toEqual([
        "SELECT E'\\'; still inside'",
        'SELECT 2',
      ]);
      expect(splitSqlStatements("SELECT e'x\\'y;z'; SELECT 2")).toEqual(["SELECT e'x\\'y;z'", 'SELECT 2']);
    });

    it("honours '' inside an E'…' string, before a backslash escape", () => {
      expect(splitSqlStatements("SELECT E'it''s \\'; x'; SELECT 2")).toEqual(["SELECT E'it''s \\'; x'", 'SELECT 2']);
    });

    it("ends an E'…' string after an escaped backslash", () => {
      expect(splitSqlStatements("SELECT E'a\\\\'; SELECT 2")).toEqual(["SELECT E'a\\\\'", 'SELECT 2']);
    });

    it('treats a backslash in a standard string as an ordinary character', () => {
      // standard_conforming_strings: 'a\' is a complete string holding a backslash.
      expect(splitSqlStatements("SELECT 'a\\'; SELECT 2")).toEqual(["SELECT 'a\\'", 'SELECT 2']);
    });

    it('does not take an identifier ending in e before a quote for an E string', () => {
      expect(splitSqlStatements("SELECT type'\\'; SELECT 2")).toEqual(["SELECT type'\\'", 'SELECT 2']);
    });

    it('swallows the rest of the script into an unterminated string', () => {
      expect(splitSqlStatements("SELECT 'open; SELECT 2;")).toEqual(["SELECT 'open; SELECT 2;"]);
    });
  });

  describe('quoted identifiers', () => {
    it('does not split inside "…" identifiers, including "" escapes', () => {
      expect(splitSqlStatements('SELECT "a;b" FROM "x""y;z"; SELECT 2')).toEqual([
        'SELECT "a;b" FROM "x""y;z"',
        'SELECT 2',
      ]);
    });

    it('does not treat -- or a single quote inside an identifier as syntax', () => {
      expect(splitSqlStatements('CREATE TABLE "we--ird\'" (id int); SELECT 2')).toEqual([
        'CREATE TABLE "we--ird\'" (id int)',
        'SELECT 2',
      ]);
    });
  });

  describe('dollar-quoted bodies', () => {
    it('keeps a $$ function body with semicolons in one statement', () => {
      const fn = `CREATE FUNCTION f() RETURNS int AS $$
BEGIN
  PERFORM 1;
  RETURN 2;
END
$$ LANGUAGE plpgsql`;
      expect(splitSqlStatements(`${fn};\nSELECT f();`)).toEqual([fn, 'SELECT f()']);
    });

    it('keeps a $tag$ body that contains $$ and quotes', () => {
      const block = "DO $body$ BEGIN RAISE NOTICE '$$;'; PERFORM 1; END $body$";
      expect(splitSqlStatements(`${block}; SELECT 3`)).toEqual([block, 'SELECT 3']);
    });

    it('closes only on the same tag when tags are nested', () => {
      const block = 'CREATE FUNCTION g() RETURNS text AS $outer$ SELECT $inner$;x;$inner$; $outer$ LANGUAGE sql';
      expect(splitSqlStatements(`${block};SELECT 4`)).toEqual([block, 'SELECT 4']);
    });

    it('does not read positional parameters or identifiers with $ as dollar quotes', () => {
      expect(splitSqlStatements('PREPARE p AS SELECT $1, a$b; SELECT 2')).toEqual([
        'PREPARE p AS SELECT $1, a$b',
        'SELECT 2',
      ]);
    });

    it('does not start a dollar quote right after an identifier character', () => {
      expect(splitSqlStatements('SELECT x$$; SELECT 2')).toEqual(['SELECT x$$', 'SELECT 2']);
    });
  });

  describe('comments', () => {
    it('ignores semicolons in -- line comments', () => {
      expect(splitSqlStatements('SELECT 1 -- not; a; split\n, 2; SELECT 3')).toEqual([
        'SELECT 1 -- not; a; split\n, 2',
        'SELECT 3',
      ]);
    });

    it('ignores semicolons in nested block comments', () => {
      expect(splitSqlStatements('SELECT 1; /* a; /* nested; */ still; comment; */ SELECT 2;')).toEqual([
        'SELECT 1',
        '/* a; /* nested; */ still; comment; */ SELECT 2',
      ]);
    });

    it('drops statements that hold only comments and white space', () => {
      const sql = '-- header; with a semicolon\n/* block; */;\n  -- another\n;\nSELECT 1;\n-- trailing;\n/* end */';
      expect(splitSqlStatements(sql)).toEqual(['SELECT 1']);
    });

    it('drops a script made only of comments', () => {
      expect(splitSqlStatements('-- a;\n/* b; /* c; */ */\n-- d')).toEqual([]);
    });

    it('handles a line comment at the very end without a newline', () => {
      expect(splitSqlStatements('SELECT 1; -- done')).toEqual(['SELECT 1']);
    });

    it('handles CRLF line endings in line comments', () => {
      expect(splitSqlStatements('-- a;b\r\nSELECT 1;\r\nSELECT 2;\r\n')).toEqual(['-- a;b\r\nSELECT 1', 'SELECT 2']);
    });

    it('does not start a comment inside a string', () => {
      expect(splitSqlStatements("SELECT '-- x'; SELECT '/* y'; SELECT 3")).toEqual([
        "SELECT '-- x'",
        "SELECT '/* y'",
        'SELECT 3',
      ]);
    });
  });

  it('splits a CREATE INDEX CONCURRENTLY script into one statement per index', () => {
    const script = `-- sluice:no-transaction
-- Build indexes without blocking writes; one statement each.
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);
CREATE UNIQUE INDEX CONCURRENTLY orders_ref_idx ON orders (ref) WHERE ref <> ';';

/* swap the old index out */
DROP INDEX CONCURRENTLY IF EXISTS orders_old_idx;
`;
    const statements = splitSqlStatements(script);
    expect(statements).toHaveLength(3);
    expect(statements[0]).toMatch(
      /CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders \(customer_id\)$/,
    );
    expect(statements[1]).toBe("CREATE UNIQUE INDEX CONCURRENTLY orders_ref_idx ON orders (ref) WHERE ref <> ';'");
    expect(statements[2]).toBe('/* swap the old index out */\nDROP INDEX CONCURRENTLY IF EXISTS orders_old_idx');
    for (const s of statements) expect(s.endsWith(';')).toBe(false);
  });
});
