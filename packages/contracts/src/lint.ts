import { z } from 'zod';

/** `error` blocks a run (unless the request says `lint: "warn"`); `warning` is reported only. */
export const LINT_SEVERITIES = ['error', 'warning'] as const;
export type LintSeverity = (typeof LINT_SEVERITIES)[number];

/** What a request does with lint errors: `error` (default) rejects the run, `warn` only reports them. */
export const LintModeSchema = z.enum(['error', 'warn']);
export type LintMode = z.infer<typeof LintModeSchema>;

/** One thing the linter found in one statement of a migration file. */
export const LintFindingSchema = z.object({
  /** The rule's stable name (`docs/lint.md`). */
  rule: z.string(),
  severity: z.enum(LINT_SEVERITIES),
  file: z.string(),
  /** 1-based line and column of the statement's first token. */
  line: z.number().int().positive(),
  column: z.number().int().positive(),
  message: z.string(),
  /** Set when a `-- sluice:lint-ignore` comment silenced the finding: its reason. Never counts. */
  ignored: z.string().optional(),
});
export type LintFinding = z.infer<typeof LintFindingSchema>;

/** At most this many findings travel in one event; `truncated` says there were more. */
export const MAX_EVENT_FINDINGS = 50;

/** The lint report of a run's migration set, in `accepted` (and `rejected` when it blocked the run). */
export const LintReportSchema = z.object({
  /** What the request asked for (`error` when it said nothing). */
  mode: LintModeSchema,
  errors: z.number().int().nonnegative(),
  warnings: z.number().int().nonnegative(),
  /** Silenced with a reason. */
  ignored: z.number().int().nonnegative(),
  findings: z.array(LintFindingSchema),
  truncated: z.boolean(),
});
export type LintReport = z.infer<typeof LintReportSchema>;
