import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
/** The built command, as CI runs it: no NATS, no database in its environment. */
const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const REPO_MIGRATIONS = fileURLToPath(new URL('../../../migrations', import.meta.url));

async function sluice(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', NATS_URL: 'nats://127.0.0.1:1' },
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const dirs: string[] = [];
async function migrationsDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-lint-'));
  dirs.push(dir);
  for (const [name, sql] of Object.entries(files)) await writeFile(path.join(dir, name), sql);
  return dir;
}

// Each test starts the command (Node and the parser's WebAssembly): seconds on a loaded machine.
describe('sluice lint', { timeout: 30_000 }, () => {
  let risky: string;
  beforeAll(async () => {
    risky = await migrationsDir({
      '0001_create_users.sql': 'CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n',
      '0002_users_by_email.sql':
        '-- sluice:lock-timeout 2s\n-- Log-ins look users up by e-mail.\nCREATE INDEX users_email_idx ON users (email);\n',
      '0003_nickname.sql': '-- sluice:lock-timeout 2s\nALTER TABLE users ADD COLUMN nickname varchar(40);\n',
    });
  });
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it("passes the repository's migrations (exit 0), showing each ignored finding with its reason", async () => {
    const r = await sluice('lint', REPO_MIGRATIONS);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('6 files: 0 errors, 0 warnings, 5 ignored with a reason');
    expect(r.stdout).toMatch(
      /0004_create_invoices\.sql:4:1 {2}ignored {2}prefer-text .*\n {4}reason: currency holds ISO 4217 codes/,
    );
  });

  it('prints file:line:col, severity, rule and message, and exits 1 on errors', async () => {
    const r = await sluice('lint', risky);
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n')).toEqual([
      `${risky}/0002_users_by_email.sql:3:1  error  index-without-concurrently  CREATE INDEX on existing table users without CONCURRENTLY blocks its writes`,
      `${risky}/0003_nickname.sql:2:1  warning  prefer-text  users.nickname is varchar(40)`,
      '3 files: 1 errors, 1 warnings, 0 ignored with a reason',
      'way back: no version has a down file (no way back below: 1-3)',
      '',
    ]);
  });

  it('--format json gives the counts and the findings', async () => {
    const r = await sluice('lint', risky, '--format', 'json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({
      files: 3,
      errors: 1,
      warnings: 1,
      ignored: 0,
      findings: [
        { rule: 'index-without-concurrently', severity: 'error', file: '0002_users_by_email.sql', line: 3, column: 1 },
        { rule: 'prefer-text', severity: 'warning', file: '0003_nickname.sql', line: 2, column: 1 },
      ],
    });
  });

  it('--format github prints GitHub Actions annotations', async () => {
    const r = await sluice('lint', risky, '--format', 'github');
    expect(r.stdout.trim().split('\n')).toEqual([
      `::error file=${risky}/0002_users_by_email.sql,line=3,col=1,title=sluice lint index-without-concurrently::CREATE INDEX on existing table users without CONCURRENTLY blocks its writes`,
      `::warning file=${risky}/0003_nickname.sql,line=2,col=1,title=sluice lint prefer-text::users.nickname is varchar(40)`,
    ]);
  });

  it('exits 0 when there are only warnings', async () => {
    const dir = await migrationsDir({ '0001_codes.sql': 'CREATE TABLE codes (code char(2) PRIMARY KEY);\n' });
    const r = await sluice('lint', dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('1 files: 0 errors, 1 warnings');
  });

  it('refuses a file that does not parse with the parser’s message, file, line and column', async () => {
    const dir = await migrationsDir({
      '0001_typo.sql': 'CREATE TABLE t (id bigint);\nALTER TABLE t ADD COLUM x int;\n',
    });
    const r = await sluice('lint', dir, '--format', 'github');
    expect(r.code).toBe(1);
    expect(r.stdout.trim()).toBe(
      `::error file=${dir}/0001_typo.sql,line=2,col=27,title=sluice lint syntax-error::syntax error at or near "int"`,
    );
  });

  it('refuses an unknown format with exit 2', async () => {
    const r = await sluice('lint', risky, '--format', 'xml');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--format takes text, json, github');
  });
});
