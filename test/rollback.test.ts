import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { connectBus, openFleetStore } from '@sluice/bus';
import type { TenantOutcome } from '@sluice/contracts';
import { createLogger } from '@sluice/telemetry';
import { listOutcomes, listRejected, REPO_ROOT, waitForCompleted, withFleetStack } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const logger = createLogger({ service: 'rollback-test', level: 'silent' });
const CLI = path.join(REPO_ROOT, 'packages', 'cli', 'dist', 'main.js');

/** Every version has a way back but 4. */
const MIGRATIONS: Record<string, string> = {
  '0001_accounts.sql': 'CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL);',
  '0001_accounts.down.sql': '-- sluice:lock-timeout 2s\nDROP TABLE accounts;',
  '0002_projects.sql': 'CREATE TABLE projects (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts (id));',
  '0002_projects.down.sql': '-- sluice:lock-timeout 2s\nDROP TABLE projects;',
  '0003_plan.sql': '-- sluice:lock-timeout 2s\nALTER TABLE accounts ADD COLUMN plan text;',
  '0003_plan.down.sql': '-- sluice:lock-timeout 2s\nALTER TABLE accounts DROP COLUMN plan;',
  '0004_invoices.sql': 'CREATE TABLE invoices (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts (id));',
  '0005_audit.sql': 'CREATE TABLE audit (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());',
  '0005_audit.down.sql': '-- sluice:lock-timeout 2s\nDROP TABLE audit;',
};

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sluice-rollback-'));
  await chmod(dir, 0o755);
  for (const [file, sql] of Object.entries(MIGRATIONS)) await writeFile(path.join(dir, file), sql);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const stack = withFleetStack({ beforeAll, afterAll }, () => ({
  fleets: [{ count: 8 }],
  migrationsDir: dir,
  env: { SLUICE_HOST_LIMIT: '4' },
}));

const ids = (...n: number[]) => n.map((i) => `tenant-${String(i).padStart(4, '0')}`);

/** Publishes a request and waits for its run to complete. */
async function runToEnd(request: Record<string, unknown>) {
  await stack.publishRequest({ lint: 'warn', ...request });
  return waitForCompleted(stack.nc, request.runId as string, 120_000);
}

/** Each tenant's journal: version and the run that applied it. */
async function journals(): Promise<Record<string, Array<[number, string | null]>>> {
  const rows = await stack.fleet.eachTenant(async (client, tenant) => {
    const r = await client.query<{ version: string; run_id: string | null }>(
      'SELECT version::text, run_id FROM sluice_migrations ORDER BY version',
    );
    return [
      tenant.tenantId,
      r.rows.map((row) => [Number(row.version), row.run_id] as [number, string | null]),
    ] as const;
  });
  return Object.fromEntries(rows);
}

async function hasColumn(tenant: string, table: string, column: string): Promise<boolean> {
  const [found] = await stack.fleet
    .eachTenant(async (client, t) =>
      t.tenantId !== tenant
        ? undefined
        : (
            await client.query('SELECT 1 FROM information_schema.columns WHERE table_name = $1 AND column_name = $2', [
              table,
              column,
            ])
          ).rowCount === 1,
    )
    .then((all) => all.filter((x) => x !== undefined));
  return found!;
}

const byTenant = (outcomes: TenantOutcome[]) => new Map(outcomes.map((o) => [o.tenantId, o]));

