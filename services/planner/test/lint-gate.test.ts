import { MigrateRequestSchema } from '@sluice/contracts';
import { createMigrationSet, type SqlParser } from '@sluice/core';
import { loadSqlParser } from '@sluice/sql-parser';
import { describe, expect, it } from 'vitest';

import { createLintGate } from '../src/lint-gate.js';

const parser = await loadSqlParser();
const set = createMigrationSet(
  [
    { file: '0001_users.sql', sql: 'CREATE TABLE users (id bigint PRIMARY KEY, email text);\n' },
    {
      file: '0002_users_email.sql',
      sql: '-- sluice:lock-timeout 2s\nCREATE INDEX users_email_idx ON users (email);\n',
    },
    { file: '0003_codes.sql', sql: 'CREATE TABLE codes (code char(2) PRIMARY KEY);\n' },
  ],
  parser,
);
const request = (extra: object = {}) => MigrateRequestSchema.parse({ runId: 'r1', target: 'latest', ...extra });

describe('the planner’s lint gate', () => {
  it('rejects a request when the set has lint errors, with each error as a reason and the report', () => {
    const verdict = createLintGate(parser, { sessionLockTimeoutMs: 5_000 }).judge(request(), set);
    expect(verdict.ok).toBe(false);
    if (verdict.ok) return;
    expect(verdict.reasons).toEqual([
      'lint: 0002_users_email.sql:2:1 index-without-concurrently: CREATE INDEX on existing table users without CONCURRENTLY blocks its writes',
    ]);
    expect(verdict.report).toMatchObject({ mode: 'error', errors: 1, warnings: 1, ignored: 0, truncated: false });
    expect(verdict.report.findings.map((f) => f.rule)).toEqual(['index-without-concurrently', 'prefer-text']);
  });

  it('lets a request with lint: "warn" through, with the findings', () => {
    const verdict = createLintGate(parser, { sessionLockTimeoutMs: 5_000 }).judge(request({ lint: 'warn' }), set);
    expect(verdict).toMatchObject({ ok: true, report: { mode: 'warn', errors: 1, warnings: 1 } });
  });

  it('never rejects a dry run, which reports the findings', () => {
    const verdict = createLintGate(parser, { sessionLockTimeoutMs: 5_000 }).judge(request({ dryRun: true }), set);
    expect(verdict).toMatchObject({ ok: true, report: { mode: 'error', errors: 1 } });
  });

  it('says nothing about a clean set', () => {
    const clean = createMigrationSet(
      [{ file: '0001_users.sql', sql: 'CREATE TABLE users (id bigint PRIMARY KEY);' }],
      parser,
    );
    expect(createLintGate(parser, { sessionLockTimeoutMs: 5_000 }).judge(request(), clean)).toEqual({ ok: true });
  });

  it('lints a set once per digest, however many requests come', () => {
    let parses = 0;
    const counting: SqlParser = {
      parse: (sql) => {
        parses += 1;
        return parser.parse(sql);
      },
    };
    const gate = createLintGate(counting, { sessionLockTimeoutMs: 5_000 });
    for (let i = 0; i < 5; i += 1) gate.judge(request({ runId: `r${i}` }), set);
    expect(parses).toBe(set.migrations.length);
  });
});
