import { type LintFinding, type LintMode, type LintReport, MAX_EVENT_FINDINGS } from '@sluice/contracts';

import type { MigrationFile, MigrationSet } from '../migration-set.js';
import { parseStatements, type SqlParser, type SqlStatement } from '../sql-parser.js';
import { isLintRuleName, LINT_RULES, type LintRuleName } from './lint-rules.js';
import { lockTimeoutSet, takesStrongLock } from './lock-checks.js';
import { nodeOf } from './parse-tree.js';
import { checkStatement, type FileState, type Hit, type SetState } from './statement-checks.js';

export interface LintOptions {
  /**
   * The `lock_timeout` executors set on their sessions (`SLUICE_LOCK_TIMEOUT`, default 5 s): a
   * file that takes a strong lock should set a lower one.
   */
  sessionLockTimeoutMs?: number;
}

const DEFAULT_SESSION_LOCK_TIMEOUT_MS = 5_000;
const IGNORE = /^sluice:lint-ignore(-file)?(?:\s+(\S+))?(?:\s+(.*))?$/;
const PLAIN_DML = new Set([
  'InsertStmt',
  'UpdateStmt',
  'DeleteStmt',
  'SelectStmt',
  'VariableSetStmt',
  'TransactionStmt',
]);

/**
 * Rules a down file is exempt from: taking back what its up file added means dropping or renaming
 * it, so these are what a down file is for. Locks, rewrites and timeouts still count: a down file
 * runs on live tenants too.
 */
const EXPECTED_IN_DOWN_FILES: ReadonlySet<LintRuleName> = new Set([
  'drop-column',
  'drop-table',
  'rename-column',
  'rename-table',
]);

/**
 * Lints a migration set with PostgreSQL's own parse trees: files in version order, so a table
 * created or a constraint validated in an earlier file is known to later ones, then the down
 * files, newest version first (the order a rollback runs them in). Findings come in that order;
 * those silenced by a `-- sluice:lint-ignore` comment carry its reason in `ignored`.
 */
export function lintMigrationSet(set: MigrationSet, parser: SqlParser, options: LintOptions = {}): LintFinding[] {
  const state: SetState = { columnTypes: new Map(), notNullChecks: new Map() };
  const up = set.migrations.flatMap((m) => lintFile(m, parser, state, options));
  const down = [...set.migrations]
    .reverse()
    .flatMap((m) => (m.down ? lintFile(m.down, parser, state, options, true) : []));
  return [...up, ...down];
}

function lintFile(
  m: MigrationFile,
  parser: SqlParser,
  set: SetState,
  options: LintOptions,
  downFile = false,
): LintFinding[] {
  const statements = parseStatements(m.file, m.sql.replace(/^\uFEFF/, ' '), parser);
  const findings: LintFinding[] = [];
  const at = (s: { line: number; column: number }) => ({ file: m.file, line: s.line, column: s.column });
  const fileIgnores = new Map<string, string>();
  for (const { comment, line } of topComments(m.sql)) {
    const ignore = readIgnore(comment);
    if (!ignore?.file) continue;
    if ('invalid' in ignore) findings.push(invalidIgnore(ignore.invalid, { file: m.file, line, column: 1 }));
    else fileIgnores.set(ignore.rule, ignore.reason);
  }

  const file: FileState = {
    transactional: m.transactional,
    createdHere: new Set(),
    hasDdl: statements.some((s) => !PLAIN_DML.has(nodeOf(s.tree)?.[0] ?? '')),
  };
  const sessionDefault = options.sessionLockTimeoutMs ?? DEFAULT_SESSION_LOCK_TIMEOUT_MS;
  let lockTimeoutMs = m.lockTimeoutMs;
  let lockTimeoutReported = false;
  for (const statement of statements) {
    const hits: Hit[] = checkStatement(statement.tree, file, set).filter(
      (hit) => !downFile || !EXPECTED_IN_DOWN_FILES.has(hit.rule),
    );
    const timeout = lockTimeoutSet(statement.tree);
    if (timeout !== undefined) lockTimeoutMs = timeout;
    const bounded = lockTimeoutMs !== undefined && lockTimeoutMs > 0 && lockTimeoutMs < sessionDefault;
    if (!bounded && !lockTimeoutReported && takesStrongLock(statement.tree, file)) {
      lockTimeoutReported = true;
      hits.push({
        rule: 'missing-lock-timeout',
        message: `takes a strong lock and the file sets no lock_timeout below the session's ${sessionDefault} ms`,
      });
    }
    const ignores = statementIgnores(statement, findings, at(statement));
    for (const { rule, message } of hits) {
      const reason = ignores.get(rule) ?? fileIgnores.get(rule);
      findings.push({
        rule,
        severity: LINT_RULES[rule].severity,
        ...at(statement),
        message,
        ...(reason !== undefined ? { ignored: reason } : {}),
      });
    }
  }
  return findings;
}

