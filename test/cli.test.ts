import { execFile } from 'node:child_process';
import { access, constants, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

import { REPO_ROOT, withFleetStack } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = path.join(REPO_ROOT, 'packages', 'cli', 'dist', 'main.js');

describe('the sluice command on the PATH of the checkout', () => {
  it('the bin is a file in git (linked at npm ci, before any build) that loads the built CLI', async () => {
    const pkg = JSON.parse(await readFile(path.join(REPO_ROOT, 'packages/cli/package.json'), 'utf8')) as {
      bin: Record<string, string>;
    };
    expect(pkg.bin.sluice).toBe('./bin/sluice.js');
    await access(path.join(REPO_ROOT, 'packages/cli/bin/sluice.js'), constants.X_OK);
    const lock = JSON.parse(await readFile(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { bin?: Record<string, string> }>;
    };
    expect(lock.packages['packages/cli']?.bin).toEqual({ sluice: 'bin/sluice.js' });
  });

  it('npx sluice --version works from the repository root', async () => {
    const { stdout } = await run('npx', ['--no-install', 'sluice', '--version'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
      timeout: 60_000,
    });
    const { version } = JSON.parse(await readFile(path.join(REPO_ROOT, 'packages/cli/package.json'), 'utf8')) as {
      version: string;
    };
    expect(stdout.trim()).toBe(`sluice ${version}`);
  });
});

describe('the sluice command against running services', () => {
  const stack = withFleetStack(
    { beforeAll, afterAll },
    { fleets: [{ count: 6 }], env: { PATH: process.env.PATH ?? '' } },
  );

  const sluice = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: stack.env, timeout: 60_000 });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  it('migrate --wait prints the run report and exits 0 when the run succeeds', async () => {
    const r = await sluice('migrate', '--target', 'latest', '--run-id', 'cli-1', '--wait');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('run cli-1: SUCCEEDED');
    expect(r.stdout).toContain('6 migrated, 0 up to date, 0 failed, 0 skipped (of 6)');
  });

  it('status shows a finished run, and --json gives its events', async () => {
    const r = await sluice('status', 'cli-1');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('run cli-1: SUCCEEDED');
    const j = await sluice('status', 'cli-1', '--json');
    expect(JSON.parse(j.stdout)).toMatchObject({
      runId: 'cli-1',
      completed: { status: 'succeeded', counts: { migrated: 6 } },
    });
  });

  it('migrate --wait --json for a subset by id, as a dry run', async () => {
    const r = await sluice(
      'migrate',
      '--run-id',
      'cli-2',
      '--tenants',
      'tenant-0001,tenant-0002',
      '--dry-run',
      '--wait',
      '--json',
    );
    expect(r.code).toBe(0);
    const completed = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { event: string })
      .find((e) => e.event === 'completed');
    expect(completed).toMatchObject({ dryRun: true, counts: { total: 2, upToDate: 2 } });
  });

  it('exits 3 with the reasons when the planner rejects the request', async () => {
    const r = await sluice('migrate', '--target', '999', '--run-id', 'cli-3', '--wait', '--timeout', '30s');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/rejected[\s\S]*999/);
  });

  it('exits 2 with a clear message on bad arguments', async () => {
    expect((await sluice('migrate', '--run-id', 'bad id')).code).toBe(2);
    expect((await sluice('migrate', '--bogus')).code).toBe(2);
    expect((await sluice('frobnicate')).stderr).toMatch(/unknown command/);
    expect((await sluice('status')).code).toBe(2);
  });

  it('a tenant id the registry does not hold fails as not_found, counted in the run', async () => {
    const r = await sluice('migrate', '--run-id', 'cli-unknown', '--tenants', 'tenant-0003,no-such-tenant', '--wait');
    // One tenant succeeded, one failed: the run is partial, never a silent success.
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('run cli-unknown: PARTIAL');
    expect(r.stdout).toMatch(/1 failed, 0 skipped \(of 2\)/);
    expect(r.stdout).toContain('no-such-tenant: [not_found] tenant no-such-tenant is not in the registry');
    const failed = await sluice('tenants', 'cli-unknown', '--failed', '--json');
    expect(JSON.parse(failed.stdout.trim())).toMatchObject({
      tenantId: 'no-such-tenant',
      status: 'failed',
      error: { code: 'not_found', transient: false },
    });
  });

  it('status of an unknown run says so', async () => {
    const r = await sluice('status', 'never-ran');
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/no run never-ran/);
  });

  it('repair refuses a version that is not dirty, naming the tenant', async () => {
    const r = await sluice('repair', '--tenant', 'tenant-0003', '--version', '5');
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/tenant-0003: version 5 is not dirty/);
  });
});
