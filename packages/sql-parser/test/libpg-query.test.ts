import { describe, expect, it } from 'vitest';

import { loadSqlParser } from '../src/libpg-query.js';

describe('the libpg-query SqlParser adapter', () => {
  it('is loaded once per process', async () => {
    const [a, b] = await Promise.all([loadSqlParser(), loadSqlParser()]);
    expect(a).toBe(b);
    expect(await loadSqlParser()).toBe(a);
  });

  it('gives each statement its tree and its place in string offsets, first token to semicolon', async () => {
    const parser = await loadSqlParser();
    const sql = "-- naïve café 🚀\nSELECT 'é';\n  -- two\n  CREATE TABLE t (id bigint);";
    const result = parser.parse(sql);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.statements.map((s) => sql.slice(s.start, s.end))).toEqual([
      "SELECT 'é'",
      'CREATE TABLE t (id bigint)',
    ]);
    expect(Object.keys(result.statements[1]!.tree)).toEqual(['CreateStmt']);
  });

  it('returns the parser’s message and position for bad SQL, counting characters, never throwing', async () => {
    const parser = await loadSqlParser();
    const sql = "SELECT '🚀é'; SELECT FROM WHERE;";
    const result = parser.parse(sql);
    expect(result).toEqual({ ok: false, message: 'syntax error at or near "WHERE"', position: sql.indexOf('WHERE') });
  });

  it('parses an empty or comment-only script to no statements', async () => {
    const parser = await loadSqlParser();
    expect(parser.parse('')).toEqual({ ok: true, statements: [] });
    expect(parser.parse('-- nothing\n/* here */')).toEqual({ ok: true, statements: [] });
  });
});
