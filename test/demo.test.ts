import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { freePort, type NatsServerHandle, REPO_ROOT, startNatsServer } from '@sluice/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** What `npm run demo` runs once it has built. */
const DEMO = path.join(REPO_ROOT, 'packages/testkit/dist/demo.js');
const EMBEDDED_DIR_PREFIX = 'sluice-embedded-pg-';

interface DemoResult {
  code: number | null;
  pid: number;
  stdout: string;
  stderr: string;
  /** Every `started <what> (pid N)` line. */
  started: Array<{ label: string; pid: number }>;
}

/** Runs the built demo as a user would, with `env` over this process's environment. */
async function runDemo(env: Record<string, string | undefined>, timeoutMs = 50_000): Promise<DemoResult> {
  const merged = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete merged[k];
  const child = spawn(process.execPath, [DEMO], { cwd: REPO_ROOT, env: merged, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  // A demo that hangs gets SIGTERM, which runs its own clean-up, then SIGKILL.
  const term = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
  const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 15_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(term);
  clearTimeout(kill);
  const started = [...stdout.matchAll(/^==> started (.+) \(pid (\d+)\)$/gm)].map((m) => ({
    label: m[1]!,
    pid: Number(m[2]),
  }));
  return { code, pid: child.pid!, stdout, stderr, started };
}

/** Alive = signalable and not a zombie waiting for a reaper. */
async function alive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
}

async function embeddedDirs(): Promise<Set<string>> {
  return new Set((await readdir(tmpdir())).filter((name) => name.startsWith(EMBEDDED_DIR_PREFIX)));
}

async function localDemoDatabases(demoPid: number): Promise<string[]> {
  const client = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [
      `sluice_demo_${demoPid}_%`,
    ]);
    return rows.map((r) => r.datname);
  } finally {
    await client.end();
  }
}

/** The checks every successful demo must pass: a succeeded run, its report, nothing left behind. */
async function expectCleanSuccess(result: DemoResult, tenants: number, dirsBefore: Set<string>): Promise<void> {
  const context = `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
  expect(result.code, context).toBe(0);
  const runId = /sluice migrate --target latest --run-id (demo-\d+) --wait/.exec(result.stdout)?.[1];
  expect(runId, context).toBeDefined();
  // The migrate watch's report, then `sluice status` prints the run report again.
  const status = result.stdout.slice(result.stdout.indexOf(`==> sluice status ${runId}`));
  expect(status, context).toContain(`run ${runId}: SUCCEEDED`);
  expect(status).toMatch(
    new RegExp(`tenants +${tenants} migrated, 0 up to date, 0 failed, 0 skipped \\(of ${tenants}\\)`),
  );
  expect(result.stdout).toContain(`journals: ${tenants} of ${tenants} tenants hold 6 versions`);
  // Two hosts: each holds half of the fleet.
  expect(result.stdout).toContain(`creating ${Math.ceil(tenants / 2)} tenant databases sluice_demo_${result.pid}_a_*`);
  expect(result.stdout).toContain(`creating ${Math.floor(tenants / 2)} tenant databases sluice_demo_${result.pid}_b_*`);
  expect(result.stdout).toContain('==> cleaned up:');

  // Nothing it started runs on, its folders are gone, and no database of it is left.
  expect(result.started.map((s) => s.label)).toEqual(
    expect.arrayContaining(['reporter', 'executor-1', 'executor-2', 'planner', 'host 2']),
  );
  for (const { label, pid } of result.started) expect(await alive(pid), `${label} (pid ${pid}) still runs`).toBe(false);
  const registry = /registry: (\S+)\/tenants\.json/.exec(result.stdout)?.[1];
  expect(registry && existsSync(registry), `demo folder ${registry} left behind`).toBe(false);
  const leftover = [...(await embeddedDirs())].filter((d) => !dirsBefore.has(d));
  expect(leftover, 'embedded PostgreSQL data folders left behind').toEqual([]);
  expect(await localDemoDatabases(result.pid)).toEqual([]);
}

describe('npm run demo (the built demo, as the README runs it)', () => {
  it('on the local PostgreSQL plus an embedded second host, with its own nats-server: migrates, reports, cleans up', async () => {
    const before = await embeddedDirs();
    const result = await runDemo({
      SLUICE_DEMO_TENANTS: '6',
      NATS_URL: undefined,
      PGHOST: '127.0.0.1',
      PGPORT: '5432',
      PGUSER: 'postgres',
      SLUICE_DEMO_POSTGRES: undefined,
    });
    expect(result.stdout).toContain('host 1: PostgreSQL at postgres://postgres@127.0.0.1:5432');
    expect(result.started.map((s) => s.label)).toContain('nats-server');
    await expectCleanSuccess(result, 6, before);
  });

  describe('with NATS at NATS_URL and nothing at the PG* settings', () => {
    let nats: NatsServerHandle;
    beforeAll(async () => {
      nats = await startNatsServer();
    });
    afterAll(async () => {
      await nats?.dispose();
    });

    it('starts two embedded PostgreSQL clusters, uses that NATS and leaves it running', async () => {
      const before = await embeddedDirs();
      const unused = await freePort();
      const result = await runDemo({
        SLUICE_DEMO_TENANTS: '6',
        NATS_URL: nats.url,
        PGHOST: '127.0.0.1',
        PGPORT: String(unused),
        SLUICE_DEMO_POSTGRES: undefined,
      });
      expect(result.stdout).toContain(`no usable PostgreSQL at postgres://postgres@127.0.0.1:${unused}`);
      expect(result.stdout).toMatch(/host 1: embedded PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:\d+/);
      expect(result.stdout).toMatch(/host 2: embedded PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:\d+/);
      expect(result.started.map((s) => s.label)).not.toContain('nats-server');
      await expectCleanSuccess(result, 6, before);
      expect(await alive(nats.pid!)).toBe(true);
    });
  });

  describe('names the missing piece when it cannot start one', () => {
    it('NATS_URL that does not answer', async () => {
      const port = await freePort();
      const result = await runDemo({ NATS_URL: `nats://127.0.0.1:${port}` });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`demo failed: NATS_URL=nats://127.0.0.1:${port} does not answer`);
      expect(result.started).toEqual([]);
    });

    it('no NATS_URL and no nats-server on PATH', async () => {
      const result = await runDemo({ NATS_URL: undefined, NATS_SERVER_BIN: undefined, PATH: '/nonexistent' });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /demo failed: NATS_URL is not set and nats-server could not be started from PATH .*install nats-server/,
      );
    });

    it('SLUICE_DEMO_POSTGRES=local with nothing at the PG* settings: names the variables, stops the nats-server it started', async () => {
      const port = await freePort();
      const result = await runDemo({
        NATS_URL: undefined,
        SLUICE_DEMO_POSTGRES: 'local',
        PGHOST: '127.0.0.1',
        PGPORT: String(port),
      });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(
        `demo failed: SLUICE_DEMO_POSTGRES=local, but PostgreSQL at postgres://postgres@127.0.0.1:${port} (PGHOST/PGPORT/PGUSER/PGPASSWORD) cannot be used`,
      );
      for (const { label, pid } of result.started) expect(await alive(pid), `${label} still runs`).toBe(false);
    });

    it('a bad SLUICE_DEMO_TENANTS', async () => {
      const result = await runDemo({ SLUICE_DEMO_TENANTS: 'lots' });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('SLUICE_DEMO_TENANTS must be a whole number');
    });
  });
});
