import { fleetIndexFilter, type FleetRecord } from '@sluice/contracts';
import { describe, expect, it } from 'vitest';

import {
  formatFleetIndexCursor,
  isFleetCursor,
  parseFleetIndexCursor,
  passesFrom,
  planFleetListing,
  pointedRecordMatches,
} from '../src/fleet-listing.js';

const summary = {
  versions: { none: 2, '4': 1, '5': 10, '6': 900, '7': 3 },
  statuses: { current: 900, behind: 10, failed: 5, dirty: 0, drift: 1 },
  hosts: { 'db1:5432': { current: 5, behind: 0, failed: 1, dirty: 0, drift: 0 } },
};
const filters = (plan: ReturnType<typeof planFleetListing>) =>
  plan.kind === 'index'
    ? plan.passes.map((p) => `${p.key} ${p.selector === 'attention' ? 'attention' : fleetIndexFilter(p.selector)}`)
    : plan.kind;

describe('planFleetListing', () => {
  it('reads the attention index for the tenants that need a look, with no target', () => {
    expect(planFleetListing({})).toEqual({ kind: 'attention' });
    expect(planFleetListing({ host: 'db1:5432', tags: { tier: 'gold' } })).toEqual({ kind: 'attention' });
  });

  it('reads one pass a status asked, with the host and the first tag in the filter', () => {
    expect(filters(planFleetListing({ statuses: ['failed', 'current'], host: 'db1:5432' }, summary))).toEqual([
      '0.all i.db1=3a5432.current.*.*',
      '2.all i.db1=3a5432.failed.*.*',
    ]);
    expect(filters(planFleetListing({ statuses: ['current'], tags: { tier: 'gold', region: 'eu' } }))).toEqual([
      '0.all g.tier.gold.*.current.*',
    ]);
  });

  it('leaves out the passes the summary counts no tenant in', () => {
    expect(filters(planFleetListing({ statuses: ['current', 'failed'], host: 'nowhere:5432' }, summary))).toEqual([]);
    expect(filters(planFleetListing({ statuses: ['dirty', 'behind'], host: 'db1:5432' }, summary))).toEqual([]);
    expect(filters(planFleetListing({ statuses: ['dirty', 'behind'] }, summary))).toEqual(['1.all i.*.behind.*.*']);
  });

  it('with a target, reads each version below it that the summary knows, no version first', () => {
    expect(filters(planFleetListing({ statuses: ['current'], target: 6 }, summary))).toEqual([
      '0.none i.*.current.none.*',
      '0.4 i.*.current.4.*',
      '0.5 i.*.current.5.*',
    ]);
    // The tenants that need a look: current below the target, and every other one (the attention index).
    expect(filters(planFleetListing({ target: 5, tags: { tier: 'gold' } }, summary))).toEqual([
      '0.none i.*.current.none.*',
      '0.4 i.*.current.4.*',
      '1.all attention',
    ]);
    expect(
      filters(planFleetListing({ statuses: ['current'], target: 1 }, { ...summary, versions: { '1': 5 } })),
    ).toEqual([]);
  });
});

describe('index cursors', () => {
  it('name a pass and a sequence, and go on after a pass that is gone', () => {
    const cursor = formatFleetIndexCursor({ pass: '0.5', seq: 1234 });
    expect(cursor).toBe('0.5.1234');
    expect(isFleetCursor(cursor) && isFleetCursor('1234') && !isFleetCursor('0.x.1') && !isFleetCursor('')).toBe(true);
    expect(parseFleetIndexCursor(cursor)).toEqual({ pass: '0.5', seq: 1234 });
    expect(parseFleetIndexCursor('1234')).toBeUndefined();
    const plan = planFleetListing({ statuses: ['current', 'failed'], target: 6 }, summary);
    const passes = plan.kind === 'index' ? plan.passes : [];
    expect(passesFrom(passes, { pass: '0.4', seq: 77 }).map((p) => `${p.pass.key}@${p.fromSeq}`)).toEqual([
      '0.4@77',
      '0.5@1',
      '2.none@1',
      '2.4@1',
      '2.5@1',
    ]);
    // Version 3 left the histogram since the cursor was printed: the passes after it.
    expect(passesFrom(passes, { pass: '2.3', seq: 9 }).map((p) => p.pass.key)).toEqual(['2.4', '2.5']);
  });
});

describe('pointedRecordMatches', () => {
  const record: FleetRecord = {
    tenantId: 't1',
    host: 'db1:5432',
    tags: { tier: 'gold' },
    version: 6,
    status: 'current',
    at: '2026-11-30T00:00:00.000Z',
  };
  it('shows a record only through a pointer that says what it says', () => {
    const pointer = { tenantId: 't1', host: 'db1:5432', status: 'current' as const, version: 6 };
    expect(pointedRecordMatches(pointer, record, { statuses: ['current'] })).toBe(true);
    expect(pointedRecordMatches({ ...pointer, version: 5 }, record, { statuses: ['current'] })).toBe(false);
    expect(pointedRecordMatches({ ...pointer, status: 'failed' }, record, { statuses: ['current'] })).toBe(false);
    expect(pointedRecordMatches(pointer, undefined, { statuses: ['current'] })).toBe(false);
    const tagPointer = {
      tenantId: 't1',
      host: 'db1:5432',
      status: 'current' as const,
      tag: { name: 'tier', value: 'free' },
    };
    expect(pointedRecordMatches(tagPointer, record, { statuses: ['current'] })).toBe(false);
    expect(pointedRecordMatches(pointer, record, { statuses: ['current'], tags: { tier: 'free' } })).toBe(false);
  });
});
