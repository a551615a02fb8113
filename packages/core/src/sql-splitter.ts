/**
 * Splits a SQL script into statements on top-level semicolons, honouring
 * '…' and E'…' strings, "…" identifiers, $tag$…$tag$ bodies, -- and nested block comments.
 *
 * Needed only for `no-transaction` files: PostgreSQL runs a multi-statement simple query as one
 * implicit transaction, where `CREATE INDEX CONCURRENTLY` is refused, so each statement goes alone.
 * Statements that hold nothing but comments and white space are dropped.
 */
export function splitSqlStatements(sql: string): string[] {
  const statements: string[] = [];
  let start = 0;
  let i = 0;
  let meaningful = false;
  const n = sql.length;

  const flush = (end: number): void => {
    const text = sql.slice(start, end).trim();
    if (meaningful && text.length > 0) statements.push(text);
    meaningful = false;
  };

  while (i < n) {
    const ch = sql[i]!;
    const next = sql[i + 1];
    if (ch === '-' && next === '-') {
      const eol = sql.indexOf('\n', i);
      i = eol === -1 ? n : eol + 1;
    } else if (ch === '/' && next === '*') {
      i = skipBlockComment(sql, i);
    } else if (ch === "'") {
      const escapes = i > 0 && /[eE]/.test(sql[i - 1]!) && !/[A-Za-z0-9_]/.test(sql[i - 2] ?? ' ');
      i = skipQuoted(sql, i, "'", escapes);
      meaningful = true;
    } else if (ch === '"') {
      i = skipQuoted(sql, i, '"', false);
      meaningful = true;
    } else if (ch === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (tag && !/[A-Za-z0-9_]/.test(sql[i - 1] ?? ' ')) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        i = close === -1 ? n : close + tag[0].length;
      } else {
        i += 1;
      }
      meaningful = true;
    } else if (ch === ';') {
      flush(i);
      start = i + 1;
      i += 1;
    } else {
      if (!/\s/.test(ch)) meaningful = true;
      i += 1;
    }
  }
  flush(n);
  return statements;
}

function skipBlockComment(sql: string, from: number): number {
  let depth = 0;
  let i = from;
  while (i < sql.length) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth += 1;
      i += 2;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth -= 1;
      i += 2;
      if (depth === 0) return i;
    } else {
      i += 1;
    }
  }
  return sql.length;
}

function skipQuoted(sql: string, from: number, quote: string, backslashEscapes: boolean): number {
  let i = from + 1;
  while (i < sql.length) {
    const ch = sql[i];
    if (backslashEscapes && ch === '\\') {
      i += 2;
    } else if (ch === quote) {
      if (sql[i + 1] === quote) {
        i += 2;
      } else {
        return i + 1;
      }
    } else {
      i += 1;
    }
  }
  return sql.length;
}
