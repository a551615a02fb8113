import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

import { REPO_ROOT } from '@sluice/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { type LifecycleHarness, lifecycleHarness } from './run-lifecycle-support.js';

const run = promisify(execFile);
const CLI = path.join(REPO_ROOT, 'packages', 'cli', 'dist', 'main.js');

describe('the sluice command steering runs', () => {
  let h: LifecycleHarness;
  let env: Record<string, string>;

  beforeAll(async () => {
    h = await lifecycleHarness();
    const { registry } = await h.fleet('cli', 30, { broken: 2 });
    env = h.env(registry);
    await h.startReporter(env);
    await h.start('executor', { ...env, SLUICE_CONCURRENCY: '2' });
    await h.start('planner', env);
  });
  afterEach(async () => {
    // A test that held tenants and failed does not leave the next one waiting.
    await h.openGate();
  });
  afterAll(async () => {
    await h?.dispose();
  });

  const cliEnv = () => ({ PATH: process.env.PATH ?? '', NATS_URL: env.NATS_URL!, USER: 'e2e-operator' });
  const sluice = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: cliEnv(), timeout: 60_000 });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  it('migrate --wait follows a run through pause and resume, and exits 1 when it ends partial', async () => {
    await h.closeGate();
    const waiting = spawn(process.execPath, [CLI, 'migrate', '--run-id', 'cli-life', '--wait'], { env: cliEnv() });
    let stdout = '';
    let stderr = '';
    waiting.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    waiting.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number>((resolve) => waiting.once('exit', (code) => resolve(code ?? -1)));
    // Tenants are held mid-migration until the run is paused: it cannot end before the pause.
    await expect.poll(() => h.activeMigrations(), { timeout: 30_000, interval: 50 }).toBeGreaterThan(0);

    const paused = await sluice('pause', 'cli-life', '--reason', 'db maintenance');
    expect(paused).toMatchObject({
      code: 0,
      stdout: expect.stringContaining('pause requested for run cli-life (was running)') as string,
    });
    await expect
      .poll(async () => (await sluice('status', 'cli-life')).stdout, { timeout: 10_000 })
      .toMatch(/^run cli-life: PAUSED/);
    const status = await sluice('status', 'cli-life');
    expect(status.stdout).toMatch(/control {3}paused by e2e-operator: db maintenance/);
    expect(await sluice('pause', 'cli-life')).toMatchObject({
      code: 5,
      stderr: expect.stringContaining('run cli-life is already paused') as string,
    });
    const runs = await sluice('runs');
    expect(runs.stdout).toMatch(/^RUN\s+STATUS\s+TARGET\s+DONE/);
    expect(runs.stdout).toMatch(/cli-life\s+paused\s+latest \(3\)\s+\d+\/32/);
    const paused2 = JSON.parse((await sluice('status', 'cli-life', '--json')).stdout) as {
      status: string;
      control: { state: string };
    };
    expect(paused2).toMatchObject({ status: 'paused', control: { state: 'paused' } });

    await h.openGate();
    expect((await sluice('resume', 'cli-life')).code).toBe(0);
    const code = await exited;
    expect(code).toBe(1);
    expect(stdout).toMatch(/progress cli-life: \d+\/32 tenants {2}[\d.]+\/s {2}eta/);
    expect(stdout).toContain('run cli-life paused by e2e-operator: db maintenance');
    expect(stdout).toContain('run cli-life resumed by e2e-operator');
    expect(stdout).toContain('run cli-life: PARTIAL');
    expect(stdout).toContain('30 migrated, 0 up to date, 2 failed, 0 skipped (of 32)');
    expect(stderr).toContain('published request cli-life');
  });

  it('tenants --failed lists the failures, --json every outcome', async () => {
    const failed = await sluice('tenants', 'cli-life', '--failed');
    expect(failed.code).toBe(0);
    const lines = failed.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^TENANT\s+STATUS\s+CODE\s+DETAIL$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 3))).toEqual([
      ['cli-broken-1', 'failed', 'database_error'],
      ['cli-broken-2', 'failed', 'database_error'],
    ]);
    const all = (await sluice('tenants', 'cli-life', '--json')).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { status: string });
    expect(all).toHaveLength(32);
    expect((await sluice('tenants', 'cli-life', '--status', 'migrated', '--limit', '5')).stdout).toContain(
      '(25 more; raise --limit)',
    );
  });

  it('a failing canary stops the run: --json shows the stop, the exit code is 1', async () => {
    const r = await sluice(
      'migrate',
      '--run-id',
      'cli-canary',
      '--canary',
      '2',
      '--max-failure-rate',
      '10%',
      '--wait',
      '--json',
    );
    expect(r.code).toBe(1);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; action?: string; status?: string; error?: string });
    expect(events.find((e) => e.event === 'control')).toMatchObject({ action: 'stop' });
    expect(events.at(-1)).toMatchObject({
      event: 'completed',
      status: 'failed',
      error: expect.stringMatching(/canary cli-broken-[12] failed/) as string,
    });
    expect((await sluice('runs', '--status', 'failed', '--json')).stdout).toContain('"runId":"cli-canary"');
  });

  it('refuses controls that do not apply, and bad arguments, with clear messages', async () => {
    expect(await sluice('cancel', 'cli-life')).toMatchObject({
      code: 5,
      stderr: expect.stringContaining('run cli-life has already completed (partial)') as string,
    });
    expect(await sluice('pause', 'never-ran')).toMatchObject({
      code: 5,
      stderr: expect.stringContaining('no run never-ran') as string,
    });
    expect(await sluice('tenants', 'never-ran')).toMatchObject({ code: 5 });
    expect((await sluice('tenants')).code).toBe(2);
    expect(await sluice('migrate', '--max-failure-rate', '2')).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--max-failure-rate') as string,
    });
    expect(await sluice('migrate', '--canary', 'some')).toMatchObject({ code: 2 });
    expect(await sluice('runs', '--status', 'bogus')).toMatchObject({ code: 2 });
    expect(await sluice('tenants', 'cli-life', '--failed', '--status', 'migrated')).toMatchObject({ code: 2 });
  });
});
