import type { MigrationSet } from '@sluice/core';
import { connectTenant, JournalReadHints, TenantMigrator } from '@sluice/migrator';

/** Learnt across the pool's tenants, as an executor process learns them. */
const journalReads = new JournalReadHints();

/**
 * One tenant the way a Sluice executor does it — the same connect and the same TenantMigrator,
 * so the same round trips and the same SQL — without the broker: the reference every ratio is
 * taken against.
 */
export async function migrateTenantWithSluiceMigrator(
  databaseUrl: string,
  host: string,
  set: MigrationSet,
): Promise<number[]> {
  const client = await connectTenant({
    databaseUrl,
    host,
    connectTimeoutMs: 10_000,
    lockTimeoutMs: 30_000,
    statementTimeoutMs: 600_000,
  });
  try {
    return (await new TenantMigrator(client, set, host).migrate({ targetVersion: set.latest, journalReads })).applied;
  } finally {
    await client.end();
  }
}
