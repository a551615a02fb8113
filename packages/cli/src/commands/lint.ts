import path from 'node:path';

import type { LintFinding } from '@sluice/contracts';
import {
  countFindings,
  describeWithoutDown,
  type Env,
  envReader,
  lintMigrationSet,
  MigrationSetError,
  SqlSyntaxError,
} from '@sluice/core';
import { loadMigrationDir } from '@sluice/migrator';
import { loadSqlParser } from '@sluice/sql-parser';

import { CliError, EXIT } from '../cli-error.js';
import { type CommandSpec, parseCommand } from '../command-spec.js';
import type { Output } from '../output.js';

export const LINT: CommandSpec = {
  name: 'lint',
  args: '[DIR]',
  summary: 'Checks migrations for locks, rewrites and breaking changes before a rollout (no NATS, no database).',
  description: `Reads DIR (default: SLUICE_MIGRATIONS_DIR, else ./migrations) with PostgreSQL's own parser; the
rules and their safe alternatives are in docs/lint.md. Silence a rule for one statement with
'-- sluice:lint-ignore RULE reason' right above it, or for a file with
'-- sluice:lint-ignore-file RULE reason' at its top. Exits 1 when there are errors, else 0.`,
  flags: {
    format: { type: 'string', default: 'text', value: 'text|json|github', help: 'github: GitHub Actions annotations' },
    'session-lock-timeout': {
      type: 'string',
      value: 'DURATION',
      help: "the executors' session lock_timeout (default: SLUICE_LOCK_TIMEOUT, else 5s)",
    },
  },
  positionals: { min: 0, max: 1 },
};

interface LintValues extends Record<string, string | boolean | string[] | undefined> {
  format: string;
  'session-lock-timeout'?: string;
}

const FORMATS = ['text', 'json', 'github'] as const;
type Format = (typeof FORMATS)[number];

export async function lintCommand(argv: string[], env: Env, output: Output): Promise<number> {
  const { values, positionals } = parseCommand<LintValues>(LINT, argv);
  const format = values.format as Format;
  if (!FORMATS.includes(format)) throw new CliError(`--format takes ${FORMATS.join(', ')}, got "${values.format}"`);
  const e = envReader({ ...env, ...lockTimeoutOverride(values['session-lock-timeout']) });
  const sessionLockTimeoutMs = e.duration('SLUICE_LOCK_TIMEOUT', 5_000);
  const dir = positionals[0] ?? e.string('SLUICE_MIGRATIONS_DIR', 'migrations');

  let findings: LintFinding[];
  let files: number | undefined;
  let wayBack: string | null = null;
  try {
    const set = await loadMigrationDir(dir);
    files = set.migrations.length;
    wayBack = describeWithoutDown(set);
    findings = lintMigrationSet(set, await loadSqlParser(), { sessionLockTimeoutMs });
  } catch (error) {
    if (!(error instanceof MigrationSetError)) throw error;
    // The set itself is refused (a file that does not parse, a bad name, COMMIT in a transactional file).
    findings = [setFinding(error)];
  }
  const counts = countFindings(findings);
  if (format === 'json') {
    output.out(JSON.stringify({ dir, files: files ?? null, ...counts, findings }));
  } else {
    const at = (f: LintFinding): string => path.join(dir, f.file);
    for (const f of findings) output.out(format === 'github' ? githubAnnotation(f, at(f)) : textLine(f, at(f)));
    if (format === 'text') {
      const summary = `${counts.errors} errors, ${counts.warnings} warnings, ${counts.ignored} ignored with a reason`;
      output.out(files === undefined ? `the migration set is refused: ${summary}` : `${files} files: ${summary}`);
      if (wayBack) output.out(`way back: ${wayBack}`);
    }
  }
  return counts.errors > 0 ? EXIT.runNotSucceeded : EXIT.ok;
}

/** `--session-lock-timeout` wins over the environment and is checked by the same reader. */
function lockTimeoutOverride(value: string | undefined): Env {
  return value === undefined ? {} : { SLUICE_LOCK_TIMEOUT: value };
}

function setFinding(error: MigrationSetError): LintFinding {
  const where =
    error instanceof SqlSyntaxError ? { file: error.file, line: error.line, column: error.column } : undefined;
  const file = where?.file ?? /^(\S+?\.sql)\b/.exec(error.message)?.[1] ?? '.';
  return {
    rule: error instanceof SqlSyntaxError ? 'syntax-error' : 'invalid-migration-set',
    severity: 'error',
    file,
    line: where?.line ?? 1,
    column: where?.column ?? 1,
    message: error instanceof SqlSyntaxError ? error.parserMessage : error.message,
  };
}

function textLine(f: LintFinding, file: string): string {
  const head = `${file}:${f.line}:${f.column}  ${f.ignored !== undefined ? 'ignored' : f.severity}  ${f.rule}  ${f.message}`;
  return f.ignored !== undefined ? `${head}\n    reason: ${f.ignored}` : head;
}

/** A GitHub Actions workflow command: `::error file=…,line=…,col=…,title=…::message`. */
function githubAnnotation(f: LintFinding, file: string): string {
  const level = f.ignored !== undefined ? 'notice' : f.severity;
  const message = f.ignored !== undefined ? `${f.message} (ignored: ${f.ignored})` : f.message;
  const props = `file=${escapeProperty(file)},line=${f.line},col=${f.column},title=${escapeProperty(`sluice lint ${f.rule}`)}`;
  return `::${level} ${props}::${escapeData(message)}`;
}

function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}
