import { MigrationSetError } from './errors.js';

/**
 * A node of PostgreSQL's parse tree as libpg_query renders it in JSON: one key naming the node
 * type (`{ CreateStmt: {...} }`), or a node's own fields.
 */
export type PgNode = Record<string, unknown>;

/** One statement the parser found, in string (UTF-16) offsets into the script. */
export interface ParsedStatement {
  tree: PgNode;
  /** The statement's first token. */
  start: number;
  /** Before the statement's own semicolon, if it has one. */
  end: number;
}

export type SqlParseResult =
  { ok: true; statements: ParsedStatement[] } | { ok: false; message: string; position: number };

/**
 * PostgreSQL's grammar as a pure function. The adapter (`@sluice/sql-parser`, libpg-query's
 * WebAssembly) is loaded asynchronously once per process and then parses synchronously.
 */
export interface SqlParser {
  /** Parses a whole script; bad SQL is `ok: false` with the parser's message, never a throw. */
  parse(sql: string): SqlParseResult;
}

/** A statement of a migration file, ready to run and to lint. */
export interface SqlStatement {
  /** The statement without the comments before it and without its semicolon. */
  text: string;
  tree: PgNode;
  /** 1-based line and column of the statement's first token. */
  line: number;
  column: number;
  /** The `--` comment lines directly before the statement (no blank line between), without `--`. */
  comments: string[];
}

/** The script does not parse: the parser's message, and where. */
export class SqlSyntaxError extends MigrationSetError {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** The parser's own message, without the place. */
  readonly parserMessage: string;
  constructor(file: string, message: string, line: number, column: number) {
    super(`${file}:${line}:${column}: ${message}`);
    this.parserMessage = message;
    this.file = file;
    this.line = line;
    this.column = column;
  }
}

/** 1-based line and column of a string offset. */
export function lineColumnAt(sql: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < sql.length; i += 1) {
    if (sql[i] === '\n') {
      line += 1;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

const LEADING = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*/;

/**
 * Splits a script into statements with PostgreSQL's own parser, so that semicolons inside
 * strings, dollar quotes, `BEGIN ATOMIC` bodies and rule actions never split a statement.
 * Throws {@link SqlSyntaxError} (file, line, column) for a script that does not parse.
 */
export function parseStatements(file: string, sql: string, parser: SqlParser): SqlStatement[] {
  const result = parser.parse(sql);
  if (!result.ok) {
    const at = lineColumnAt(sql, result.position);
    throw new SqlSyntaxError(file, result.message, at.line, at.column);
  }
  return result.statements.map(({ tree, start, end }, index) => {
    // What lies between the previous statement and this one: semicolons, white space, comments.
    const gap = sql.slice(index === 0 ? 0 : result.statements[index - 1]!.end, start);
    const chunk = sql.slice(start, end);
    const lead = LEADING.exec(chunk)![0];
    const at = lineColumnAt(sql, start + lead.length);
    return { text: chunk.slice(lead.length).trimEnd(), tree, ...at, comments: commentsBefore(gap + lead) };
  });
}

/** The run of `--` lines that ends right before the statement (a blank line ends the run). */
function commentsBefore(lead: string): string[] {
  const lines = lead.replace(/\r\n?/g, '\n').split('\n');
  // The last element is the indentation before the statement's first token.
  const out: string[] = [];
  for (let i = lines.length - 2; i >= 0; i -= 1) {
    const line = lines[i]!.trim();
    if (!line.startsWith('--')) break;
    out.unshift(line.slice(2).trim());
  }
  return out;
}
