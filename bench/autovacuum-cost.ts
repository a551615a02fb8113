/**
 * What autovacuum costs a Postgres host with many tenant databases, and so why the fleet benchmark
 * runs its hosts with it off. For each setting (on, off) a private cluster gets `--databases`
 * databases, each used as a migration and the benchmark's reset use them (tables with indexes and
 * a foreign key made and dropped, `--rounds` times), then:
 *
 * - **idle:** the postmaster's CPU (with every backend and worker, /proc) a second over
 *   `--seconds`, with no client connected: the launcher visits every database in use once per
 *   `autovacuum_naptime` (default 1 min) whoever runs, and cleans the catalogs the DDL left dead
 *   rows in;
 * - **connections:** then the server's CPU for one connection (connect, `SELECT 1`, end) to each
 *   database, twice over: the first pass finds whatever autovacuum left behind, the second what a
 *   connection costs when nothing changed since the last one.
 *
 * Run: `npx tsx bench/autovacuum-cost.ts [--databases 500] [--seconds 45] [--rounds 3]`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { createTenantFleet, processTreeCpuMs, startPostgresCluster } from '@sluice/testkit';
import pg from 'pg';

const { values } = parseArgs({
  options: {
    databases: { type: 'string', default: '500' },
    seconds: { type: 'string', default: '45' },
    rounds: { type: 'string', default: '3' },
  },
});
/** A positive whole number of the option, or a clear error naming it. */
function count(name: 'databases' | 'seconds' | 'rounds'): number {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`--${name} takes a whole number of at least 1, not "${values[name]}"`);
  return n;
}
const DATABASES = count('databases');
const SECONDS = count('seconds');
const ROUNDS = count('rounds');

const USE = `
  CREATE TABLE accounts (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, created_at timestamptz DEFAULT now());
  CREATE TABLE invoices (id bigserial PRIMARY KEY, account_id bigint REFERENCES accounts (id), total numeric CHECK (total >= 0));
  CREATE INDEX invoices_account ON invoices (account_id);
  INSERT INTO accounts (email) SELECT 'a' || g || '@example.com' FROM generate_series(1, 200) g;
  DROP SCHEMA public CASCADE; CREATE SCHEMA public;`;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function measure(autovacuum: 'on' | 'off'): Promise<{ idleMsPerS: number; firstMs: number; againMs: number }> {
  const host = await startPostgresCluster({ max_connections: '200', autovacuum });
  try {
    const postmaster = Number(readFileSync(path.join(host.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const fleet = await createTenantFleet({
      count: DATABASES,
      serverUrl: host.serverUrl,
      tenantPrefix: 'av',
      prefix: `autovacuum_${autovacuum}`,
    });
    for (let round = 0; round < ROUNDS; round++) await fleet.eachTenant((client) => client.query(USE), 8);
    const cpu0 = processTreeCpuMs(postmaster);
    const t0 = performance.now();
    await sleep(SECONDS * 1_000);
    const idleMsPerS = ((processTreeCpuMs(postmaster) - cpu0) / (performance.now() - t0)) * 1_000;
    const pass = async (): Promise<number> => {
      const before = processTreeCpuMs(postmaster);
      for (const tenant of fleet.tenants) {
        const client = new pg.Client({ connectionString: tenant.databaseUrl });
        await client.connect();
        await client.query('SELECT 1');
        await client.end();
      }
      return (processTreeCpuMs(postmaster) - before) / fleet.tenants.length;
    };
    const firstMs = await pass();
    const againMs = await pass();
    return { idleMsPerS, firstMs, againMs };
  } finally {
    await host.dispose();
  }
}

console.log(
  `${DATABASES} databases, each used ${ROUNDS} times (tables, an index, a foreign key, 200 rows; dropped), then ${SECONDS} s idle`,
);
console.log(
  '| autovacuum | idle: server CPU ms/s | a connection after the idle time: server CPU ms | and again at once |',
);
console.log('|---|---:|---:|---:|');
for (const setting of ['on', 'off'] as const) {
  const r = await measure(setting);
  console.log(`| ${setting} | ${r.idleMsPerS.toFixed(1)} | ${r.firstMs.toFixed(2)} | ${r.againMs.toFixed(2)} |`);
}
