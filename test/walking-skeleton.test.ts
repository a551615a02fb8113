import { type RunCompletedEvent } from '@sluice/contracts';
import { collectRunEvents, listRejected, waitForCompleted, withFleetStack } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const TENANTS = 50;
const VERSIONS = [1, 2, 3, 4, 5, 6];

describe('walking skeleton: a request runs end to end over JetStream and real Postgres', () => {
  const stack = withFleetStack({ beforeAll, afterAll }, { fleets: [{ count: TENANTS }] });
  const publishRequest = (payload: unknown) => stack.publishRequest(payload);

  let first: RunCompletedEvent;

  it('migrates every tenant and publishes one completed event', async () => {
    const started = Date.now();
    await publishRequest({ runId: 'e2e-first', target: 'latest' });
    first = await waitForCompleted(stack.nc, 'e2e-first');
    console.log(
      `50-tenant run: ${Date.now() - started} ms from publish to completed (run durationMs ${first.durationMs})`,
    );
    expect(first).toMatchObject({
      runId: 'e2e-first',
      status: 'succeeded',
      target: 'latest',
      targetVersion: 6,
      counts: { total: TENANTS, migrated: TENANTS, upToDate: 0, failed: 0, skipped: 0 },
      failures: [],
    });
    expect(Date.parse(first.finishedAt)).toBeGreaterThanOrEqual(Date.parse(first.startedAt));
  });

  it('records each version exactly once in every journal, and the schema exists', async () => {
    const rows = await stack.fleet.eachTenant(async (client) => {
      const journal = await client.query<{ version: string; n: string; status: string; run_id: string }>(
        'SELECT version::text, count(*) OVER (PARTITION BY version)::text AS n, status, run_id FROM sluice_migrations ORDER BY version',
      );
      const tables = await client.query<{ t: string }>(
        "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
      );
      const index = await client.query("SELECT 1 FROM pg_indexes WHERE indexname = 'invoices_account_status_idx'");
      const plan = await client.query<{ plan_code: string }>(
        "SELECT plan_code FROM accounts WHERE email = 'owner@example.invalid'",
      );
      return {
        journal: journal.rows,
        tables: tables.rows.map((r) => r.t),
        index: index.rowCount,
        plan: plan.rows[0]?.plan_code,
      };
    });
    expect(rows).toHaveLength(TENANTS);
    for (const r of rows) {
      expect(r.journal.map((j) => Number(j.version))).toEqual(VERSIONS);
      expect(r.journal.every((j) => j.n === '1' && j.status === 'applied' && j.run_id === 'e2e-first')).toBe(true);
      expect(r.tables).toEqual(['accounts', 'invoices', 'plans', 'projects', 'sluice_migrations']);
      expect(r.index).toBe(1);
      expect(r.plan).toBe('free');
    }
  });

  it('treats the same runId again as the same run', async () => {
    await publishRequest({ runId: 'e2e-first', target: 'latest' });
    // A later run proves the repeat has been handled (requests are taken in order).
    await publishRequest({ runId: 'e2e-second', target: 'latest' });
    const second = await waitForCompleted(stack.nc, 'e2e-second');
    expect(second.counts).toEqual({
      total: TENANTS,
      migrated: 0,
      upToDate: TENANTS,
      pending: 0,
      failed: 0,
      skipped: 0,
    });
    expect(second.status).toBe('succeeded');
    const events = await collectRunEvents(stack.nc, 'e2e-first', (subject) => subject.endsWith('.completed'));
    const accepted = events.filter((e) => e.subject.endsWith('.accepted'));
    expect(accepted).toHaveLength(1);
    // Nothing new after the first completed event: no second accepted, no second completion.
    const all = await collectAllSubjects('e2e-first');
    expect(all.filter((s) => s.endsWith('.completed'))).toHaveLength(1);
    expect(all.filter((s) => s.endsWith('.accepted'))).toHaveLength(1);
  });

  it('answers an invalid request with a rejected event and keeps running', async () => {
    await publishRequest({ runId: 'bad run id!', target: 'latest' });
    await publishRequest({ runId: 'e2e-unknown-version', target: 999 });
    await expect.poll(async () => (await listRejected(stack.nc)).length, { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
    const rejected = await listRejected(stack.nc);
    const byRunId = rejected.find((r) => r.runId === 'e2e-unknown-version');
    expect(byRunId?.reasons.join(' ')).toMatch(/999/);
    const noRunId = rejected.find((r) => r.runId === undefined);
    expect(noRunId?.reasons.join(' ')).toMatch(/runId/);
    // Still alive: a valid request after the bad ones runs.
    await publishRequest({ runId: 'e2e-after-bad', target: 'latest', dryRun: true });
    const after = await waitForCompleted(stack.nc, 'e2e-after-bad');
    expect(after.counts.upToDate).toBe(TENANTS);
    for (const s of stack.services) expect(s.logs.some((l) => l.level === 'fatal')).toBe(false);
  });

  async function collectAllSubjects(runId: string): Promise<string[]> {
    const { jetstream, DeliverPolicy } = await import('@nats-io/jetstream');
    const js = jetstream(stack.nc);
    const consumer = await js.consumers.get('SLUICE_RUNS', {
      filter_subjects: `sluice.runs.${runId}.>`,
      deliver_policy: DeliverPolicy.All,
    });
    const messages = await consumer.fetch({ max_messages: 1000, expires: 1000 });
    const subjects: string[] = [];
    for await (const m of messages) subjects.push(m.subject);
    return subjects;
  }
});
