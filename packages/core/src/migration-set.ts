import { createHash } from 'node:crypto';

import { durationProblem, parseDuration } from './duration.js';
import { MigrationSetError } from './errors.js';
import { parseStatements, type PgNode, type SqlParser, type SqlStatement } from './sql-parser.js';

/** A migration file as read from disk (or from a bundle): its base name and its text. */
export interface MigrationSource {
  /** Base name, `NNNN_name.sql`. */
  file: string;
  sql: string;
}

export interface Migration {
  /** The numeric prefix of the file name. */
  version: number;
  /** The descriptive part of the file name. */
  name: string;
  file: string;
  sql: string;
  /** sha256 (hex) of the file with line endings normalised. */
  checksum: string;
  /** False for files starting with `-- sluice:no-transaction`. */
  transactional: boolean;
  /**
   * The file's statements as PostgreSQL's parser splits them (comments before each and the
   * semicolon left out): a `no-transaction` file runs them one by one.
   */
  statements: readonly string[];
  /** Per-file `-- sluice:lock-timeout` override, in ms. */
  lockTimeoutMs?: number;
  /** Per-file `-- sluice:statement-timeout` override, in ms. */
  statementTimeoutMs?: number;
}

export interface MigrationSet {
  /** Ordered by version, ascending. */
  readonly migrations: readonly Migration[];
  /** sha256 over every version and checksum: two sets with the same digest are the same set. */
  readonly digest: string;
  /** Highest version, or 0 for an empty set. */
  readonly latest: number;
}

const FILE_NAME = /^(\d+)_([A-Za-z0-9][A-Za-z0-9_-]*)\.sql$/;
const DIRECTIVE = /^--\s*sluice:([a-z-]+)(?:\s+(.*?))?\s*$/;
/** Anything that looks like a directive; a near miss (`sluice:lock_timeout`) is an error, not a comment. */
const DIRECTIVE_LIKE = /^--\s*sluice\s*:/i;

/**
 * The checksum ignores CRLF vs LF and a byte-order mark, so that a checkout on another
 * platform is not reported as drift; any other change to the file is.
 */
export function checksumOf(sql: string): string {
  const normalised = sql.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  return createHash('sha256').update(normalised, 'utf8').digest('hex');
}

/** Reads the `-- sluice:…` directives from the comment lines at the top of a file. */
function parseDirectives(
  source: MigrationSource,
): Pick<Migration, 'transactional' | 'lockTimeoutMs' | 'statementTimeoutMs'> {
  const result: Pick<Migration, 'transactional' | 'lockTimeoutMs' | 'statementTimeoutMs'> = { transactional: true };
  for (const raw of source.sql.replace(/^\uFEFF/, '').split(/\r\n?|\n/)) {
    const line = raw.trim();
    if (line === '') continue;
    if (!line.startsWith('--')) break;
    const match = DIRECTIVE.exec(line);
    if (!match) {
      if (DIRECTIVE_LIKE.test(line))
        throw new MigrationSetError(`${source.file}: malformed directive "${line.slice(0, 80)}"`);
      continue;
    }
    const [, name, arg] = match;
    switch (name) {
      // Read by the linter (`lintMigrationSet`), which checks the rule and the reason.
      case 'lint-ignore':
      case 'lint-ignore-file':
        break;
      case 'no-transaction':
        result.transactional = false;
        break;
      case 'lock-timeout':
      case 'statement-timeout': {
        const ms = arg === undefined ? undefined : parseDuration(arg);
        if (ms === undefined) {
          throw new MigrationSetError(
            `${source.file}: -- sluice:${name} needs a duration with a unit: ${durationProblem(arg ?? '')}`,
          );
        }
        if (name === 'lock-timeout') result.lockTimeoutMs = ms;
        else result.statementTimeoutMs = ms;
        break;
      }
      default:
        throw new MigrationSetError(`${source.file}: unknown directive -- sluice:${name}`);
    }
  }
  return result;
}

