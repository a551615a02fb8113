import { fleetKey, type FleetRecord, parseFleetKey, type TenantOutcome, tenantOutcome } from '@sluice/contracts';
import { describe, expect, it } from 'vitest';

import {
  countBelow,
  emptyFleetSummary,
  FleetSummaryBuilder,
  FleetSummaryDelta,
  isVerifyDifference,
  matchesFleetQuery,
  nextFleetRecord,
  trustsFleetRecord,
} from '../src/fleet-state.js';

const DIGEST = 'a'.repeat(64);
const OTHER = 'b'.repeat(64);
const run = { digest: DIGEST, targetVersion: 6 };

function outcome(partial: Partial<TenantOutcome> & Pick<TenantOutcome, 'status'>): TenantOutcome {
  const { status, ...rest } = partial;
  return {
    ...tenantOutcome(
      { runId: 'r1', tenantId: 't1', host: 'db1:5432', attempts: 1, finishedAt: '2026-11-30T01:00:00.000Z' },
      { status },
    ),
    ...rest,
  };
}

const record = (partial: Partial<FleetRecord> = {}): FleetRecord => ({
  tenantId: 't1',
  host: 'db1:5432',
  version: 6,
  digest: DIGEST,
  status: 'current',
  run: 'r0',
  at: '2026-11-30T00:00:00.000Z',
  ...partial,
});

describe('nextFleetRecord', () => {
  it('marks a tenant that reached the target current, with the run and its digest', () => {
    const next = nextFleetRecord(undefined, outcome({ status: 'migrated', fromVersion: 2, toVersion: 6 }), run);
    expect(next).toEqual({
      tenantId: 't1',
      host: 'db1:5432',
      version: 6,
      digest: DIGEST,
      status: 'current',
      run: 'r1',
      at: '2026-11-30T01:00:00.000Z',
    });
  });

  it('marks a dry run with pending versions behind, at the version it holds', () => {
    const next = nextFleetRecord(record(), outcome({ status: 'pending', fromVersion: 3, toVersion: 3 }), run);
    expect(next).toMatchObject({ version: 3, status: 'behind', digest: DIGEST });
  });

  it('marks a run to an older target behind', () => {
    const next = nextFleetRecord(undefined, outcome({ status: 'migrated', toVersion: 4 }), run);
    expect(next?.status).toBe('behind');
  });

  it('keeps the known version and digest on a failure, and says why', () => {
    const next = nextFleetRecord(
      record({ version: 5, digest: OTHER }),
      outcome({ status: 'failed', error: { code: 'host_unavailable', message: 'x'.repeat(500), transient: true } }),
      run,
    );
    expect(next).toMatchObject({ version: 5, digest: OTHER, status: 'failed', error: { code: 'host_unavailable' } });
    expect(next?.error?.message).toHaveLength(200);
  });

  it('knows every version below a failed SQL file is applied', () => {
    const failed = (version: number) =>
      outcome({ status: 'failed', error: { code: 'sql_error', message: 'boom', transient: false, version } });
    expect(nextFleetRecord(record({ version: 2 }), failed(5), run)?.version).toBe(4);
    expect(nextFleetRecord(undefined, failed(1), run)?.version).toBeNull();
  });

  it('names dirty and drifted tenants', () => {
    const failed = (code: string) => outcome({ status: 'failed', error: { code, message: code, transient: false } });
    expect(nextFleetRecord(record(), failed('dirty'), run)?.status).toBe('dirty');
    expect(nextFleetRecord(record(), failed('drift'), run)?.status).toBe('drift');
  });

  it('clears the error once the tenant succeeds again', () => {
    const prev = record({ status: 'failed', error: { code: 'sql_error', message: 'boom' } });
    expect(nextFleetRecord(prev, outcome({ status: 'upToDate', toVersion: 6 }), run)?.error).toBeUndefined();
  });

  it('changes nothing for skipped tenants, trusted outcomes, rows that are no tenant, and older news', () => {
    expect(nextFleetRecord(record(), outcome({ status: 'skipped' }), run)).toBeUndefined();
    expect(nextFleetRecord(record(), outcome({ status: 'upToDate', from: 'fleet-state' }), run)).toBeUndefined();
    const invalid = outcome({ status: 'failed', error: { code: 'invalid_tenant', message: 'x', transient: false } });
    expect(nextFleetRecord(undefined, { ...invalid, tenantId: 't1#3' }, run)).toBeUndefined();
    const older = outcome({ status: 'failed', error: { code: 'invalid_target', message: 'x', transient: false } });
    expect(nextFleetRecord(record(), older, run)).toBeUndefined();
    const late = record({ at: '2026-11-30T02:00:00.000Z' });
    expect(nextFleetRecord(late, outcome({ status: 'migrated', toVersion: 6 }), run)).toBeUndefined();
    const same = record({ run: 'r1', at: '2026-11-30T01:00:00.000Z' });
    expect(nextFleetRecord(same, outcome({ status: 'migrated', toVersion: 6 }), run)).toBeUndefined();
  });

  it('keeps host and tags the outcome does not carry', () => {
    const prev = record({ tags: { tier: 'gold' } });
    const next = nextFleetRecord(prev, { ...outcome({ status: 'upToDate', toVersion: 6 }), host: undefined }, run);
    expect(next).toMatchObject({ host: 'db1:5432', tags: { tier: 'gold' } });
    const retagged = nextFleetRecord(prev, outcome({ status: 'upToDate', toVersion: 6, tags: { tier: 'free' } }), run);
    expect(retagged?.tags).toEqual({ tier: 'free' });
  });
});

