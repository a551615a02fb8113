import { rm } from 'node:fs/promises';

import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { type Bus, connectBus, openFleetStore } from '@sluice/bus';
import { runCli } from '@sluice/cli';
import type { FleetRecord, FleetSummary, RunCompletedEvent } from '@sluice/contracts';
import { createLogger } from '@sluice/telemetry';
import { listOutcomes, waitForCompleted, withFleetStack } from '@sluice/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const logger = createLogger({ service: 'fleet-audit-test', level: 'silent' });

/**
 * Auditing the fleet state against the journals on real services: `sluice fleet verify` finding an
 * out-of-band change; the JetStream store deleted, `sluice fleet rebuild` reconstructing the state
 * with counts equal to the journals, and `sluice runs recover` completing a run whose events were lost.
 */
describe('fleet audits', () => {
  const stack = withFleetStack(
    { beforeAll, afterAll },
    {
      fleets: [{ count: 6 }],
      extraRows: [
        { tenantId: 'tenant-gone', databaseUrl: 'postgres://postgres@127.0.0.1:5432/sluice_audit_no_such_db' },
      ],
    },
  );
  let bus: Bus;

  beforeAll(async () => {
    bus = await connectBus({ servers: stack.nats.url, name: 'fleet-audit-test' }, logger);
  });
  afterAll(async () => {
    await bus?.close();
  });

  const tenant = (i: number) => stack.fleet.tenants[i]!;
  const sluice = async (...args: string[]): Promise<{ code: number; out: string[]; err: string[] }> => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(args, stack.env, {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      isTTY: false,
      redraw: () => undefined,
    });
    return { code, out, err };
  };
  /** The last JSON line a command printed (the NDJSON before it is the run's events). */
  const lastJson = <T>(lines: string[]): T => JSON.parse(lines[lines.length - 1]!) as T;
  /** Each tenant's highest applied version, read from its journal (null: none). */
  const journalVersions = () =>
    stack.fleet.eachTenant(async (c, t) => {
      const { rows } = await c.query<{ v: string | null }>(
        "SELECT max(version) AS v FROM sluice_migrations WHERE status = 'applied'",
      );
      return [t.tenantId, rows[0]!.v === null ? null : Number(rows[0]!.v)] as const;
    });

  it('verify reads every journal through the executors and reports and corrects an out-of-band change', async () => {
    await stack.publishRequest({ runId: 'audit-1', target: 'latest' });
    await waitForCompleted(stack.nc, 'audit-1', 90_000);
    // By hand, outside Sluice: someone removed the journal rows of versions 5 and 6.
    const client = new pg.Client({ connectionString: tenant(1).databaseUrl });
    await client.connect();
    await client.query('DELETE FROM sluice_migrations WHERE version >= 5');
    await client.end();

    const verify = await sluice('fleet', 'verify', '--run-id', 'verify-1', '--json');
    expect(verify.code).toBe(1);
    const report = lastJson<{ differences: number; tenants: FleetRecord[] }>(verify.out);
    expect(report.differences).toBe(1);
    expect(report.tenants[0]).toMatchObject({
      tenantId: tenant(1).tenantId,
      status: 'behind',
      version: 4,
      by: 'verify',
      was: { status: 'current', version: 6 },
    });
    const completed = await waitForCompleted(stack.nc, 'verify-1', 10_000);
    // A dry run: nothing applied anywhere.
    expect(completed).toMatchObject({ dryRun: true, counts: { total: 7, upToDate: 5, pending: 1, failed: 1 } });
    expect(Object.fromEntries(await journalVersions())[tenant(1).tenantId]).toBe(4);

    // Corrected: the state now says behind, and a second verify finds nothing new.
    const text = await sluice('fleet');
    expect(text.out.join('\n')).toMatch(new RegExp(`${tenant(1).tenantId}\\s+behind\\s+4`));
    const again = await sluice('fleet', 'verify', '--run-id', 'verify-2');
    expect(again.code).toBe(0);
    expect(again.out.join('\n')).toMatch(/every journal read agrees with the fleet state/);
  });

  it('rebuilds the fleet state from the journals after the JetStream store was deleted, and recovers a lost run', async () => {
    // A run that completes, then is lost with the store. Tenant 3 was restored from an empty backup
    // (migrated again from scratch); tenant 1 (its rows 5 and 6 deleted by hand, its schema not)
    // applies 5 again and fails at 6, whose table exists.
    const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await admin.connect();
    await admin.query(`DROP DATABASE "${tenant(3).database}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${tenant(3).database}" TEMPLATE template0`);
    await admin.end();
    await stack.publishRequest({ runId: 'audit-lost', target: 'latest' });
    const original = await waitForCompleted(stack.nc, 'audit-lost', 90_000);
    expect(original.counts).toMatchObject({ migrated: 1, upToDate: 4, failed: 2 });

    // The broker's store is lost: every stream and bucket. The services are started again on the
    // empty server (they create the streams at start).
    const names = stack.services.map((s) => s.name);
    for (const s of stack.services.splice(0).reverse()) await s.stop();
    await stack.nats.stop();
    await rm(stack.nats.storeDir, { recursive: true, force: true });
    await stack.nats.restart();
    for (const name of names) await stack.start(name);
    // The test's own clients reconnect on their own schedule: ask until JetStream answers them.
    const answers = (nc: NatsConnection) =>
      expect
        .poll(
          () =>
            jetstreamManager(nc)
              .then((jsm) => jsm.getAccountInfo())
              .then(
                () => true,
                () => false,
              ),
          {
            timeout: 60_000,
            interval: 250,
          },
        )
        .toBe(true);
    await answers(bus.nc);
    await answers(stack.nc);
    const store = await openFleetStore(bus);
    expect((await store.summary()).total).toBe(0);
    expect(await store.get(tenant(0).tenantId)).toBeUndefined();

    const rebuild = await sluice('fleet', 'rebuild', '--run-id', 'rebuild-1', '--json');
    expect(rebuild.code).toBe(0);
    const rebuilt = lastJson<{ rebuilt: number; summary: FleetSummary }>(rebuild.out);
    expect(rebuilt.rebuilt).toBe(7);
    // Counts equal to the journals: every tenant's version as its journal holds it.
    const truth = await journalVersions();
    const histogram: Record<string, number> = {};
    for (const [, v] of truth)
      histogram[v === null ? 'none' : String(v)] = (histogram[v === null ? 'none' : String(v)] ?? 0) + 1;
    histogram.none = (histogram.none ?? 0) + 1; // tenant-gone: no database, no journal
    expect(rebuilt.summary.versions).toEqual(histogram);
    expect(Object.fromEntries(truth)[tenant(1).tenantId]).toBe(5);
    expect(rebuilt.summary.statuses).toEqual({ current: 5, behind: 1, failed: 1, dirty: 0, drift: 0 });
    for (const [tenantId, version] of truth)
      expect(await store.get(tenantId)).toMatchObject({
        version,
        status: tenantId === tenant(1).tenantId ? 'behind' : 'current',
        by: 'rebuild',
      });
    expect(await store.get('tenant-gone')).toMatchObject({ status: 'failed', error: { code: 'database_error' } });

    // The lost run's completion, from the journal rows that carry its id: tenant 3 (rows 1-6) and
    // tenant 1 (row 5; its failure at 6 rolled back and left no row, so a journal shows it migrated).
    expect(await listOutcomes(stack.nc, 'audit-lost')).toEqual([]);
    const recover = await sluice('runs', 'recover', 'audit-lost', '--json');
    expect(recover.code).toBe(0);
    const recovered = await waitForCompleted(stack.nc, 'audit-lost', 10_000);
    expect(recovered).toMatchObject<Partial<RunCompletedEvent>>({
      status: 'succeeded',
      targetVersion: 6,
      counts: { total: 7, migrated: 2, upToDate: 0, pending: 0, failed: 0, skipped: 5 },
      recovered: { notReached: 4, unreadable: 1 },
    });
    const status = await sluice('status', 'audit-lost');
    expect(status.out.join('\n')).toMatch(/recovered from the journals/);
    // Once per run, as ever: a second recover publishes nothing.
    expect((await sluice('runs', 'recover', 'audit-lost')).code).toBe(5);
  });
});
