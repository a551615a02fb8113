export { AimdLimiter } from './aimd-limiter.js';
export { classifyBottleneck } from './bottleneck.js';
export { type WorkSignals, workSignals } from './bottleneck-signals.js';
export { formatByteSize, parseByteSize } from './byte-size.js';
export { durationProblem, parseDuration } from './duration.js';
export { ConfigError, type Env, envReader } from './env.js';
export {
  BundleDigestMismatchError,
  BundleUnavailableError,
  ChangedByLaterRunError,
  DatabaseError,
  DigestMismatchError,
  DirtyError,
  DriftError,
  HostUnavailableError,
  InvalidTenantError,
  IrreversibleError,
  JournalMovedError,
  LockedError,
  LockTimeoutError,
  MigrationSetError,
  MigrationSqlError,
  SluiceError,
  TargetError,
  TenantNotFoundError,
  toOutcomeError,
  TransientError,
} from './errors.js';
export {
  type FleetIndexCursor,
  type FleetIndexPass,
  type FleetListingPlan,
  formatFleetIndexCursor,
  isFleetCursor,
  parseFleetIndexCursor,
  passesFrom,
  planFleetListing,
  pointedRecordMatches,
  pointerMayMatch,
} from './fleet-listing.js';
export {
  countBelow,
  emptyFleetSummary,
  type FleetQuery,
  type FleetRunContext,
  FleetSummaryBuilder,
  FleetSummaryDelta,
  isBelow,
  isVerifyDifference,
  matchesFleetQuery,
  nextFleetRecord,
  trustsFleetRecord,
  versionKey,
} from './fleet-state.js';
export {
  type ConcurrencyPoint,
  fitUsl,
  hostWhatIf,
  throughputByConcurrency,
  throughputByWindow,
  uslThroughput,
  type WorkInterval,
} from './limit-what-if.js';
export { countFindings, lintMigrationSet, type LintOptions, lintReportOf } from './lint/lint-migration-set.js';
export { LINT_RULES, type LintRule, type LintRuleName } from './lint/lint-rules.js';
export {
  type JournalEntry,
  type PlanOptions,
  planTenant,
  rollbackTargetOf,
  type TenantPlan,
} from './migration-plan.js';
export {
  createMigrationSet,
  describeWithoutDown,
  type Migration,
  type MigrationFile,
  type MigrationSet,
  type MigrationSource,
  resolveTarget,
} from './migration-set.js';
export { type ConsumerView, type QueuedTaskVerdict, queuedTaskVerdict } from './queued-task.js';
export { finalStatusOf, RunAggregate, settledCount } from './run-aggregate.js';
export { type JournalRowsOfRun, recoveredCompletion } from './run-recovery.js';
export { type QueueSample, RunTimingBook } from './run-timings.js';
export {
  type ParsedStatement,
  type PgNode,
  type SqlParser,
  type SqlParseResult,
  type SqlStatement,
  SqlSyntaxError,
} from './sql-parser.js';
export { parseTenantRow, type Tenant } from './tenant.js';
