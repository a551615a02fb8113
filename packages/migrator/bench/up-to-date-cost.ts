// The per-tenant cost of an up-to-date check (issue 3): how much a run pays for a tenant that
// already has every migration. Creates N databases on the local Postgres, migrates them with the
// repo's migrations, times the check sequentially, then drops them.
//
//   npx tsx bench/up-to-date-cost.ts [tenants=200]
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

import pg from 'pg';

import { type ConnectOptions, connectTenant } from '../src/connect.js';
import { loadMigrationDir } from '../src/migration-files.js';
import { TenantMigrator } from '../src/tenant-migrator.js';

const SERVER_URL = 'postgres://postgres@127.0.0.1:5432';
const HOST = '127.0.0.1:5432';
const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations', import.meta.url));
/** Migrations of the setup phase run this many tenants at a time (max_connections is 100 by default). */
const SETUP_CONCURRENCY = 8;

interface Summary {
  median: number;
  p95: number;
  mean: number;
  min: number;
  max: number;
}

function summarise(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  return {
    median: at(0.5),
    p95: at(0.95),
    mean: sorted.reduce((s, x) => s + x, 0) / sorted.length,
    min: sorted[0]!,
    max: sorted.at(-1)!,
  };
}

function row(label: string, s: Summary, roundTrips: string): string {
  const f = (n: number): string => n.toFixed(2).padStart(7);
  return `${label.padEnd(44)} ${f(s.median)} ${f(s.p95)} ${f(s.mean)} ${f(s.min)} ${f(s.max)}   ${roundTrips}`;
}

/** Counts `query()` calls on a client: with the simple query protocol, each is one round trip. */
function countQueries(client: pg.Client): () => number {
  let calls = 0;
  const target = client as unknown as { query: (...args: unknown[]) => unknown };
  const original = target.query.bind(client);
  target.query = (...args: unknown[]) => {
    calls += 1;
    return original(...args);
  };
  return () => calls;
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

async function main(): Promise<void> {
  const tenants = Number(process.argv[2] ?? 200);
  if (!Number.isInteger(tenants) || tenants < 1)
    throw new Error(`tenants must be a positive integer, got ${process.argv[2]}`);
  const set = await loadMigrationDir(MIGRATIONS_DIR);
  const prefix = `sluice_bench_${randomBytes(3).toString('hex')}`;
  const names = Array.from({ length: tenants }, (_, i) => `${prefix}_${String(i + 1).padStart(4, '0')}`);
  const connectOptions = (db: string): ConnectOptions => ({
    databaseUrl: `${SERVER_URL}/${db}`,
    host: HOST,
    connectTimeoutMs: 5_000,
    lockTimeoutMs: 5_000,
    statementTimeoutMs: 60_000,
    applicationName: 'sluice-bench',
  });
  const admin = new pg.Client({ connectionString: `${SERVER_URL}/postgres` });
  await admin.connect();
  const created: string[] = [];
  try {
    let t = performance.now();
    for (const name of names) {
      await admin.query(`CREATE DATABASE "${name}" TEMPLATE template0`);
      created.push(name);
    }
    console.log(`created ${tenants} databases in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    t = performance.now();
    await mapLimit(names, SETUP_CONCURRENCY, async (name) => {
      const client = await connectTenant(connectOptions(name));
      try {
        const report = await new TenantMigrator(client, set, HOST).migrate({
          targetVersion: set.latest,
          runId: 'bench-setup',
        });
        if (report.applied.length !== set.migrations.length)
          throw new Error(`${name}: applied ${report.applied.join(',')}`);
      } finally {
        await client.end();
      }
    });
    console.log(
      `migrated them to version ${set.latest} (${set.migrations.length} files) in ${((performance.now() - t) / 1000).toFixed(1)} s`,
    );

    // A. What the executor pays per tenant: connect, check, disconnect.
    const full: number[] = [];
    const journalMs: number[] = [];
    let queriesPerCheck = new Set<number>();
    for (const name of names) {
      const started = performance.now();
      const client = await connectTenant(connectOptions(name));
      const count = countQueries(client);
      const report = await new TenantMigrator(client, set, HOST).migrate({
        targetVersion: set.latest,
        runId: 'bench-check',
      });
      await client.end();
      full.push(performance.now() - started);
      journalMs.push(report.timings.journalMs);
      queriesPerCheck.add(count());
      if (report.status !== 'upToDate') throw new Error(`${name}: expected upToDate, got ${report.status}`);
    }
    const fullQueries = [...queriesPerCheck].join('/');

    // B. migrate() alone on an open connection: first call on a new session, and a later (warm) call.
    const cold: number[] = [];
    const warm: number[] = [];
    const ping: number[] = [];
    queriesPerCheck = new Set<number>();
    for (const name of names) {
      const client = await connectTenant(connectOptions(name));
      try {
        const migrator = new TenantMigrator(client, set, HOST);
        const count = countQueries(client);
        let started = performance.now();
        await migrator.migrate({ targetVersion: set.latest, runId: 'bench-check' });
        cold.push(performance.now() - started);
        queriesPerCheck.add(count());
        started = performance.now();
        await migrator.migrate({ targetVersion: set.latest, runId: 'bench-check' });
        warm.push(performance.now() - started);
        started = performance.now();
        await client.query('SELECT 1');
        ping.push(performance.now() - started);
      } finally {
        await client.end();
      }
    }

    console.log(
      `\nup-to-date check over ${tenants} tenants, sequential, ms (PostgreSQL on ${HOST}, Node ${process.version})`,
    );
    console.log(`${'measure'.padEnd(44)}  median     p95    mean     min     max   round trips`);
    console.log(row('connect + migrate() + end', summarise(full), `1 startup (trust auth) + ${fullQueries} queries`));
    console.log(row('  of which journal read (journalMs)', summarise(journalMs), '1 query'));
    console.log(
      row('migrate() alone, first call on the session', summarise(cold), `${[...queriesPerCheck].join('/')} queries`),
    );
    console.log(row('migrate() alone, warm session', summarise(warm), `${[...queriesPerCheck].join('/')} queries`));
    console.log(row('SELECT 1 (one round trip, for scale)', summarise(ping), '1 query'));
  } finally {
    const t = performance.now();
    for (const name of created) await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.end();
    console.log(`\ndropped ${created.length} databases in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
}

await main();