type Ignore = { file: boolean; rule: LintRuleName; reason: string } | { file: boolean; invalid: string };

/** A `sluice:lint-ignore[-file] RULE reason` comment (without its `--`), or undefined for any other comment. */
function readIgnore(comment: string): Ignore | undefined {
  const match = IGNORE.exec(comment);
  if (!match) return undefined;
  const [, fileWide, rule, reason] = match;
  const file = fileWide !== undefined;
  const name = `sluice:lint-ignore${file ? '-file' : ''}`;
  if (!rule) return { file, invalid: `${name} names no rule` };
  if (!isLintRuleName(rule)) return { file, invalid: `${name}: unknown rule ${rule}` };
  if (!reason?.trim()) return { file, invalid: `${name} ${rule} gives no reason` };
  return { file, rule, reason: reason.trim() };
}

/** The ignores in the comments right above a statement; a malformed one becomes a finding. */
function statementIgnores(
  statement: SqlStatement,
  findings: LintFinding[],
  where: { file: string; line: number; column: number },
): Map<string, string> {
  const ignores = new Map<string, string>();
  for (const comment of statement.comments) {
    const ignore = readIgnore(comment);
    if (!ignore || ignore.file) continue;
    if ('invalid' in ignore) findings.push(invalidIgnore(ignore.invalid, where));
    else ignores.set(ignore.rule, ignore.reason);
  }
  return ignores;
}

function invalidIgnore(message: string, where: { file: string; line: number; column: number }): LintFinding {
  return { rule: 'invalid-lint-ignore', severity: LINT_RULES['invalid-lint-ignore'].severity, ...where, message };
}

/** The `--` lines at the top of a file (where directives live), without `--`, with their line numbers. */
function topComments(sql: string): { comment: string; line: number }[] {
  const out: { comment: string; line: number }[] = [];
  const lines = sql.replace(/^\uFEFF/, '').split(/\r\n?|\n/);
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '') continue;
    if (!line.startsWith('--')) break;
    out.push({ comment: line.slice(2).trim(), line: index + 1 });
  }
  return out;
}

/** Counts of a list of findings: ignored ones count only as ignored. */
export function countFindings(findings: readonly LintFinding[]): { errors: number; warnings: number; ignored: number } {
  let errors = 0;
  let warnings = 0;
  let ignored = 0;
  for (const f of findings) {
    if (f.ignored !== undefined) ignored += 1;
    else if (f.severity === 'error') errors += 1;
    else warnings += 1;
  }
  return { errors, warnings, ignored };
}

/**
 * The report that travels in `accepted`/`rejected`: counts over every finding, the findings
 * themselves capped at {@link MAX_EVENT_FINDINGS} with errors first.
 */
export function lintReportOf(findings: readonly LintFinding[], mode: LintMode): LintReport {
  const rank = (f: LintFinding): number => (f.ignored !== undefined ? 2 : f.severity === 'error' ? 0 : 1);
  const ordered = [...findings].sort((a, b) => rank(a) - rank(b));
  return {
    mode,
    ...countFindings(findings),
    findings: ordered.slice(0, MAX_EVENT_FINDINGS),
    truncated: ordered.length > MAX_EVENT_FINDINGS,
  };
}