async function sluice(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { PATH: process.env.PATH ?? '', NATS_URL: stack.nats.url };
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('fleet rollback', () => {
  it('undoes one run: every tenant back at its own previous version, the failed one and a later run left alone', async () => {
    // Before the run: every tenant at 1, three of them at 2; tenant 8 has a table of its own that
    // makes version 2 fail there.
    expect((await runToEnd({ runId: 'base', target: 1 })).status).toBe('succeeded');
    expect((await runToEnd({ runId: 'pre', target: 2, tenants: { ids: ids(1, 2, 3) } })).status).toBe('succeeded');
    await stack.fleet.eachTenant(async (client, t) => {
      if (t.tenantId === ids(8)[0]) await client.query('CREATE TABLE projects (id int)');
    });

    const forward = await runToEnd({ runId: 'two-versions', target: 3 });
    expect(forward).toMatchObject({ status: 'partial', counts: { total: 8, migrated: 7, failed: 1 } });
    // A later run takes tenant 7 further (version 4 has no down file, which does not matter here).
    expect((await runToEnd({ runId: 'later', target: 4, tenants: { ids: ids(7) } })).status).toBe('succeeded');

    // The dry run lists per tenant what would be undone, and undoes nothing.
    const dryCli = await sluice('rollback', 'two-versions', '--run-id', 'undo-dry', '--dry-run', '--wait');
    expect(dryCli.code).toBe(1); // tenant 7 cannot go back: the dry run says so
    expect(dryCli.stdout).toMatch(/tenant-0001 +pending +would undo 3 \(3 -> 2\)/);
    expect(dryCli.stdout).toMatch(/tenant-0004 +pending +would undo 3, 2 \(3 -> 1\)/);
    expect(dryCli.stdout).toMatch(/tenant-0007 +failed +changed_by_later_run/);
    expect(dryCli.stdout).not.toMatch(/tenant-0008/);
    const dry = await waitForCompleted(stack.nc, 'undo-dry');
    expect(dry).toMatchObject({ dryRun: true, rollbackOf: { runId: 'two-versions', force: false } });
    const planned = byTenant(await listOutcomes(stack.nc, 'undo-dry'));
    for (const t of ids(1, 2, 3)) expect(planned.get(t)).toMatchObject({ status: 'pending', rolledBack: [3] });
    for (const t of ids(4, 5, 6)) expect(planned.get(t)).toMatchObject({ status: 'pending', rolledBack: [3, 2] });
    expect(planned.get(ids(7)[0]!)).toMatchObject({ status: 'failed', error: { code: 'changed_by_later_run' } });
    expect(planned.get(ids(8)[0]!)).toMatchObject({ status: 'upToDate', applied: [] });
    expect(planned.get(ids(8)[0]!)!.rolledBack).toBeUndefined();
    expect((await journals())[ids(4)[0]!]).toEqual([
      [1, 'base'],
      [2, 'two-versions'],
      [3, 'two-versions'],
    ]);

    // The rollback itself, through the CLI, as an operator would.
    // Canaries first, like any run: the first two tenants of the registry go back before the fleet.
    const cli = await sluice('rollback', 'two-versions', '--run-id', 'undo-1', '--canary', '2', '--wait');
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain('rollback  of run two-versions');
    expect(cli.stderr + cli.stdout).toContain('run undo-1 canaries succeeded; fleet promoted');
    expect(cli.stdout).toMatch(/6 rolled back, 0 migrated, 1 up to date, 1 failed/);
    expect(cli.stdout).toMatch(/tenant-0007: \[changed_by_later_run\] .*version 4 by later/);
    const completed = await waitForCompleted(stack.nc, 'undo-1');
    expect(completed).toMatchObject({
      status: 'partial',
      rollbackOf: { runId: 'two-versions', force: false },
      counts: { total: 8, rolledBack: 6, upToDate: 1, failed: 1, migrated: 0 },
    });
    const outcomes = byTenant(await listOutcomes(stack.nc, 'undo-1'));
    for (const t of ids(1, 2, 3))
      expect(outcomes.get(t)).toMatchObject({ status: 'rolledBack', rolledBack: [3], fromVersion: 3, toVersion: 2 });
    for (const t of ids(4, 5, 6))
      expect(outcomes.get(t)).toMatchObject({ status: 'rolledBack', rolledBack: [3, 2], fromVersion: 3, toVersion: 1 });

    const after = await journals();
    for (const t of ids(1, 2, 3))
      expect(after[t]).toEqual([
        [1, 'base'],
        [2, 'pre'],
      ]);
    for (const t of ids(4, 5, 6)) expect(after[t]).toEqual([[1, 'base']]);
    // Changed again by a later run: reported, left alone.
    expect(after[ids(7)[0]!]).toEqual([
      [1, 'base'],
      [2, 'two-versions'],
      [3, 'two-versions'],
      [4, 'later'],
    ]);
    // Failed in the run: nothing of it to undo, and its own table is still there.
    expect(after[ids(8)[0]!]).toEqual([[1, 'base']]);
    expect(await hasColumn(ids(8)[0]!, 'projects', 'id')).toBe(true);
    // The down files ran: the column and the table are gone where they were added.
    expect(await hasColumn(ids(1)[0]!, 'accounts', 'plan')).toBe(false);
    expect(await hasColumn(ids(1)[0]!, 'projects', 'account_id')).toBe(true);
    expect(await hasColumn(ids(4)[0]!, 'projects', 'account_id')).toBe(false);
    expect(await stack.fleet.migrationSessions()).toBe(0);

    // The fleet state follows: a tenant taken back is recorded at the version it went back to.
    const bus = await connectBus({ servers: stack.nats.url, name: 'rollback-test' }, logger);
    try {
      const store = await openFleetStore(bus);
      await expect.poll(async () => (await store.get(ids(4)[0]!))?.run, { timeout: 30_000 }).toBe('undo-1');
      expect(await store.get(ids(4)[0]!)).toMatchObject({ version: 1, status: 'current' });
      expect(await store.get(ids(1)[0]!)).toMatchObject({ version: 2, status: 'current' });
    } finally {
      await bus.close();
    }
  });

  it('a version without a down file fails only the tenants whose way back crosses it', async () => {
    // Tenant 7 is at 4 already and gets only 5; tenants 1-6 get 4 (no down file) and 5.
    const forward = await runToEnd({ runId: 'to-five', target: 5, tenants: { ids: ids(1, 2, 3, 4, 5, 6, 7) } });
    expect(forward).toMatchObject({ status: 'succeeded', counts: { migrated: 7 } });
    const before = await journals();

    const undo = await runToEnd({ runId: 'undo-five', rollback: { runId: 'to-five' } });
    expect(undo).toMatchObject({ status: 'partial', counts: { total: 7, rolledBack: 1, failed: 6 } });
    const outcomes = byTenant(await listOutcomes(stack.nc, 'undo-five'));
    expect(outcomes.get(ids(7)[0]!)).toMatchObject({ status: 'rolledBack', rolledBack: [5], toVersion: 4 });
    for (const t of ids(1, 2, 3, 4, 5, 6)) {
      expect(outcomes.get(t)).toMatchObject({ status: 'failed', error: { code: 'irreversible', versions: [4] } });
      expect(outcomes.get(t)!.error!.message).toMatch(
        /version 4 \(0004_invoices.sql\) has no down file; nothing was undone/,
      );
    }
    const after = await journals();
    for (const t of ids(1, 2, 3, 4, 5, 6)) expect(after[t]).toEqual(before[t]);
    expect(after[ids(7)[0]!]!.map(([v]) => v)).toEqual([1, 2, 3, 4]);
    // Tenant 8 was not in the run: not in its rollback either.
    expect(outcomes.has(ids(8)[0]!)).toBe(false);
  });

  it('refuses a rollback of a run that does not exist, or of a rollback', async () => {
    await stack.publishRequest({ runId: 'undo-nothing', rollback: { runId: 'no-such-run' } });
    await stack.publishRequest({ runId: 'undo-undo', rollback: { runId: 'undo-1' } });
    await expect
      .poll(async () => (await listRejected(stack.nc)).map((r) => [r.runId, r.reasons[0]]), { timeout: 30_000 })
      .toEqual(
        expect.arrayContaining([
          ['undo-nothing', 'rollback.runId: run no-such-run does not exist'],
          ['undo-undo', expect.stringContaining('is itself a rollback (of two-versions)')],
        ]),
      );
  });
});
