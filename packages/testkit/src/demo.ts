#!/usr/bin/env node
/**
 * `npm run demo`: a whole migration of a demo fleet on this machine, then everything removed.
 * Uses NATS at NATS_URL (or starts nats-server from PATH) and Postgres at the standard PG*
 * settings (default postgres@127.0.0.1:5432).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import pg from 'pg';

import { startNatsServer } from './nats-server.js';
import { MIGRATIONS_DIR, REPO_ROOT } from './paths.js';
import { waitForPort } from './ports.js';
import { type ServiceProcess, startService } from './service-process.js';
import { createTenantFleet } from './tenant-fleet.js';

const TENANTS = Number(process.env.SLUICE_DEMO_TENANTS ?? 100);

function say(line: string): void {
  process.stdout.write(`\x1b[1m==>\x1b[0m ${line}\n`);
}

async function natsUrl(cleanups: Array<() => Promise<void>>): Promise<string> {
  const configured = process.env.NATS_URL;
  if (configured) {
    const { hostname, port } = new URL(configured);
    await waitForPort(Number(port || 4222), 3_000, hostname).catch(() => {
      throw new Error(`NATS_URL=${configured} does not answer; start NATS there or unset NATS_URL to let the demo start nats-server`);
    });
    return configured;
  }
  const nats = await startNatsServer().catch((error: Error) => {
    throw new Error(`no NATS_URL, and nats-server could not be started from PATH: ${error.message}`);
  });
  cleanups.push(() => nats.dispose());
  say(`started a private nats-server on ${nats.url}`);
  return nats.url;
}

function pgServerUrl(): string {
  const user = process.env.PGUSER ?? 'postgres';
  const host = process.env.PGHOST ?? '127.0.0.1';
  const port = process.env.PGPORT ?? '5432';
  return `postgres://${encodeURIComponent(user)}@${host.startsWith('/') ? 'localhost' : host}:${port}`;
}

async function main(): Promise<number> {
  const cleanups: Array<() => Promise<void>> = [];
  const services: ServiceProcess[] = [];
  try {
    const serverUrl = pgServerUrl();
    const probe = new pg.Client({ connectionString: `${serverUrl}/postgres` });
    await probe.connect().catch((error: Error) => {
      throw new Error(`PostgreSQL at ${serverUrl} (PGHOST/PGPORT/PGUSER) is not reachable: ${error.message}`);
    });
    await probe.end();
    const url = await natsUrl(cleanups);

    say(`creating ${TENANTS} tenant databases on ${serverUrl}`);
    const fleet = await createTenantFleet({ count: TENANTS, serverUrl, prefix: `sluice_demo_${process.pid}` });
    cleanups.push(() => fleet.drop());
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-demo-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const registry = path.join(dir, 'tenants.json');
    await fleet.writeRegistry(registry);

    const env = {
      NATS_URL: url,
      SLUICE_REGISTRY: 'file',
      SLUICE_TENANTS_FILE: registry,
      SLUICE_MIGRATIONS_DIR: MIGRATIONS_DIR,
      SLUICE_REPORTER_PORT: '0',
      LOG_LEVEL: 'warn',
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('PG')) as Array<[string, string]>),
    };
    say('starting reporter, 2 executors and planner');
    for (const [name, extra] of [
      ['reporter', {}],
      ['executor', { SLUICE_EXECUTOR_ID: 'executor-1' }],
      ['executor', { SLUICE_EXECUTOR_ID: 'executor-2' }],
      ['planner', {}],
    ] as const) {
      services.push(await startService(name, { ...env, ...extra, LOG_LEVEL: 'info' }));
    }

    const runId = `demo-${Date.now()}`;
    say(`sluice migrate --target latest --run-id ${runId} --wait`);
    const code = await new Promise<number>((resolve) => {
      const cli = spawn(process.execPath, [path.join(REPO_ROOT, 'packages/cli/dist/main.js'), 'migrate', '--target', 'latest', '--run-id', runId, '--wait'], {
        env: { ...process.env, ...env },
        stdio: 'inherit',
      });
      cli.on('exit', (c) => resolve(c ?? 1));
    });
    const journal = await fleet.eachTenant(async (client) => (await client.query('SELECT count(*)::int AS n FROM sluice_migrations')).rows[0] as { n: number });
    say(`journals: ${journal.filter((j) => j.n > 0).length} of ${TENANTS} tenants hold ${journal[0]?.n ?? 0} versions each`);
    return code;
  } finally {
    say('cleaning up');
    for (const s of services.reverse()) await s.stop();
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: Error) => process.stderr.write(`cleanup: ${error.message}\n`));
  }
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    process.stderr.write(`demo failed: ${error.message}\n`);
    process.exit(1);
  },
);
