import type { LintFinding, LintReport, MigrateRequest } from '@sluice/contracts';
import { countFindings, lintMigrationSet, lintReportOf, type MigrationSet, type SqlParser } from '@sluice/core';

/** What the lint gate says about one request. */
export type LintVerdict = { ok: true; report?: LintReport } | { ok: false; report: LintReport; reasons: string[] };

export interface LintGate {
  /** The findings of `set`, linted on the first call for its digest. */
  findings(set: MigrationSet): readonly LintFinding[];
  /**
   * Lints `set` (once per digest) and judges `request`: errors reject it unless it says
   * `lint: "warn"` or is a dry run; any finding travels as `report`.
   */
  judge(request: MigrateRequest, set: MigrationSet): LintVerdict;
}

const MAX_REASONS = 20;

/** The planner's lint gate; `sessionLockTimeoutMs` is the executors' `SLUICE_LOCK_TIMEOUT`. */
export function createLintGate(parser: SqlParser, options: { sessionLockTimeoutMs: number }): LintGate {
  // A planner serves one set; the map keeps the rule "once per digest" true if that changes.
  const cache = new Map<string, LintFinding[]>();
  const findingsOf = (set: MigrationSet): LintFinding[] => {
    let findings = cache.get(set.digest);
    if (!findings) {
      findings = lintMigrationSet(set, parser, options);
      cache.set(set.digest, findings);
    }
    return findings;
  };
  return {
    findings: findingsOf,
    judge(request, set) {
      const findings = findingsOf(set);
      if (findings.length === 0) return { ok: true };
      const mode = request.lint ?? 'error';
      const report = lintReportOf(findings, mode);
      if (countFindings(findings).errors === 0 || mode === 'warn' || request.dryRun === true)
        return { ok: true, report };
      const reasons = findings
        .filter((f) => f.severity === 'error' && f.ignored === undefined)
        .slice(0, MAX_REASONS)
        .map((f) => `lint: ${f.file}:${f.line}:${f.column} ${f.rule}: ${f.message}`);
      return { ok: false, report, reasons };
    },
  };
}
