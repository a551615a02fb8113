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

/** One file's text, checksum and directives: what an up file and its down file have alike. */
export interface MigrationFile {
  /** Base name: `NNNN_name.sql`, or `NNNN_name.down.sql` for a down file. */
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

export interface Migration extends MigrationFile {
  /** The numeric prefix of the file name. */
  version: number;
  /** The descriptive part of the file name. */
  name: string;
  /**
   * The way back: `NNNN_name.down.sql` beside the file, run (in reverse version order) when a
   * tenant is taken below this version. Absent: the version cannot be undone.
   */
  down?: MigrationFile;
}

export interface MigrationSet {
  /** Ordered by version, ascending. */
  readonly migrations: readonly Migration[];
  /**
   * sha256 over every version and checksum (and a down file's checksum when there is one): two
   * sets with the same digest are the same set. A set without down files keeps the digest it had
   * before down files existed.
   */
  readonly digest: string;
  /** Highest version, or 0 for an empty set. */
  readonly latest: number;
  /** Versions with no down file, ascending: a tenant cannot be taken back below any of them. */
  readonly withoutDown: readonly number[];
}

const FILE_NAME = /^(\d+)_([A-Za-z0-9][A-Za-z0-9_-]*)\.sql$/;
const DOWN_FILE_NAME = /^(\d+)_([A-Za-z0-9][A-Za-z0-9_-]*)\.down\.sql$/;
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
): Pick<MigrationFile, 'transactional' | 'lockTimeoutMs' | 'statementTimeoutMs'> {
  const result: Pick<MigrationFile, 'transactional' | 'lockTimeoutMs' | 'statementTimeoutMs'> = {
    transactional: true,
  };
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

/** Reads, parses and checksums one file (an up file or a down file alike). */
function migrationFile(source: MigrationSource, parser: SqlParser): MigrationFile {
  const directives = parseDirectives(source);
  // A byte-order mark is no SQL; a space keeps every offset (and so every line and column) in place.
  const statements = parseStatements(source.file, source.sql.replace(/^\uFEFF/, ' '), parser);
  if (directives.transactional) assertNoTransactionControl(source.file, statements);
  return {
    file: source.file,
    sql: source.sql,
    checksum: checksumOf(source.sql),
    ...directives,
    statements: Object.freeze(statements.map((st) => st.text)),
  };
}

/** The version of a file name, refusing what cannot be one. */
function versionOf(file: string, digits: string): number {
  const version = Number(digits);
  if (!Number.isSafeInteger(version)) throw new MigrationSetError(`${file}: version is too large`);
  // 0 means "nothing applied" (a target of 0, the latest of an empty set); versions start at 1.
  if (version === 0) throw new MigrationSetError(`${file}: versions start at 1`);
  return version;
}

/**
 * Builds an ordered, checksummed migration set. Files that do not end in `.sql` are ignored;
 * `NNNN_name.down.sql` is the down file of `NNNN_name.sql`. A `.sql` file with a malformed name,
 * two files with one version, a down file without its up file, a file PostgreSQL's parser
 * refuses ({@link SqlSyntaxError}: message, file, line, column) or transaction control in a
 * transactional file is an error.
 */
export function createMigrationSet(sources: readonly MigrationSource[], parser: SqlParser): MigrationSet {
  const byVersion = new Map<number, Migration>();
  const downs: Array<{ version: number; name: string; source: MigrationSource }> = [];
  for (const source of sources) {
    if (!source.file.endsWith('.sql')) continue;
    const down = DOWN_FILE_NAME.exec(source.file);
    if (down) {
      downs.push({ version: versionOf(source.file, down[1]!), name: down[2]!, source });
      continue;
    }
    const match = FILE_NAME.exec(source.file);
    if (!match) {
      throw new MigrationSetError(
        `${source.file}: migration files are named NNNN_name.sql (and their down files NNNN_name.down.sql)`,
      );
    }
    const version = versionOf(source.file, match[1]!);
    const existing = byVersion.get(version);
    if (existing) {
      throw new MigrationSetError(`${source.file} and ${existing.file} have the same version ${version}`);
    }
    byVersion.set(version, { version, name: match[2]!, ...migrationFile(source, parser) });
  }
  for (const { version, name, source } of downs) {
    const up = byVersion.get(version);
    if (!up || up.name !== name) {
      throw new MigrationSetError(
        `${source.file}: a down file needs its up file ${source.file.replace(/\.down\.sql$/, '.sql')}${up ? ` (version ${version} is ${up.file})` : ''}`,
      );
    }
    if (up.down) throw new MigrationSetError(`${source.file} and ${up.down.file} are both the down file of ${up.file}`);
    up.down = migrationFile(source, parser);
  }
  const migrations = [...byVersion.values()].sort((a, b) => a.version - b.version);
  const digest = createHash('sha256')
    .update(
      migrations.map((m) => `${m.version}:${m.checksum}${m.down ? `:down:${m.down.checksum}` : ''}`).join('\n'),
      'utf8',
    )
    .digest('hex');
  return Object.freeze({
    migrations: Object.freeze(migrations.map((m) => Object.freeze(m))),
    digest,
    latest: migrations.at(-1)?.version ?? 0,
    withoutDown: Object.freeze(migrations.filter((m) => !m.down).map((m) => m.version)),
  });
}

/**
 * What a loaded set says about its way back, for a person: which versions have no down file
 * (a tenant cannot be taken below them), or null when every version has one. Ranges keep it short.
 */
export function describeWithoutDown(set: MigrationSet): string | null {
  if (set.withoutDown.length === 0) return null;
  const ranges: string[] = [];
  const versions = set.migrations.map((m) => m.version);
  let start: number | undefined;
  let previous: number | undefined;
  for (const v of versions) {
    const without = set.withoutDown.includes(v);
    if (without && start === undefined) start = v;
    if (!without && start !== undefined) {
      ranges.push(start === previous ? `${start}` : `${start}-${previous}`);
      start = undefined;
    }
    previous = v;
  }
  if (start !== undefined) ranges.push(start === previous ? `${start}` : `${start}-${previous}`);
  const all = set.withoutDown.length === set.migrations.length;
  return `${all ? 'no version has a' : `${set.withoutDown.length} of ${set.migrations.length} versions have no`} down file (no way back below: ${ranges.join(', ')})`;
}

/** Resolves `latest` or a version against a set; throws for a version the set does not have. */
export function resolveTarget(set: MigrationSet, target: 'latest' | number): number {
  if (target === 'latest') return set.latest;
  if (target === 0 || set.migrations.some((m) => m.version === target)) return target;
  throw new MigrationSetError(`target ${target} is not a version in the migration set (latest is ${set.latest})`);
}
