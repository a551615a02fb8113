import type { OutcomeError } from '@sluice/contracts';

/**
 * Base of every error Sluice raises on purpose. `transient` says whether trying again
 * later can help: retry, nak-vs-term and the circuit breaker's filter are one `instanceof` away.
 */
export abstract class SluiceError extends Error {
  /** Stable machine-readable code, carried into tenant outcomes. */
  abstract readonly code: string;
  abstract readonly transient: boolean;
  /** The migration version involved, when there is one. */
  declare readonly version?: number;
  /** The SQLSTATE the database answered with, when the error came from one. */
  declare readonly sqlState?: string;

  constructor(message: string, options?: ErrorOptions & { version?: number; sqlState?: string | undefined }) {
    super(message, options);
    this.name = new.target.name;
    if (options?.version !== undefined) (this as { version?: number }).version = options.version;
    if (options?.sqlState) (this as { sqlState?: string }).sqlState = options.sqlState;
  }

  /** The error as outcome data: code, message, transient, and the version and SQLSTATE when known. */
  toOutcomeError(): OutcomeError {
    return {
      code: this.code,
      message: this.message,
      transient: this.transient,
      ...(this.version !== undefined ? { version: this.version } : {}),
      ...(this.sqlState ? { sqlState: this.sqlState } : {}),
    };
  }
}

/** Errors that retrying later may cure (a held lock, an unreachable host). */
export abstract class TransientError extends SluiceError {
  readonly transient = true;
}

/** Errors that retrying will not cure (bad SQL, drift, a dirty tenant). */
export abstract class PermanentError extends SluiceError {
  readonly transient = false;
}

/** Another runner holds this database's migration lock. */
export class LockedError extends TransientError {
  readonly code = 'locked';
}

/**
 * The journal changed between the read a plan was made from and the moment its files were to
 * run (another runner migrated the database in between). Nothing of the plan was applied; a
 * retry reads the journal again.
 */
export class JournalMovedError extends TransientError {
  readonly code = 'journal_moved';
}

/** A migration waited longer than `lock_timeout` for a table lock. */
export class LockTimeoutError extends TransientError {
  readonly code = 'lock_timeout';
  declare readonly sqlState: string;
  constructor(message: string, sqlState: string, options?: ErrorOptions & { version?: number }) {
    super(message, { ...options, sqlState });
  }
}

/**
 * The database host could not be reached or refused the session (connection refused or reset,
 * SQLSTATE class 08, 53300 too many connections, 57P01/57P03 shutting down or starting up).
 * Host-level: these, and only these, count against a host's circuit breaker.
 */
export class HostUnavailableError extends TransientError {
  readonly code = 'host_unavailable';
  constructor(
    message: string,
    readonly host: string,
    sqlState?: string,
    options?: ErrorOptions,
  ) {
    super(message, { ...options, sqlState });
  }

  /**
   * The host refused the session because its connection table is full (53300): contention for
   * connection slots, not an unreachable host. The limiter cuts for it, the timings charge it as
   * lock-like waiting.
   */
  get tooManyConnections(): boolean {
    return this.sqlState === '53300';
  }
}

/** The executor's migration set differs from the one the run was planned with. */
export class DigestMismatchError extends TransientError {
  readonly code = 'digest_mismatch';
}

/**
 * The run's migration bundle could not be fetched from the bundle store (NATS unavailable);
 * the task is tried again later.
 */
export class BundleUnavailableError extends TransientError {
  readonly code = 'bundle_unavailable';
}

/**
 * The bundle stored under a run's digest holds a different migration set (tampered with, or
 * corrupt): nothing from it is applied, and retrying cannot help.
 */
export class BundleDigestMismatchError extends PermanentError {
  readonly code = 'bundle_digest_mismatch';
}

/** A migration's SQL failed in this tenant. */
export class MigrationSqlError extends PermanentError {
  readonly code = 'sql_error';
  constructor(message: string, sqlState: string | undefined, options: ErrorOptions & { version: number }) {
    super(message, { ...options, sqlState });
  }
}

/** Any other permanent database error outside migration SQL (permissions, a missing database). */
export class DatabaseError extends PermanentError {
  readonly code = 'database_error';
  constructor(message: string, sqlState: string | undefined, options?: ErrorOptions) {
    super(message, { ...options, sqlState });
  }
}

/** A `no-transaction` migration failed midway earlier: the tenant needs `sluice repair`. */
export class DirtyError extends PermanentError {
  readonly code = 'dirty';
}

/**
 * What kind of drift: the journal and the migration files disagree. `down_checksum_mismatch`: the
 * down file of an applied version is not the one that was beside its up file when it ran.
 */
export type DriftKind = 'checksum_mismatch' | 'missing_file' | 'out_of_order' | 'down_checksum_mismatch';

export interface DriftItem {
  kind: DriftKind;
  version: number;
}

/** The journal disagrees with the migration files; nothing is applied to a drifted tenant. */
export class DriftError extends PermanentError {
  readonly code = 'drift';
  constructor(readonly drift: readonly DriftItem[]) {
    super(`drift: ${drift.map((d) => `${d.kind} at ${d.version}`).join(', ')}`);
  }
  override toOutcomeError(): OutcomeError {
    return { ...super.toOutcomeError(), versions: this.drift.map((d) => d.version) };
  }
}

/**
 * A tenant would have to go below a version that has no down file: nothing is undone.
 * `versions`: the applied versions above the target without one.
 */
export class IrreversibleError extends PermanentError {
  readonly code = 'irreversible';
  constructor(
    readonly versions: readonly number[],
    message: string,
  ) {
    super(message, { version: versions[0]! });
  }
  override toOutcomeError(): OutcomeError {
    return { ...super.toOutcomeError(), versions: [...this.versions] };
  }
}

/**
 * Rolling back a run: versions above the run's own were applied by a later run (or by hand), so
 * going back to what the run found would undo them too. Left alone unless the rollback is forced.
 */
export class ChangedByLaterRunError extends PermanentError {
  readonly code = 'changed_by_later_run';
  constructor(
    readonly versions: readonly number[],
    message: string,
  ) {
    super(message, { version: versions[0]! });
  }
  override toOutcomeError(): OutcomeError {
    return { ...super.toOutcomeError(), versions: [...this.versions] };
  }
}

/** The target is not in the set, or is behind what the tenant already has. */
export class TargetError extends PermanentError {
  readonly code = 'invalid_target';
}

/** The migration files themselves are unusable (bad names, duplicate versions, unknown directives). */
export class MigrationSetError extends PermanentError {
  readonly code = 'invalid_migration_set';
}

/** A registry row that cannot be a tenant (no id, a malformed URL, a duplicate id). */
export class InvalidTenantError extends PermanentError {
  readonly code = 'invalid_tenant';
}

/** A tenant id a request named that the registry does not hold (a typo must never pass silently). */
export class TenantNotFoundError extends PermanentError {
  readonly code = 'not_found';
}

/** Turns anything thrown into outcome data, without leaking stack traces. */
export function toOutcomeError(error: unknown): OutcomeError {
  if (error instanceof SluiceError) return error.toOutcomeError();
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'internal', message, transient: false };
}