/**
 * Transaction control that ends or replaces the file's transaction. SAVEPOINT, RELEASE and
 * ROLLBACK TO stay inside it and are allowed.
 */
const ENDS_TRANSACTION = new Set([
  'TRANS_STMT_BEGIN',
  'TRANS_STMT_START',
  'TRANS_STMT_COMMIT',
  'TRANS_STMT_ROLLBACK',
  'TRANS_STMT_PREPARE',
  'TRANS_STMT_COMMIT_PREPARED',
  'TRANS_STMT_ROLLBACK_PREPARED',
]);

/**
 * Sluice wraps each transactional file in its own transaction together with its journal row;
 * a COMMIT inside the file would end that transaction early and break the guarantee.
 */
function assertNoTransactionControl(file: string, statements: readonly SqlStatement[]): void {
  for (const statement of statements) {
    const kind = (statement.tree.TransactionStmt as PgNode | undefined)?.kind;
    if (typeof kind === 'string' && ENDS_TRANSACTION.has(kind)) {
      const keyword = statement.text.split(/\s/)[0]!.toUpperCase();
      throw new MigrationSetError(
        `${file}:${statement.line}:${statement.column}: transaction control (${keyword}) is not allowed; each file runs in its own transaction (use -- sluice:no-transaction for statements that cannot)`,
      );
    }
  }
}

/**
 * Builds an ordered, checksummed migration set. Files that do not end in `.sql` are ignored;
 * a `.sql` file with a malformed name, two files with one version, a file PostgreSQL's parser
 * refuses ({@link SqlSyntaxError}: message, file, line, column) or transaction control in a
 * transactional file is an error.
 */
export function createMigrationSet(sources: readonly MigrationSource[], parser: SqlParser): MigrationSet {
  const byVersion = new Map<number, Migration>();
  for (const source of sources) {
    if (!source.file.endsWith('.sql')) continue;
    const match = FILE_NAME.exec(source.file);
    if (!match) {
      throw new MigrationSetError(`${source.file}: migration files are named NNNN_name.sql`);
    }
    const version = Number(match[1]);
    if (!Number.isSafeInteger(version)) throw new MigrationSetError(`${source.file}: version is too large`);
    // 0 means "nothing applied" (a target of 0, the latest of an empty set); versions start at 1.
    if (version === 0) throw new MigrationSetError(`${source.file}: versions start at 1`);
    const existing = byVersion.get(version);
    if (existing) {
      throw new MigrationSetError(`${source.file} and ${existing.file} have the same version ${version}`);
    }
    const directives = parseDirectives(source);
    // A byte-order mark is no SQL; a space keeps every offset (and so every line and column) in place.
    const statements = parseStatements(source.file, source.sql.replace(/^\uFEFF/, ' '), parser);
    if (directives.transactional) assertNoTransactionControl(source.file, statements);
    byVersion.set(version, {
      version,
      name: match[2]!,
      file: source.file,
      sql: source.sql,
      checksum: checksumOf(source.sql),
      ...directives,
      statements: Object.freeze(statements.map((st) => st.text)),
    });
  }
  const migrations = [...byVersion.values()].sort((a, b) => a.version - b.version);
  const digest = createHash('sha256')
    .update(migrations.map((m) => `${m.version}:${m.checksum}`).join('\n'), 'utf8')
    .digest('hex');
  return Object.freeze({ migrations: Object.freeze(migrations), digest, latest: migrations.at(-1)?.version ?? 0 });
}

/** Resolves `latest` or a version against a set; throws for a version the set does not have. */
export function resolveTarget(set: MigrationSet, target: 'latest' | number): number {
  if (target === 'latest') return set.latest;
  if (target === 0 || set.migrations.some((m) => m.version === target)) return target;
  throw new MigrationSetError(`target ${target} is not a version in the migration set (latest is ${set.latest})`);
}
