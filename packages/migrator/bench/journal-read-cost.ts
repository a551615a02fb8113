// What the server spends on an up-to-date tenant, by the way its journal is read (issues 14, 18):
// a private PostgreSQL (so no other client's work is counted), N tenant databases migrated with
// the repo's migrations, then rounds in alternating order of
//   - reference: connect, `SELECT version, checksum, status FROM sluice_migrations`, close
//     (what bench/fleet-state-bench.ts's in-process pool does);
//   - plain: connect, TenantMigrator's up-to-date check with the plain first read (journal-reads.ts);
//   - probe: the same with the error-free probe (`to_regclass` + `table_to_xml`).
// Each 8 tenants at once. Prints the server's CPU per tenant (the postmaster and every backend it
// reaped, from /proc) and the wall time, medians over the rounds.
//
//   npm run build && npx tsx packages/migrator/bench/journal-read-cost.ts [tenants=150] [rounds=4]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { startPostgresCluster } from '@sluice/testkit';
import pg from 'pg';

import { connectTenant } from '../src/connect.js';
import { JournalReadHints } from '../src/journal-reads.js';
import { loadMigrationDir } from '../src/migration-files.js';
import { TenantMigrator } from '../src/tenant-migrator.js';

const TENANTS = Number(process.argv[2] ?? 150);
const ROUNDS = Number(process.argv[3] ?? 4);
const HOST = 'bench';
const set = await loadMigrationDir(fileURLToPath(new URL('../../../migrations', import.meta.url)));

const server = await startPostgresCluster({ max_connections: '100' });
const postmaster = Number(readFileSync(`${server.dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
/** The postmaster's CPU and its reaped children's (every backend that has exited), in ms. */
function serverCpuMs(): number {
  const stat = readFileSync(`/proc/${postmaster}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10;
}

const databases = Array.from({ length: TENANTS }, (_, i) => `tenant_${i}`);
const urlOf = (db: string) => `${server.serverUrl}/${db}`;

async function eachTenant(work: (db: string) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < databases.length) await work(databases[next++]!);
    }),
  );
}

async function withMigrator(db: string, work: (m: TenantMigrator) => Promise<void>): Promise<void> {
  const client = await connectTenant({
    databaseUrl: urlOf(db),
    host: HOST,
    connectTimeoutMs: 10_000,
    lockTimeoutMs: 10_000,
    statementTimeoutMs: 60_000,
    applicationName: 'sluice-executor:bench',
  });
  try {
    await work(new TenantMigrator(client, set, HOST));
  } finally {
    await client.end();
  }
}

const upToDate = (journalReads?: JournalReadHints) => (db: string) =>
  withMigrator(db, async (m) => {
    const report = await m.migrate({ targetVersion: set.latest, ...(journalReads ? { journalReads } : {}) });
    if (report.status !== 'upToDate') throw new Error(`${db} is not up to date`);
  });

const contenders: Record<string, (db: string) => Promise<void>> = {
  reference: async (db) => {
    const client = new pg.Client({ connectionString: urlOf(db) });
    await client.connect();
    await client.query('SELECT version, checksum, status FROM sluice_migrations ORDER BY version');
    await client.end();
  },
  plain: upToDate(new JournalReadHints()),
  probe: upToDate(),
};

try {
  const admin = new pg.Client({ connectionString: `${server.serverUrl}/postgres` });
  await admin.connect();
  for (const db of databases) await admin.query(`CREATE DATABASE ${db} TEMPLATE template0`);
  await admin.end();
  await eachTenant((db) => withMigrator(db, async (m) => void (await m.migrate({ targetVersion: set.latest }))));

  const cpu: Record<string, number[]> = {};
  const wall: Record<string, number[]> = {};
  for (let round = 0; round < ROUNDS; round++) {
    const order = Object.entries(contenders);
    if (round % 2 === 1) order.reverse();
    for (const [name, work] of order) {
      const cpu0 = serverCpuMs();
      const t0 = performance.now();
      await eachTenant(work);
      (wall[name] ??= []).push(performance.now() - t0);
      (cpu[name] ??= []).push((serverCpuMs() - cpu0) / TENANTS);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const reference = median(cpu.reference!);
  console.log(`${TENANTS} up-to-date tenants, 8 at once, ${ROUNDS} rounds (medians)`);
  console.log('read        server CPU ms/tenant   ÷ reference   wall ms');
  for (const name of Object.keys(contenders)) {
    const c = median(cpu[name]!);
    console.log(
      `${name.padEnd(11)} ${c.toFixed(2).padStart(20)} ${(c / reference).toFixed(2).padStart(12)}x ${median(wall[name]!).toFixed(0).padStart(9)}`,
    );
  }
} finally {
  await server.dispose();
}
