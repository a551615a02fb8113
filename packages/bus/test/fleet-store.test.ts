import {
  BUCKETS,
  fleetIndexKey,
  type FleetIndexPointer,
  type FleetIndexSelector,
  fleetKey,
  type FleetRecord,
  fleetTagIndexKey,
} from '@sluice/contracts';
import { type FleetQuery, FleetSummaryDelta, matchesFleetQuery } from '@sluice/core';
import { createLogger } from '@sluice/telemetry';
import { type NatsServerHandle, startNatsServer } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Bus, connectBus } from '../src/bus.js';
import { pageFleet } from '../src/fleet-listing.js';
import { type FleetStore, openFleetStore } from '../src/fleet-store.js';

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

/** An update as the reporter's fleet writer makes it: the record (and its indexes), then the summary. */
async function write(store: FleetStore, tenantId: string, next: (prev?: FleetRecord) => FleetRecord | undefined) {
  const change = await store.update(tenantId, next);
  if (change) await store.summary({ delta: new FleetSummaryDelta().change(change.prev, change.next) });
  return change;
}

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
      [1, 2, 3, 4, 5].map((i) => store.summary({ delta: new FleetSummaryDelta().change(undefined, record(`s${i}`)) })),
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
    await write(fresh, 'x1', () => record('x1', { status: 'failed', version: 5 }));
    await write(fresh, 'x2', () => record('x2', { status: 'drift' }));
    const ids = async (query = {}) =>
      (await pageFleet(fresh, query, { limit: 100 })).tenants.map((t) => t.tenantId).sort();
    expect(await ids()).toEqual(['x1', 'x2']);
    expect(await ids({ statuses: ['drift'] })).toEqual(['x2']);
    // Back to current: out of the index (purged, no tombstone to read).
    await write(fresh, 'x1', () => record('x1'));
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

  describe('the fleet index', () => {
    const keysOf = async (selector: FleetIndexSelector): Promise<FleetIndexPointer[]> => {
      const pointers: FleetIndexPointer[] = [];
      await store.scanIndex(selector, 1, (p) => void pointers.push(p));
      return pointers;
    };
    /** Writes to both buckets so far (their streams' last sequences). */
    const lastSeq = async () =>
      (await bus.jsm.streams.info(`KV_${BUCKETS.fleet}`)).state.last_seq +
      (await bus.jsm.streams.info(`KV_${BUCKETS.fleetIndex}`)).state.last_seq;
    const gold = { tag: { name: 'tier', value: 'gold' } };

    it('follows host, status, version and tag changes, and a change that keeps them writes nothing more', async () => {
      const id = 'ix:1#ü';
      const r = record(id, { host: 'ix-a:5432', tags: { tier: 'gold' } });
      await store.update(id, () => r);
      expect(await keysOf({ host: 'ix-a:5432' })).toEqual([
        { tenantId: id, host: 'ix-a:5432', status: 'current', version: 6 },
      ]);
      expect(await keysOf({ ...gold, host: 'ix-a:5432' })).toEqual([
        { tenantId: id, host: 'ix-a:5432', status: 'current', tag: { name: 'tier', value: 'gold' } },
      ]);

      // A re-run that finds the tenant as it was: the record is written, nothing else.
      const before = await lastSeq();
      await store.update(id, (prev) => ({ ...prev!, run: 'r2', at: '2026-11-30T01:00:00.000Z' }));
      expect(await lastSeq()).toBe(before + 1);

      // A new version: the main key moves; the tag key (no version in it) stays as it was.
      await store.update(id, (prev) => ({ ...prev!, version: 7 }));
      expect(await keysOf({ host: 'ix-a:5432' })).toMatchObject([{ tenantId: id, status: 'current', version: 7 }]);
      expect(await keysOf({ host: 'ix-a:5432', version: 6 })).toEqual([]);
      expect(await lastSeq()).toBe(before + 3); // the record, the new key (the old one deleted)

      // Failed, then on another host with other tags and no version.
      await store.update(id, (prev) => ({ ...prev!, status: 'failed' }));
      expect(await keysOf({ host: 'ix-a:5432', status: 'current' })).toEqual([]);
      expect(await keysOf({ ...gold, host: 'ix-a:5432', status: 'failed' })).toHaveLength(1);
      await store.update(id, (prev) => ({
        ...prev!,
        host: 'ix-b:5432',
        version: null,
        tags: { tier: 'free', 'a b': '' },
      }));
      expect(await keysOf({ host: 'ix-a:5432' })).toEqual([]);
      expect(await keysOf({ ...gold, host: 'ix-a:5432' })).toEqual([]);
      expect(await keysOf({ host: 'ix-b:5432', version: null })).toEqual([
        { tenantId: id, host: 'ix-b:5432', status: 'failed', version: null },
      ]);
      expect(await keysOf({ tag: { name: 'a b', value: '' }, host: 'ix-b:5432' })).toEqual([
        { tenantId: id, host: 'ix-b:5432', status: 'failed', tag: { name: 'a b', value: '' } },
      ]);
      expect(await keysOf({ tag: { name: 'tier', value: 'free' }, host: 'ix-b:5432', status: 'failed' })).toHaveLength(
        1,
      );
    });

    it('is rebuilt by a recount, and a listing skips a key the record does not agree with', async () => {
      await store.update('ix-2', () => record('ix-2', { host: 'ix-c:5432', tags: { tier: 'gold' } }));
      await store.update('ix-3', () => record('ix-3', { host: 'ix-c:5432', status: 'behind', version: 5 }));
      await bus.jsm.streams.purge(`KV_${BUCKETS.fleetIndex}`);
      expect(await keysOf({ host: 'ix-c:5432' })).toEqual([]);
      await store.recount();
      expect((await keysOf({ host: 'ix-c:5432' })).map((p) => p.tenantId).sort()).toEqual(['ix-2', 'ix-3']);
      expect((await keysOf({ ...gold, host: 'ix-c:5432' })).map((p) => p.tenantId)).toEqual(['ix-2']);

      // Stale keys a race could leave: ix-3 is behind at 5, not current at 6; nobody has no record.
      const stale = [
        fleetIndexKey({ tenantId: 'ix-3', host: 'ix-c:5432', status: 'current', version: 6 }),
        fleetTagIndexKey({ tenantId: 'ix-3', host: 'ix-c:5432', status: 'current' }, 'tier', 'gold'),
        fleetIndexKey({ tenantId: 'nobody', host: 'ix-c:5432', status: 'current', version: 6 }),
      ];
      for (const key of stale) await bus.js.publish(`$KV.${BUCKETS.fleetIndex}.${key}`, new Uint8Array(0));
      const ids = async (query: FleetQuery) =>
        (await pageFleet(store, query, { limit: 100 })).tenants.map((t) => t.tenantId).sort();
      expect(await ids({ host: 'ix-c:5432', statuses: ['current'] })).toEqual(['ix-2']);
      expect(await ids({ host: 'ix-c:5432', statuses: ['current'], tags: { tier: 'gold' } })).toEqual(['ix-2']);
      expect(await ids({ host: 'ix-c:5432', statuses: ['current', 'behind'] })).toEqual(['ix-2', 'ix-3']);
      expect(await ids({ host: 'ix-c:5432', target: 6 })).toEqual(['ix-3']);
      expect(await ids({ host: 'ix-c:5432', target: 7 })).toEqual(['ix-2', 'ix-3']);
    });
  });

  describe('over more records than one pull batch', () => {
    const COUNT = 9_500;
    const hosts = ['db-1:5432', 'db-7:5432', 'db-17:5432', 'ü-host:5432'];
    const statuses = ['current', 'current', 'current', 'behind', 'failed', 'drift'] as const;
    beforeAll(async () => {
      // Written straight into the bucket, as reporters would have (one key per tenant).
      const writes: Array<Promise<unknown>> = [];
      for (let i = 0; i < COUNT; i++) {
        const tenantId = `bulk-${i}`;
        const status = statuses[i % statuses.length]!;
        const r = record(tenantId, {
          host: hosts[i % hosts.length]!,
          tags: { tier: i % 3 === 0 ? 'gold' : 'free', ...(i % 5 === 0 ? { 'say "hi"': 'ü' } : {}) },
          status,
          version: status === 'behind' || i % 7 === 0 ? 5 : i % 11 === 0 ? null : 6,
          // An error that quotes another host's field: found by the byte test, refused by the full one.
          ...(status === 'failed' ? { error: { code: 'x', message: '"host":"db-7:5432" "tier":"gold"' } } : {}),
        });
        writes.push(bus.js.publish(`$KV.${BUCKETS.fleet}.${fleetKey(tenantId)}`, JSON.stringify(r)));
        if (writes.length >= 500) await Promise.all(writes.splice(0));
      }
      await Promise.all(writes);
      // Written without their index keys: a recount writes them (and the summary's histogram).
      await store.recount();
    });

    const everyRecord = async (): Promise<FleetRecord[]> => {
      const all: FleetRecord[] = [];
      await store.scan(1, (r) => void all.push(r));
      return all;
    };

    it('reads every record once, in write order, and a handler that holds the scan back loses none', async () => {
      const all = await everyRecord();
      expect(all.filter((r) => r.tenantId.startsWith('bulk-')).map((r) => r.tenantId)).toEqual(
        Array.from({ length: COUNT }, (_, i) => `bulk-${i}`),
      );
      let held = 0;
      const seen: string[] = [];
      const result = await store.scan(1, (r) => {
        seen.push(r.tenantId);
        // Every 700th record holds the scan for a moment (a recount writing the index).
        if (seen.length % 700 === 0) return new Promise((resolve) => setTimeout(() => resolve(++held > 0), 5));
      });
      expect(seen).toEqual(all.map((r) => r.tenantId));
      expect(result).toEqual({ scanned: all.length });
    });

    it.each<[string, FleetQuery]>([
      ['a host', { host: 'db-7:5432', statuses: ['current'] }],
      ['a host and a tag', { host: 'db-17:5432', tags: { tier: 'gold' }, statuses: ['current', 'failed'] }],
      ['a tag with quotes and a non-ASCII value', { tags: { 'say "hi"': 'ü' }, statuses: ['current', 'drift'] }],
      ['a non-ASCII host below a target', { host: 'ü-host:5432', target: 6 }],
      ['a host no record has', { host: 'nowhere:5432', statuses: ['current'] }],
      ['a host, current', { host: 'db-1:5432', statuses: ['current'] }],
      ['current tenants of a tag', { tags: { tier: 'gold' }, statuses: ['current'] }],
      ['tenants below a target that need a look', { target: 6 }],
      ['current tenants below a target, by tag', { target: 6, statuses: ['current'], tags: { tier: 'free' } }],
      ['every status of a host', { host: 'db-17:5432', statuses: ['current', 'behind', 'failed', 'dirty', 'drift'] }],
      ['tenants that need a look (the attention index)', { tags: { tier: 'gold' } }],
    ])('lists %s in pages: every match once, and nothing else', async (_label, query) => {
      const expected = (await everyRecord()).filter((r) => matchesFleetQuery(r, query)).map((r) => r.tenantId);
      const listed: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await pageFleet(store, query, { limit: 97, ...(cursor !== undefined ? { cursor } : {}) });
        listed.push(...page.tenants.map((t) => t.tenantId));
        cursor = page.nextCursor;
        pages += 1;
      } while (cursor !== undefined && pages < 1_000);
      expect(new Set(listed).size).toBe(listed.length);
      expect(listed.sort()).toEqual(expected.sort());
      // Full pages, and at most one more that finds the rest (or nothing) after the last full one.
      expect(pages).toBeLessThanOrEqual(Math.floor(expected.length / 97) + 1);
    });
  });
});
