import pg from 'pg';

import { inSpan } from './migration-tracing.js';
import { classifyPgError } from './pg-errors.js';

export interface ConnectOptions {
  /** `postgres://user@host:port/db`; the password comes from PGPASSWORD or ~/.pgpass, never the URL. */
  databaseUrl: string;
  /** `host:port`, for error messages and breaker accounting. */
  host: string;
  connectTimeoutMs: number;
  /** Session defaults; a file may override them (`-- sluice:lock-timeout 5s`). */
  lockTimeoutMs: number;
  statementTimeoutMs: number;
  applicationName?: string;
}

const roundTrips = new WeakMap<pg.Client, { count: number }>();

/**
 * Messages sent on a client opened by {@link connectTenant} since it connected: each `query` call
 * is one round trip (a multi-statement text travels as one message), which is what the network
 * alone costs a tenant (issue 15: baseline round trip × round trips).
 */
export function roundTripsOf(client: pg.Client): number {
  return roundTrips.get(client)?.count ?? 0;
}

/**
 * Opens one connection to a tenant database. Timeouts travel in the startup packet, so they
 * cost no round trip. Connection failures come back as typed, host-level errors.
 */
export async function connectTenant(options: ConnectOptions): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: options.databaseUrl,
    connectionTimeoutMillis: options.connectTimeoutMs,
    lock_timeout: options.lockTimeoutMs,
    statement_timeout: options.statementTimeoutMs,
    application_name: options.applicationName ?? 'sluice',
  });
  // An error after connect (server restart) must not crash the process; the next query reports it.
  client.on('error', () => undefined);
  await inSpan('sluice.connect', { 'sluice.host': options.host }, async () => {
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => undefined);
      throw classifyPgError(error, options.host);
    }
  });
  // Counted at the one place every statement goes through; no copy of the migrator's paths.
  const counter = { count: 0 };
  roundTrips.set(client, counter);
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as { query: unknown }).query = (...args: unknown[]) => {
    counter.count += 1;
    return query(...args);
  };
  return client;
}
