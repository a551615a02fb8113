export { AimdLimiter } from './aimd-limiter.js';
export { classifyBottleneck } from './bottleneck.js';
export { durationProblem, parseDuration } from './duration.js';
export { ConfigError, type Env, envReader } from './env.js';
export {
  BundleDigestMismatchError,
  BundleUnavailableError,
  DatabaseError,
  DigestMismatchError,
  DirtyError,
  DriftError,
  HostUnavailableError,
  InvalidTenantError,
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
export { type JournalEntry, planTenant, type TenantPlan } from './migration-plan.js';
export {
  createMigrationSet,
  type Migration,
  type MigrationSet,
  type MigrationSource,
  resolveTarget,
} from './migration-set.js';
export { finalStatusOf, RunAggregate, settledCount } from './run-aggregate.js';
export { type QueueSample, RunTimingBook } from './run-timings.js';
export { splitSqlStatements } from './sql-splitter.js';
export { parseTenantRow, type Tenant } from './tenant.js';
