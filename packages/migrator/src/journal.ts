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

/**
 * Creates the journal, or brings an older one to the current shape. Each step is idempotent:
 * the first shape is created, later columns are added, so every journal ever created converges.
 * `present`: the table is known to exist (an old shape), so only the later columns are added; a
 * new journal is created in its current shape at once (five ADD COLUMNs on a new table are five
 * catalog rewrites the server does for nothing).
 */
export function ensureJournalSql(loc: JournalLocation, present = true): string {
  const table = journalTable(loc);
  const createSchema = loc.schema === 'public' ? '' : `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(loc.schema)};\n`;
  if (!present) {
    return `${createSchema}CREATE TABLE IF NOT EXISTS ${table} (
  version bigint PRIMARY KEY,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  status text NOT NULL DEFAULT 'applied',
  duration_ms integer,
  run_id text,
  executor_id text,
  baseline boolean NOT NULL DEFAULT false,
  down_checksum text
)`;
  }
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
  ADD COLUMN IF NOT EXISTS baseline boolean NOT NULL DEFAULT false,
  ADD COLUMN IF NOT EXISTS down_checksum text;`;
}

/** The columns `ensureJournalSql` adds to the first shape: a journal with all of them is current. */
const LATER_COLUMNS = ['status', 'duration_ms', 'run_id', 'executor_id', 'baseline', 'down_checksum'];

/** Whether a journal with these columns is of the current shape. */
export function hasCurrentShape(columns: readonly string[]): boolean {
  return LATER_COLUMNS.every((c) => columns.includes(c));
}

/**
 * Reads the journal with a plain `SELECT *` (whatever its shape: the columns come back with the
 * rows). The server's cheapest read, but a database without the table answers with an error:
 * `isMissingRelationError` (pg-errors.ts) and `journal-reads.ts`.
 */
export function readJournalPlainSql(loc: JournalLocation): string {
  return `SELECT * FROM ${journalTable(loc)} ORDER BY version`;
}

/**
 * Reads the journal without ever raising an error, whether or not it exists and whatever its
 * shape: two statements, one message. The first says whether the table exists and is of the
 * current shape; the second returns its rows (none when it is missing). A failed statement
 * would cost the server an aborted transaction and a line in its log for every new tenant, so
 * the table is reached through `to_regclass` and `table_to_xml`, which take a relation that may
 * be NULL. Columns an old journal lacks read as NULL (its rows are all applied ones).
 */
export function readJournalStateSql(loc: JournalLocation): string {
  const rel = `to_regclass(${literal(journalTable(loc))})`;
  const columns = LATER_COLUMNS.map(literal).join(', ');
  return `SELECT ${rel} IS NOT NULL AS present, (SELECT count(*)::int FROM pg_catalog.pg_attribute WHERE attrelid = ${rel} AND attname IN (${columns}) AND NOT attisdropped) = ${LATER_COLUMNS.length} AS current;
SELECT version, name, checksum, status, run_id, down_checksum FROM xmltable('/*/row' PASSING table_to_xml(${rel}, false, false, '') COLUMNS version bigint, name text, checksum text, status text, run_id text, down_checksum text) ORDER BY version`;
}

/** True when this session holds the journal's advisory lock (read from pg_locks, which raises nothing). */
export function lockHeldSql(loc: JournalLocation): string {
  const key = BigInt(advisoryLockKey(loc));
  const classid = BigInt.asUintN(32, key >> 32n);
  const objid = BigInt.asUintN(32, key);
  return `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) AND classid = ${classid}::bigint::oid AND objid = ${objid}::bigint::oid AND objsubid = 1 AND granted) AS held`;
}

/** SQLSTATEs our guards raise: `SL001` the lock is held elsewhere, `SL002` the journal is not where the plan left it. */
export const GUARD_SQLSTATE = { locked: 'SL001', journalMoved: 'SL002' } as const;

/** A statement that takes the migration lock without waiting, and raises `SL001` when another session holds it. */
export function lockGuardSql(loc: JournalLocation): string {
  return `DO $sluice$BEGIN IF NOT pg_try_advisory_lock(${advisoryLockKey(loc)}) THEN RAISE EXCEPTION 'another runner holds the migration lock of this database' USING ERRCODE = '${GUARD_SQLSTATE.locked}'; END IF; END$sluice$`;
}

/** The digest a journal guard compares: every row's version, status and checksum, in version order. */
export function journalDigest(entries: ReadonlyArray<{ version: number; status: string; checksum: string }>): string {
  const text = [...entries]
    .sort((a, b) => a.version - b.version)
    .map((e) => `${e.version}:${e.status}:${e.checksum}`)
    .join(',');
  return createHash('md5').update(text).digest('hex');
}

/**
 * A statement that raises `SL002` (DETAIL: `beforeVersion`) unless the journal holds exactly
 * the rows whose digest is `digest`: put before a file, it proves nobody moved the journal
 * since the plan was made, so the file runs on the state it was planned for.
 */
export function journalGuardSql(loc: JournalLocation, digest: string, beforeVersion: number): string {
  return `DO $sluice$BEGIN IF (SELECT md5(coalesce(string_agg(version || ':' || status || ':' || checksum, ',' ORDER BY version), '')) FROM ${journalTable(loc)}) <> '${digest}' THEN RAISE EXCEPTION 'the journal changed since it was read: another runner migrated this database' USING ERRCODE = '${GUARD_SQLSTATE.journalMoved}', DETAIL = '${beforeVersion}'; END IF; END$sluice$`;
}

function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
