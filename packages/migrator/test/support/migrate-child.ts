// A separate migrator process for the concurrency and crash tests, started by child-migrator.ts with
// `node --import tsx`. It connects, says `ready`, optionally waits for `go` on stdin (so that two
// processes call migrate() at the same moment), migrates, and prints one JSON line with the result.
import { createInterface } from 'node:readline';

import { SluiceError } from '@sluice/core';

import { connectTenant } from '../../src/connect.js';
import { loadMigrationDir } from '../../src/migration-files.js';
import { TenantMigrator } from '../../src/tenant-migrator.js';

export interface ChildConfig {
  databaseUrl: string;
  migrationsDir: string;
  runId: string;
  /** Shows in pg_stat_activity, so the parent can find this process's backend. */
  applicationName: string;
  waitForGo?: boolean;
  /** PG14+: lets the server notice a dead client during a long statement and abort its transaction. */
  clientConnectionCheckMs?: number;
}

export type ChildEvent =
  | { event: 'ready'; backendPid: number }
  | { event: 'done'; status: string; applied: number[] }
  | { event: 'error'; name: string; code: string; transient: boolean; message: string };

function emit(event: ChildEvent): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
  const set = await loadMigrationDir(config.migrationsDir);
  const client = await connectTenant({
    databaseUrl: config.databaseUrl,
    host: '127.0.0.1:5432',
    connectTimeoutMs: 5_000,
    lockTimeoutMs: 5_000,
    statementTimeoutMs: 60_000,
    applicationName: config.applicationName,
  });
  try {
    if (config.clientConnectionCheckMs !== undefined) {
      await client.query(`SET client_connection_check_interval = ${config.clientConnectionCheckMs}`);
    }
    const pid = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    emit({ event: 'ready', backendPid: pid.rows[0]!.pid });
    if (config.waitForGo) {
      const lines = createInterface({ input: process.stdin });
      await new Promise<void>((resolve) => lines.once('line', () => resolve()));
      lines.close();
    }
    try {
      const report = await new TenantMigrator(client, set, '127.0.0.1:5432').migrate({
        targetVersion: set.latest,
        runId: config.runId,
        executorId: config.applicationName,
      });
      emit({ event: 'done', status: report.status, applied: report.applied });
    } catch (error) {
      if (!(error instanceof SluiceError)) throw error;
      emit({ event: 'error', name: error.name, code: error.code, transient: error.transient, message: error.message });
    }
  } finally {
    await client.end();
  }
}

await main();
