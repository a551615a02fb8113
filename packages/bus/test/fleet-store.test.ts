import type { FleetRecord } from '@sluice/contracts';
import { FleetSummaryDelta } from '@sluice/core';
import { createLogger } from '@sluice/telemetry';
import { type NatsServerHandle, startNatsServer } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Bus, connectBus } from '../src/bus.js';
import { type FleetStore, openFleetStore, pageFleet } from '../src/fleet-store.js';

const logger = createLogger({ service: 'fleet-store-test', level: 'silent' });

const record = (tenantId: string, partial: Partial<FleetRecord> = {}): FleetRecord => ({
  tenantId,
  host: 'db1:5432',
  version: 6,
  digest: 'a'.repeat(64),
  status: 'current',
  run: 'r1',
  at: '2026-11-30T00:00:00.000Z',
  ...partial,
});

describe('the fleet store on a real nats-server', () => {
  let nats: NatsServerHandle;
  let bus: Bus;
  let store: FleetStore;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: 'fleet-store-test' }, logger);
    store = await openFleetStore(bus);
  });
  afterAll(async () => {
    await bus?.close();
    await nats?.dispose();
  });

  it('scans an empty bucket without waiting, and reads a missing tenant as none', async () => {
    expect(await store.scan(1, () => true)).toEqual({ scanned: 0 });
    expect(await store.get('nobody')).toBeUndefined();
    expect((await store.summary()).total).toBe(0);
  });

  it('updates a record compare-and-set: of racing writers that read the same record, one changes it', async () => {
    await store.update('a:b#1', () => record('a:b#1', { version: 5, status: 'behind' }));
    const changes = await Promise.all(
      [1, 2, 3, 4].map(() =>
        store.update('a:b#1', (prev) => (prev?.status === 'behind' ? record('a:b#1') : undefined)),
      ),
    );
    expect(changes.filter((c) => c !== undefined)).toHaveLength(1);
    expect(changes.find((c) => c)?.prev?.status).toBe('behind');
    expect(await store.get('a:b#1')).toEqual(record('a:b#1'));
  });

  it('adds deltas to the summary from racing writers without losing one', async () => {
    await Promise.all(
      [1, 2, 3, 4, 5].map((i) =>
        store.adjustSummary({ delta: new FleetSummaryDelta().change(undefined, record(`s${i}`)) }),
      ),
    );
    const summary = await store.summary();
    expect(summary.total).toBe(5);
    expect(summary.statuses.current).toBe(5);
    expect(summary.hosts['db1:5432']?.current).toBe(5);
  });

  it('scans records in pages, each starting where the last one stopped', async () => {
    for (let i = 0; i < 25; i++) await store.update(`p${i}`, () => record(`p${i}`));
    const seen: string[] = [];
    let from = 1;
    let pages = 0;
    for (;;) {
      let inPage = 0;
      const result = await store.scan(from, (r) => {
        seen.push(r.tenantId);
        return ++inPage < 10;
      });
      pages += 1;
      if (result.nextSeq === undefined) break;
      from = result.nextSeq;
    }
    expect(new Set(seen).size).toBe(26);
    expect(pages).toBe(3);
  });

  it('keeps an attention index of the tenants that are not current, and lists them from it', async () => {
    const fresh = await openFleetStore(bus);
    await fresh.update('x1', () => record('x1', { status: 'failed', version: 5 }));
    await fresh.update('x2', () => record('x2', { status: 'drift' }));
    const ids = async (query = {}) =>
      (await pageFleet(fresh, query, { limit: 100 })).tenants.map((t) => t.tenantId).sort();
    expect(await ids()).toEqual(['x1', 'x2']);
    expect(await ids({ statuses: ['drift'] })).toEqual(['x2']);
    // Back to current: out of the index (purged, no tombstone to read).
    await fresh.update('x1', () => record('x1'));
    expect(await ids()).toEqual(['x2']);
    const scanned = await fresh.scan(1, () => true, { attention: true });
    expect(scanned.scanned).toBe(1);
    // A stale copy (a race left it behind) is checked against the record and not shown.
    await bus.js.publish('$KV.sluice_fleet.a.x1', JSON.stringify(record('x1', { status: 'failed' })));
    expect(await ids()).toEqual(['x2']);
    // A recount rebuilds the index from the records.
    const summary = await fresh.recount();
    expect(summary.statuses.drift).toBe(1);
    expect((await fresh.scan(1, () => true, { attention: true })).scanned).toBe(1);
  });
});
