import { DatabaseError, HostUnavailableError, LockTimeoutError, MigrationSqlError, SluiceError } from '@sluice/core';

/** Node socket errors that mean the host, not the tenant, is the problem. */
const HOST_SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
]);
/** SQLSTATEs that mean the server cannot take the session now (class 08 is handled by prefix). */
const HOST_SQLSTATES = new Set(['53300', '53400', '57P01', '57P02', '57P03']);
/** SQLSTATEs worth retrying inside a migration: the same SQL may succeed a moment later. */
const RETRYABLE_SQLSTATES = new Set(['55P03', '40P01', '40001']);
/** SQLSTATEs of a relation that is not there: no such table (42P01) or no such schema (3F000). */
const MISSING_RELATION_SQLSTATES = new Set(['42P01', '3F000']);

interface PgLikeError {
  code?: string;
  message?: string;
}

/** True when an error is about reaching the host (counts against the host's circuit breaker). */
export function isHostLevel(error: unknown): error is HostUnavailableError {
  return error instanceof HostUnavailableError;
}

/**
 * Whether a statement failed because its table (or the table's schema) does not exist: what a
 * plain journal read meets in a database that has no journal yet. Takes what `pg` threw or what
 * {@link classifyPgError} made of it.
 */
export function isMissingRelationError(error: unknown): boolean {
  const e = (error ?? {}) as { sqlState?: unknown; code?: unknown };
  const code = e.sqlState ?? e.code;
  return typeof code === 'string' && MISSING_RELATION_SQLSTATES.has(code);
}

/**
 * Maps what `pg` or the socket threw into a typed Sluice error.
 * `version` is set when the error came from a migration's own SQL.
 */
export function classifyPgError(error: unknown, host: string, version?: number): SluiceError {
  if (error instanceof SluiceError) return error;
  const e = (error ?? {}) as PgLikeError;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const message = e.message ?? String(error);
  const opts = { cause: error };
  if (code && HOST_SOCKET_CODES.has(code))
    return new HostUnavailableError(`${host}: ${message}`, host, undefined, opts);
  if (code && (code.startsWith('08') || HOST_SQLSTATES.has(code)))
    return new HostUnavailableError(`${host}: ${message}`, host, code, opts);
  if (
    !code &&
    /Connection terminated|connection timeout|timeout expired|Client has encountered a connection error/i.test(message)
  ) {
    return new HostUnavailableError(`${host}: ${message}`, host, undefined, opts);
  }
  if (!code && /client password must be a string/i.test(message)) {
    // pg's words when the server wants a password and neither PGPASSWORD nor a pgpass entry gave one.
    return new DatabaseError(
      `${host}: the server asks for a password and none was given (set PGPASSWORD, or an entry in the pgpass file: PGPASSFILE or ~/.pgpass)`,
      undefined,
      opts,
    );
  }
  if (code && RETRYABLE_SQLSTATES.has(code)) {
    return new LockTimeoutError(message, code, version === undefined ? opts : { ...opts, version });
  }
  if (version !== undefined) return new MigrationSqlError(`version ${version}: ${message}`, code, { ...opts, version });
  return new DatabaseError(message, code, opts);
}
