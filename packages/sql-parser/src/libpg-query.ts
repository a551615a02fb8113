import { hasSqlDetails, loadModule, parseSync } from 'libpg-query';

/*
 * The shapes below are core's `SqlParser` port, repeated structurally (as kysely's drivers meet
 * its `PostgresPool`) so that this adapter needs nothing from core and core's tests can use it.
 */

/** A node of PostgreSQL's parse tree, as libpg_query renders it in JSON (`{ CreateStmt: {...} }`). */
export type PgNode = Record<string, unknown>;

/** One statement: its tree and where it sits in the script, in string (UTF-16) offsets. */
export interface PgStatement {
  tree: PgNode;
  /** The statement's first token. */
  start: number;
  /** Before the statement's own semicolon, if it has one. */
  end: number;
}

export type PgParseResult = { ok: true; statements: PgStatement[] } | { ok: false; message: string; position: number };

export interface PgSqlParser {
  /** Parses a whole script; never throws for bad SQL (`ok: false` with the parser's message). */
  parse(sql: string): PgParseResult;
}

let loading: Promise<PgSqlParser> | undefined;

/**
 * PostgreSQL's own parser (libpg_query compiled to WebAssembly, inside the npm package). The
 * module is compiled once per process, on the first call; every later call gets the same parser.
 */
export function loadSqlParser(): Promise<PgSqlParser> {
  loading ??= loadModule().then(
    () => ({ parse }),
    (error: unknown) => {
      loading = undefined;
      throw error;
    },
  );
  return loading;
}

function parse(sql: string): PgParseResult {
  // libpg-query refuses an empty string ("Query cannot be empty"); PostgreSQL runs it as nothing.
  if (sql === '') return { ok: true, statements: [] };
  let result;
  try {
    result = parseSync(sql);
  } catch (error) {
    if (!hasSqlDetails(error)) throw error;
    // PostgreSQL counts the error position in characters (code points), not bytes.
    const position = [...sql].slice(0, error.sqlDetails!.cursorPosition).join('').length;
    return { ok: false, message: error.sqlDetails!.message, position };
  }
  const toChar = charOffsets(sql);
  return {
    ok: true,
    // Statement locations are UTF-8 byte offsets.
    statements: (result.stmts ?? []).map((raw) => {
      const from = raw.stmt_location ?? 0;
      // A length of 0 (or none) means "to the end of the script".
      const to = raw.stmt_len ? from + raw.stmt_len : undefined;
      return { tree: raw.stmt as PgNode, start: toChar(from), end: to === undefined ? sql.length : toChar(to) };
    }),
  };
}

/** libpg_query counts UTF-8 bytes; a script with only ASCII needs no table. */
function charOffsets(sql: string): (byte: number) => number {
  // eslint-disable-next-line no-control-regex
  if (!/[^\x00-\x7f]/.test(sql)) return (byte) => byte;
  const bytesBefore: number[] = [];
  let bytes = 0;
  for (let i = 0; i < sql.length; i += 1) {
    bytesBefore.push(bytes);
    const code = sql.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff) {
      // A surrogate pair is one 4-byte character; its second half starts at no byte boundary.
      bytesBefore.push(bytes + 1);
      bytes += 4;
      i += 1;
    } else bytes += 3;
  }
  bytesBefore.push(bytes);
  return (byte) => {
    // The first character that starts at or after `byte`.
    let lo = 0;
    let hi = bytesBefore.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (bytesBefore[mid]! < byte) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}
