import { createHash } from 'node:crypto';

/** Where the journal lives in each tenant database. */
export interface JournalLocation {
  schema: string;
  table: string;
}

export const DEFAULT_JOURNAL: JournalLocation = { schema: 'public', table: 'sluice_migrations' };

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function journalTable(loc: JournalLocation): string {
  return `${quoteIdent(loc.schema)}.${quoteIdent(loc.table)}`;
}

/**
 * The advisory lock key of a journal: one runner per database and journal.
 * Derived from the journal's name so two tools with different journals do not block each other.
 */
export function advisoryLockKey(loc: JournalLocation): string {
  const digest = createHash('sha256').update(`sluice:${loc.schema}.${loc.table}`).digest();
  return digest.readBigInt64BE(0).toString();
}

/** Columns read on every run. Reading a column an old journal lacks fails with 42703, which upgrades it. */
export function selectJournalSql(loc: JournalLocation): string {
  return `SELECT version::text AS version, name, checksum, status, run_id FROM ${journalTable(loc)} ORDER BY version`;
}

/**
 * Creates the journal, or brings an older one to the current shape. Each step is idempotent:
 * the first shape is created, later columns are added, so every journal ever created converges.
 */
export function ensureJournalSql(loc: JournalLocation): string {
  const table = journalTable(loc);
  const createSchema = loc.schema === 'public' ? '' : `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(loc.schema)};\n`;
  return `${createSchema}CREATE TABLE IF NOT EXISTS ${table} (
  version bigint PRIMARY KEY,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE ${table}
  ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'applied',
  ADD COLUMN IF NOT EXISTS duration_ms integer,
  ADD COLUMN IF NOT EXISTS run_id text,
  ADD COLUMN IF NOT EXISTS executor_id text,
  ADD COLUMN IF NOT EXISTS baseline boolean NOT NULL DEFAULT false;`;
}
