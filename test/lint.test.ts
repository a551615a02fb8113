import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import {
  REJECTED_SUBJECT,
  type RejectedEvent,
  type RunAcceptedEvent,
  runEventSubject,
  STREAMS,
} from '@sluice/contracts';
import { apiHeaders, collectRunEvents, REPO_ROOT, waitForCompleted, withFleetStack } from '@sluice/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const TENANTS = 3;
const CLI = path.join(REPO_ROOT, 'packages', 'cli', 'dist', 'main.js');
const run = promisify(execFile);

/** A set whose second file builds an index on an existing table without CONCURRENTLY: a lint error. */
const dir = mkdtempSync(path.join(tmpdir(), 'sluice-lint-e2e-'));
writeFileSync(
  path.join(dir, '0001_create_orders.sql'),
  `CREATE TABLE orders (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  status text NOT NULL DEFAULT 'open'
);
INSERT INTO orders (status) VALUES ('open'), ('paid');
`,
);
writeFileSync(
  path.join(dir, '0002_orders_by_status.sql'),
  `-- sluice:lock-timeout 2s
-- The order list filters by status.
CREATE INDEX orders_status_idx ON orders (status);
`,
);

describe('the planner lints the migration set before a run', () => {
  const stack = withFleetStack({ beforeAll, afterAll }, { fleets: [{ count: TENANTS }], migrationsDir: dir });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Waits for the `rejected` event of `runId` (replayed from the stream, then live). */
  async function waitForRejected(runId: string): Promise<RejectedEvent> {
    const js = jetstream(stack.nc);
    const consumer = await js.consumers.get(STREAMS.runs.name, {
      filter_subjects: REJECTED_SUBJECT,
      deliver_policy: DeliverPolicy.All,
    });
    const messages = await consumer.consume();
    try {
      for await (const msg of messages) {
        const event = msg.json<RejectedEvent>();
        if (event.runId === runId) return event;
      }
    } finally {
      await messages.close();
    }
    throw new Error(`no rejected event for ${runId}`);
  }

  async function eventCount(subject: string): Promise<number> {
    const jsm = await jetstream(stack.nc).jetstreamManager();
    const info = await jsm.streams.info(STREAMS.runs.name, { subjects_filter: subject });
    return info.state.subjects?.[subject] ?? 0;
  }

  it('rejects a request whose set has a blocking migration, with the finding in the rejected event', async () => {
    await stack.publishRequest({ runId: 'lint-blocked', target: 'latest' });
    const rejected = await waitForRejected('lint-blocked');
    expect(rejected.reason).toBe('lint');
    expect(rejected.reasons).toEqual([
      'lint: 0002_orders_by_status.sql:3:1 index-without-concurrently: CREATE INDEX on existing table orders without CONCURRENTLY blocks its writes',
    ]);
    expect(rejected.lint).toMatchObject({ mode: 'error', errors: 1, warnings: 0, ignored: 0, truncated: false });
    expect(rejected.lint?.findings).toEqual([
      {
        rule: 'index-without-concurrently',
        severity: 'error',
        file: '0002_orders_by_status.sql',
        line: 3,
        column: 1,
        message: 'CREATE INDEX on existing table orders without CONCURRENTLY blocks its writes',
      },
    ]);
    // Rejected instead of accepted: no run was claimed, no tenant touched.
    expect(await eventCount(runEventSubject('lint-blocked', 'accepted'))).toBe(0);
    for (const tenant of stack.fleet.tenants) {
      const client = new pg.Client({ connectionString: tenant.databaseUrl });
      await client.connect();
      try {
        const { rows } = await client.query<{ t: string | null }>("SELECT to_regclass('public.orders') AS t");
        expect(rows[0]!.t).toBeNull();
      } finally {
        await client.end();
      }
    }
  });

  it('never rejects a dry run for lint: it reports the findings', async () => {
    await stack.publishRequest({ runId: 'lint-dry', target: 'latest', dryRun: true });
    const completed = await waitForCompleted(stack.nc, 'lint-dry');
    expect(completed).toMatchObject({ status: 'succeeded', dryRun: true });
    const events = await collectRunEvents(stack.nc, 'lint-dry', (subject) => subject.endsWith('.accepted'));
    const accepted = events.find((e) => e.subject.endsWith('.accepted'))!.data as RunAcceptedEvent;
    expect(accepted.lint).toMatchObject({ mode: 'error', errors: 1 });
  });

  it('runs the same set when the request says lint: "warn", with the findings in accepted', async () => {
    await stack.publishRequest({ runId: 'lint-warned', target: 'latest', lint: 'warn' });
    const completed = await waitForCompleted(stack.nc, 'lint-warned');
    expect(completed.status).toBe('succeeded');
    expect(completed.counts.migrated).toBe(TENANTS);
    const events = await collectRunEvents(stack.nc, 'lint-warned', (subject) => subject.endsWith('.accepted'));
    const accepted = events.find((e) => e.subject.endsWith('.accepted'))!.data as RunAcceptedEvent;
    expect(accepted.lint).toMatchObject({
      mode: 'warn',
      errors: 1,
      findings: [{ rule: 'index-without-concurrently', file: '0002_orders_by_status.sql', line: 3 }],
    });
    // The run's report shows them: sluice status, and the reporter's GET /runs/:id.
    const { stdout } = await run(process.execPath, [CLI, 'status', 'lint-warned'], { env: stack.env });
    expect(stdout).toContain('  lint      1 errors, 0 warnings, 0 ignored (lint: warn)');
    expect(stdout).toContain(
      '    0002_orders_by_status.sql:3:1 error index-without-concurrently: CREATE INDEX on existing table orders',
    );
    const reporter = stack.services.find((s) => s.name === 'reporter')!;
    const port = (await reporter.waitForLog((l) => l.msg === 'reporter ready')).httpPort as number;
    const view = (await (
      await fetch(`http://127.0.0.1:${port}/runs/lint-warned`, { headers: apiHeaders() })
    ).json()) as { lint?: unknown };
    expect(view.lint).toMatchObject({ mode: 'warn', errors: 1 });
  });
});
