import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

import type { MigrationSet } from '@sluice/core';

const run = promisify(execFile);

/** True when `sqitch` (Debian's package, with libdbd-pg-perl) can run here. */
export async function sqitchAvailable(): Promise<boolean> {
  try {
    await run('sqitch', ['--version']);
    return true;
  } catch {
    return false;
  }
}

/** Writes the migration set as a Sqitch project: a plan and one deploy script per change. */
export async function writeSqitchProject(set: MigrationSet, dir: string): Promise<string> {
  await mkdir(path.join(dir, 'deploy'), { recursive: true });
  await mkdir(path.join(dir, 'revert'), { recursive: true });
  await writeFile(path.join(dir, 'sqitch.conf'), '[core]\n\tengine = pg\n\tplan_file = sqitch.plan\n\ttop_dir = .\n');
  const lines = ['%syntax-version=1.0.0', '%project=sluice_bench', ''];
  for (const m of set.migrations) {
    const change = `m${String(m.version).padStart(4, '0')}_${m.name.replace(/[^a-z0-9_]/gi, '_')}`;
    // Sqitch runs each script with psql; transactional files wrap themselves, as Sqitch projects do.
    const sql = m.transactional ? `BEGIN;\n${m.sql}\n;\nCOMMIT;\n` : `${m.sql}\n`;
    await writeFile(path.join(dir, 'deploy', `${change}.sql`), sql);
    await writeFile(path.join(dir, 'revert', `${change}.sql`), '-- not used by the benchmark\n');
    lines.push(`${change} 2026-01-01T00:00:00Z Sluice Bench <bench@example.invalid> # version ${m.version}`);
  }
  await writeFile(path.join(dir, 'sqitch.plan'), `${lines.join('\n')}\n`);
  return dir;
}

/** `sqitch deploy` against one tenant database (its registry lives in the tenant, schema `sqitch`). */
export async function migrateTenantWithSqitch(databaseUrl: string, projectDir: string): Promise<void> {
  const target = `db:${databaseUrl.replace(/^postgres(ql)?:/, 'pg:')}`;
  await run('sqitch', ['deploy', '--target', target], {
    cwd: projectDir,
    env: { ...process.env, SQITCH_FULLNAME: 'Sluice Bench', SQITCH_EMAIL: 'bench@example.invalid', PGUSER: 'postgres' },
    timeout: 120_000,
  });
}