describe('audit runs', () => {
  it('verify keeps what a record said when the journal says otherwise, and marks every record it writes', () => {
    const moved = nextFleetRecord(record(), outcome({ status: 'pending', fromVersion: 3, toVersion: 3 }), {
      ...run,
      audit: 'verify',
    });
    expect(moved).toMatchObject({ status: 'behind', version: 3, by: 'verify', was: { status: 'current', version: 6 } });
    expect(isVerifyDifference(moved!, 'r1')).toBe(true);
    const same = nextFleetRecord(record(), outcome({ status: 'upToDate', toVersion: 6 }), { ...run, audit: 'verify' });
    expect(same).toMatchObject({ status: 'current', by: 'verify' });
    expect(same?.was).toBeUndefined();
  });

  it('rebuild writes records afresh, with no difference to report', () => {
    const fresh = nextFleetRecord(undefined, outcome({ status: 'upToDate', toVersion: 6 }), {
      ...run,
      audit: 'rebuild',
    });
    expect(fresh).toMatchObject({ status: 'current', version: 6, by: 'rebuild' });
    expect(fresh?.was).toBeUndefined();
  });
});

describe('trustsFleetRecord', () => {
  const ask = { ...run, host: 'db1:5432' };
  it('trusts only a current record at the target, with the same digest, on the same host', () => {
    expect(trustsFleetRecord(record(), ask)).toBe(true);
    expect(trustsFleetRecord(undefined, ask)).toBe(false);
    expect(trustsFleetRecord(record({ status: 'behind' }), ask)).toBe(false);
    expect(trustsFleetRecord(record({ version: 5 }), ask)).toBe(false);
    expect(trustsFleetRecord(record({ digest: OTHER }), ask)).toBe(false);
    expect(trustsFleetRecord(record(), { ...ask, host: 'db2:5432' })).toBe(false);
  });
});

describe('FleetSummaryDelta', () => {
  it('moves a tenant between statuses, versions and hosts', () => {
    const before = new FleetSummaryDelta()
      .change(undefined, record())
      .change(undefined, record({ tenantId: 't2', version: 3, status: 'failed' }))
      .applyTo(emptyFleetSummary(), 'now');
    expect(before).toMatchObject({ total: 2, statuses: { current: 1, failed: 1 }, versions: { '6': 1, '3': 1 } });
    const after = new FleetSummaryDelta()
      .change(record({ tenantId: 't2', version: 3, status: 'failed' }), record({ tenantId: 't2' }))
      .applyTo(before, 'later');
    expect(after).toEqual({
      total: 2,
      statuses: { current: 2, behind: 0, failed: 0, dirty: 0, drift: 0 },
      versions: { '6': 2 },
      hosts: { 'db1:5432': { current: 2, behind: 0, failed: 0, dirty: 0, drift: 0 } },
      updatedAt: 'later',
    });
  });

  it('adds up to the same summary as a recount', () => {
    const records = [
      record(),
      record({ tenantId: 't2', version: null, status: 'failed', host: 'db2:5432' }),
      record({ tenantId: 't3', version: 2, status: 'behind' }),
    ];
    const builder = new FleetSummaryBuilder();
    for (const r of records) builder.add(r);
    const delta = new FleetSummaryDelta();
    for (const r of records) delta.change(undefined, r);
    expect(delta.applyTo(emptyFleetSummary(), 'x')).toEqual(builder.build('x'));
    expect(builder.build('x').versions).toEqual({ '6': 1, none: 1, '2': 1 });
  });
});

describe('matchesFleetQuery', () => {
  const r = record({ tags: { tier: 'gold', region: 'eu' }, version: 4, status: 'behind' });
  it('narrows by host and tags', () => {
    expect(matchesFleetQuery(r, { host: 'db1:5432', tags: { tier: 'gold' } })).toBe(true);
    expect(matchesFleetQuery(r, { host: 'db2:5432' })).toBe(false);
    expect(matchesFleetQuery(r, { tags: { tier: 'free' } })).toBe(false);
  });

  it('shows by default what needs a look: not current, or below the target', () => {
    expect(matchesFleetQuery(r, {})).toBe(true);
    expect(matchesFleetQuery(record(), {})).toBe(false);
    expect(matchesFleetQuery(record(), { target: 7 })).toBe(true);
    expect(matchesFleetQuery(record({ version: null, status: 'failed' }), { target: 1 })).toBe(true);
  });

  it('shows the statuses asked for, below the target when one is given', () => {
    expect(matchesFleetQuery(r, { statuses: ['behind'] })).toBe(true);
    expect(matchesFleetQuery(r, { statuses: ['failed', 'dirty'] })).toBe(false);
    expect(matchesFleetQuery(record(), { statuses: ['current'] })).toBe(true);
    expect(matchesFleetQuery(record(), { statuses: ['current'], target: 6 })).toBe(false);
    expect(matchesFleetQuery(r, { statuses: ['behind'], target: 5 })).toBe(true);
  });
});

describe('countBelow', () => {
  it('sums the histogram below a version, counting tenants without one', () => {
    const summary = { ...emptyFleetSummary(), versions: { none: 2, '3': 5, '6': 10 } };
    expect(countBelow(summary, 6)).toBe(7);
    expect(countBelow(summary, 3)).toBe(2);
  });
});

describe('fleetKey', () => {
  it('escapes what a KV key cannot hold, reversibly', () => {
    for (const id of ['acme', 'acme-1_x', 'a.b:c#d@e=f', 'ü/ß']) {
      const key = fleetKey(id);
      expect(key).toMatch(/^t\.[-\w=]+$/);
      expect(parseFleetKey(key)).toBe(id);
    }
    expect(parseFleetKey('summary')).toBeUndefined();
  });
});
