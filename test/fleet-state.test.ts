import { writeFile } from 'node:fs/promises';

import { type Bus, connectBus, type FleetStore, openFleetStore } from '@sluice/bus';
import { runCli } from '@sluice/cli';
import type { FleetRecord, FleetSummary } from '@sluice/contracts';
import { createLogger } from '@sluice/telemetry';
import { apiHeaders, listOutcomes, waitForCompleted, withFleetStack } from '@sluice/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const logger = createLogger({ service: 'fleet-state-test', level: 'silent' });

/**
 * The fleet state on real services: records written by the reporter as outcomes arrive (failures,
 * drift), read back through `sluice fleet` and the API; a tenant restored from an old backup that a
 * `trust: "fleet-state"` run skips and a default run catches.
 */
describe('fleet state', () => {
  const stack = withFleetStack(
    { beforeAll, afterAll },
    {
      fleets: [{ count: 6 }],
      // A tenant whose database does not exist: it fails every run.
      extraRows: [
        { tenantId: 'tenant-gone', databaseUrl: 'postgres://postgres@127.0.0.1:5432/sluice_fleet_no_such_db' },
      ],
      services: async (s) => {
        // Tags on every tenant, so the records carry them.
        const rows = [
          ...s.fleet.tenants.map((t, i) => ({
            tenantId: t.tenantId,
            databaseUrl: t.databaseUrl,
            tags: { tier: i % 2 === 0 ? 'gold' : 'free' },
          })),
          { tenantId: 'tenant-gone', databaseUrl: 'postgres://postgres@127.0.0.1:5432/sluice_fleet_no_such_db' },
        ];
        await writeFile(s.registry, JSON.stringify(rows));
        return ['reporter', 'executor', 'planner'];
      },
    },
  );
  let bus: Bus;
  let store: FleetStore;
  let api: string;

  beforeAll(async () => {
    bus = await connectBus({ servers: stack.nats.url, name: 'fleet-state-test' }, logger);
    store = await openFleetStore(bus);
    const ready = await stack.services[0]!.waitForLog((l) => l.msg === 'reporter ready');
    api = `http://127.0.0.1:${String(ready.httpPort)}`;
  });
  afterAll(async () => {
    await bus?.close();
  });

  const tenant = (i: number) => stack.fleet.tenants[i]!;
  const withTenant = async <T>(i: number, fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: tenant(i).databaseUrl });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  };
  /** Every tenant's record, once each of them shows `runId` (the reporter writes them after the outcomes). */
  const recordsAfter = async (runId: string, ids: string[]): Promise<Map<string, FleetRecord>> => {
    await expect
      .poll(async () => (await Promise.all(ids.map((id) => store.get(id)))).every((r) => r?.run === runId), {
        timeout: 30_000,
        interval: 100,
      })
      .toBe(true);
    return new Map((await Promise.all(ids.map((id) => store.get(id)))).map((r) => [r!.tenantId, r!]));
  };
  const allIds = () => [...stack.fleet.tenants.map((t) => t.tenantId), 'tenant-gone'];
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
  const summaryOf = async (): Promise<FleetSummary> => {
    const { code, out } = await sluice('fleet', '--json');
    expect(code).toBe(0);
    return (JSON.parse(out[0]!) as { summary: FleetSummary }).summary;
  };

  it('writes a record per tenant as outcomes arrive: current at the target, a failure with its error, tags and host', async () => {
    await stack.publishRequest({ runId: 'fleet-1', target: 'latest' });
    const completed = await waitForCompleted(stack.nc, 'fleet-1', 90_000);
    expect(completed.counts).toMatchObject({ total: 7, migrated: 6, failed: 1 });
    const records = await recordsAfter('fleet-1', allIds());
    const accepted = (await listOutcomes(stack.nc, 'fleet-1')).length;
    expect(accepted).toBe(7);
    expect(records.get(tenant(0).tenantId)).toMatchObject({
      version: 6,
      status: 'current',
      host: '127.0.0.1:5432',
      tags: { tier: 'gold' },
      digest: expect.stringMatching(/^[0-9a-f]{64}$/) as string,
    });
    expect(records.get(tenant(1).tenantId)?.tags).toEqual({ tier: 'free' });
    expect(records.get('tenant-gone')).toMatchObject({
      status: 'failed',
      version: null,
      error: { code: 'database_error' },
    });
    // The summary is written shortly after the records.
    await expect.poll(async () => (await summaryOf()).total, { timeout: 10_000 }).toBe(7);
    const summary = await summaryOf();
    expect(summary).toMatchObject({
      statuses: { current: 6, failed: 1, behind: 0, dirty: 0, drift: 0 },
      versions: { '6': 6, none: 1 },
      hosts: { '127.0.0.1:5432': { current: 6, failed: 1 } },
    });
    const bytes = JSON.stringify(records.get(tenant(0).tenantId)).length;
    console.log(`fleet record of a current tenant: ${bytes} bytes of JSON`);
    expect(bytes).toBeLessThan(400);
  });

  it('marks drift when a journal changed out of band, and sluice fleet and the API list the tenants that need a look', async () => {
    await withTenant(2, (c) => c.query("UPDATE sluice_migrations SET checksum = 'edited' WHERE version = 2"));
    await stack.publishRequest({ runId: 'fleet-2', target: 'latest' });
    const completed = await waitForCompleted(stack.nc, 'fleet-2', 90_000);
    expect(completed.counts).toMatchObject({ total: 7, upToDate: 5, failed: 2 });
    const records = await recordsAfter('fleet-2', allIds());
    expect(records.get(tenant(2).tenantId)).toMatchObject({
      status: 'drift',
      version: 6,
      error: { code: 'drift' },
    });
    await expect
      .poll(async () => (await summaryOf()).statuses, { timeout: 10_000 })
      .toEqual({ current: 5, behind: 0, failed: 1, dirty: 0, drift: 1 });

    const text = await sluice('fleet');
    expect(text.code).toBe(0);
    expect(text.out.join('\n')).toMatch(/7 tenants/);
    expect(text.out.join('\n')).toMatch(new RegExp(`${tenant(2).tenantId}\\s+drift\\s+6`));
    expect(text.out.join('\n')).toMatch(/tenant-gone\s+failed\s+-/);
    // Two tenants need a look, so a page of one always has a next page.
    const firstPage = await sluice('fleet', '--limit', '1', '--host', '127.0.0.1:5432');
    expect(firstPage.out.at(-1)).toMatch(/^more: sluice fleet --limit 1 --host 127\.0\.0\.1:5432 --cursor \d+$/);

    const listing = await sluice('fleet', '--json', '--status', 'drift', '--tag', 'tier=gold');
    expect((JSON.parse(listing.out[0]!) as { tenants: FleetRecord[] }).tenants.map((t) => t.tenantId)).toEqual([
      tenant(2).tenantId,
    ]);

    const call = async (route: string, headers = apiHeaders()) => {
      const res = await fetch(`${api}${route}`, { headers });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    expect((await call('/fleet', {})).status).toBe(401);
    const overview = await call('/fleet?target=7');
    expect(overview).toMatchObject({ status: 200, body: { target: 7, behindTarget: 7, summary: { total: 7 } } });
    const failing = await call('/fleet/tenants?status=failed,drift&host=127.0.0.1:5432');
    expect((failing.body.tenants as FleetRecord[]).map((t) => t.tenantId).sort()).toEqual(
      [tenant(2).tenantId, 'tenant-gone'].sort(),
    );
    // Current tenants come from the fleet index (no scan of the records), in pages: the cursor
    // names the index pass and where it stopped.
    const current = [...records.values()].filter((r) => r.status === 'current').map((r) => r.tenantId);
    const listedCurrent: string[] = [];
    let indexCursor: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = await call(
        `/fleet/tenants?status=current&host=127.0.0.1:5432&limit=2${indexCursor ? `&cursor=${indexCursor}` : ''}`,
      );
      listedCurrent.push(...(page.body.tenants as FleetRecord[]).map((t) => t.tenantId));
      indexCursor = page.body.nextCursor as string | undefined;
      if (indexCursor === undefined) break;
      expect(indexCursor).toMatch(/^0\.all\.\d+$/);
    }
    expect(listedCurrent.sort()).toEqual(current.sort());
    const belowTarget = await sluice('fleet', '--json', '--status', 'current', '--target', '7');
    expect((JSON.parse(belowTarget.out[0]!) as { tenants: FleetRecord[] }).tenants).toHaveLength(current.length);
    // Pages of one, each starting where the last one stopped, until no cursor comes back (the last
    // page may be empty: a cursor says where the scan stopped, not that another match follows).
    const paged: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = await call(`/fleet/tenants?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      const tenants = page.body.tenants as FleetRecord[];
      expect(tenants.length).toBeLessThanOrEqual(1);
      paged.push(...tenants.map((t) => t.tenantId));
      cursor = page.body.nextCursor as string | undefined;
      if (cursor === undefined) break;
    }
    expect(cursor).toBeUndefined();
    expect(paged.sort()).toEqual([tenant(2).tenantId, 'tenant-gone'].sort());
    expect((await call('/fleet/tenants?status=nope')).status).toBe(400);
    const metrics = await (await fetch(`${api}/metrics`)).text();
    expect(metrics).toMatch(/^sluice_fleet_tenants\{status="drift"[^}]*\} 1$/m);
    expect(metrics).toMatch(/^sluice_fleet_tenants\{status="current"[^}]*\} 5$/m);
  });

  it('a tenant restored from an old backup: a trust run skips it as its record says, a default run catches it', async () => {
    // Restored from a backup taken before any migration: the database is empty again, and its
    // record still says current at 6.
    const restored = tenant(4);
    const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE "${restored.database}" WITH (FORCE)`);
      await admin.query(`CREATE DATABASE "${restored.database}" TEMPLATE template0`);
    } finally {
      await admin.end();
    }
    const journal = () =>
      withTenant(4, async (c) => {
        const { rows } = await c.query<{ n: string }>(
          "SELECT count(*) AS n FROM pg_tables WHERE tablename = 'sluice_migrations'",
        );
        if (rows[0]!.n === '0') return 0;
        return Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM sluice_migrations')).rows[0]!.n);
      });
    expect(await journal()).toBe(0);

    const trusted = await sluice('migrate', '--run-id', 'fleet-trust', '--trust', 'fleet-state', '--wait', '--json');
    const completed = await waitForCompleted(stack.nc, 'fleet-trust', 90_000);
    expect(trusted.code).toBe(1); // drift and the missing database still fail
    // The five current tenants, the restored one among them, taken from the state: no task, no connection.
    expect(completed).toMatchObject({ fromFleetState: 5, counts: { total: 7, upToDate: 5, failed: 2 } });
    const outcomes = await listOutcomes(stack.nc, 'fleet-trust');
    const fromState = outcomes.filter((o) => o.from === 'fleet-state');
    expect(fromState.map((o) => o.tenantId)).toContain(restored.tenantId);
    expect(fromState.every((o) => o.attempts === 0 && o.executorId === undefined)).toBe(true);
    expect(await journal()).toBe(0);
    const status = await sluice('status', 'fleet-trust');
    expect(status.out.join('\n')).toMatch(/trusted\s+5 up to date from the fleet state/);

    // The default run reads every journal: the restored tenant is migrated again.
    await stack.publishRequest({ runId: 'fleet-verified', target: 'latest' });
    const verified = await waitForCompleted(stack.nc, 'fleet-verified', 90_000);
    expect(verified.fromFleetState).toBeUndefined();
    expect(verified.counts).toMatchObject({ total: 7, migrated: 1, upToDate: 4, failed: 2 });
    const caught = (await listOutcomes(stack.nc, 'fleet-verified')).find((o) => o.tenantId === restored.tenantId);
    expect(caught).toMatchObject({ status: 'migrated', applied: [1, 2, 3, 4, 5, 6] });
    expect(await journal()).toBe(6);
    const records = await recordsAfter('fleet-verified', [restored.tenantId]);
    expect(records.get(restored.tenantId)).toMatchObject({ status: 'current', version: 6 });
  });

  it('survives a restart of NATS: the records and the summary are read back as they were', async () => {
    const before = await summaryOf();
    const record = await store.get(tenant(0).tenantId);
    await stack.nats.stop();
    await stack.nats.restart();
    await expect.poll(() => store.get(tenant(0).tenantId).catch(() => undefined), { timeout: 30_000 }).toEqual(record);
    expect(await summaryOf()).toEqual(before);
    // The services go on writing it: one more run lands in the same records.
    await stack.publishRequest({ runId: 'fleet-after-restart', target: 'latest' });
    await waitForCompleted(stack.nc, 'fleet-after-restart', 90_000);
    const records = await recordsAfter('fleet-after-restart', allIds());
    expect(records.get(tenant(0).tenantId)).toMatchObject({ status: 'current', version: 6 });
  });

  it("starts a run's tasks at once, not at the executor's next discovery tick", async () => {
    // The only executor now lists the host consumers every 10 minutes, and its first listing (at
    // its start) finds no work: only the run's own events (accepted, planned) can start this run.
    await stack.services.find((s) => s.name === 'executor')!.stop();
    const executor = await stack.start('executor', { SLUICE_DISCOVERY_INTERVAL: '10m' });
    await executor.waitForLog((l) => l.msg === 'executor ready');
    await stack.publishRequest({ runId: 'fleet-nudged', target: 'latest' });
    const completed = await waitForCompleted(stack.nc, 'fleet-nudged', 60_000);
    expect(completed.counts.total).toBe(7);
    const outcomes = await listOutcomes(stack.nc, 'fleet-nudged');
    expect(outcomes.filter((o) => o.executorId !== undefined && o.attempts > 0)).toHaveLength(7);
  });
});
