import type { TenantSelector } from '@sluice/contracts';
import { parseTenantRow } from '@sluice/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type RegistryRow, RegistryUnavailableError, type TenantRegistry } from '../src/registry.js';

/** Rows enough that small pages make many of them. */
export const FLEET = 6_000;
/** The page (batch) size every subject is opened with: FLEET / PAGE = 60 pages at least. */
export const PAGE = 100;

/** What a store can hold at all: DynamoDB needs a string `tenantId`, unique; only files hold non-objects. */
export interface StoreLimits {
  /** Rows whose `tenantId` is missing or not a string. */
  untypedIds: boolean;
  /** Entries that are not objects (`42`, `null`, an array). */
  nonObjects: boolean;
  /** Two rows with one `tenantId`. */
  duplicateIds: boolean;
}

export interface OpenedRegistry {
  registry: TenantRegistry;
  /** How much the store has served so far (bytes, or entries), for the laziness check. */
  served: () => number;
  close: () => Promise<void>;
}

/** One adapter under the contract. */
export interface ContractSubject {
  name: string;
  holds: StoreLimits;
  /** Stores the rows and opens the adapter over them with pages of {@link PAGE}. */
  open(rows: readonly unknown[]): Promise<OpenedRegistry>;
  /** The adapter pointed at a store that is not there (absent where that cannot happen). */
  unreachable?: () => TenantRegistry;
}

const url = (i: number) => `postgres://app@db-${i % 4}.example:5432/tenant_${String(i).padStart(6, '0')}`;
const id = (i: number) => `t-${String(i).padStart(6, '0')}`;

/** The fleet: FLEET regular rows (every 50th suspended, every 7th without a status), then the odd ones. */
export function contractRows(holds: StoreLimits): unknown[] {
  const rows: unknown[] = Array.from({ length: FLEET }, (_, n) => {
    const i = n + 1;
    const status = i % 50 === 0 ? 'suspended' : i % 7 === 0 ? undefined : 'active';
    return {
      tenantId: id(i),
      databaseUrl: url(i),
      tags: { region: i % 3 === 0 ? 'eu' : 'us', tier: i % 10 === 0 ? 'gold' : 'free' },
      ...(status ? { status } : {}),
    };
  });
  rows.push(
    { tenantId: 'bad-url', databaseUrl: 'not a url', tags: { region: 'eu' } },
    { tenantId: 'bad-scheme', databaseUrl: 'mysql://db-1.example/x', tags: { region: 'eu', tier: 'gold' } },
    { tenantId: 'bad-status', databaseUrl: url(1), status: 'paused' },
    { tenantId: 'bad-tags', databaseUrl: url(2), tags: 'eu' },
    // A query language may match 'eu' inside an array; the selector does not.
    { tenantId: 'array-tag', databaseUrl: url(3), tags: { region: ['eu'] } },
    { tenantId: 't-dotted', databaseUrl: url(4), tags: { 'app.kind': 'worker', region: 'eu' } },
    { tenantId: 't-extra', databaseUrl: url(5), plan: 'gold' },
  );
  if (holds.untypedIds)
    rows.push({ databaseUrl: url(6), tags: { region: 'eu' } }, { tenantId: 7, databaseUrl: url(7) });
  if (holds.duplicateIds) rows.push({ tenantId: id(2), databaseUrl: 'postgres://app@db-9.example:5432/duplicate' });
  if (holds.nonObjects) rows.push(42, null, [id(3)]);
  return rows;
}

const UNREADABLE = '<unreadable>';
const isObject = (v: unknown): v is RegistryRow => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A row as the planner sees it: the four fields it reads, in a fixed order; unreadable entries alike. */
function canon(row: unknown): string {
  if (!isObject(row) || '__invalid' in row) return UNREADABLE;
  const tags = isObject(row.tags)
    ? Object.fromEntries(Object.entries(row.tags).sort(([a], [b]) => a.localeCompare(b)))
    : row.tags;
  return JSON.stringify([row.tenantId, row.databaseUrl, tags, row.status]);
}

/** The selector's meaning, written out independently of the adapters. */
function selects(selector: TenantSelector | undefined, row: unknown): boolean {
  if (!selector) return true;
  if (!isObject(row)) return false;
  if ('ids' in selector) return typeof row.tenantId === 'string' && selector.ids.includes(row.tenantId);
  const tags = row.tags;
  return isObject(tags) && Object.entries(selector.tags).every(([k, v]) => Object.hasOwn(tags, k) && tags[k] === v);
}

const sorted = (values: string[]) => [...values].sort();

async function collect(registry: TenantRegistry, selector?: TenantSelector): Promise<RegistryRow[]> {
  const out: RegistryRow[] = [];
  for await (const row of registry.list(selector)) out.push(row);
  return out;
}

/** Whether the planner turns the row into an `invalid` outcome. */
function plannerRejects(row: RegistryRow): boolean {
  if (typeof row.__invalid === 'string') return true;
  try {
    parseTenantRow(row);
    return false;
  } catch {
    return true;
  }
}

/** The contract every {@link TenantRegistry} adapter keeps, against a real store. */
export function describeRegistryContract(subject: ContractSubject): void {
  describe(`${subject.name}: the tenant registry contract`, () => {
    const rows = contractRows(subject.holds);
    let opened: OpenedRegistry;
    const expected = (selector?: TenantSelector) => sorted(rows.filter((r) => selects(selector, r)).map(canon));

    beforeAll(async () => {
      opened = await subject.open(rows);
    });
    afterAll(async () => {
      await opened?.registry.close();
      await opened?.close();
    });

    it(`yields every row exactly once across many pages of ${PAGE}`, async () => {
      const all = await collect(opened.registry);
      expect(all.length).toBe(rows.length);
      expect(all.length).toBeGreaterThan(FLEET);
      expect(sorted(all.map(canon))).toEqual(expected());
    });

    it('selects by ids: each stored row with one of them, duplicates and suspended ones included', async () => {
      const ids = [
        ...Array.from({ length: 250 }, (_, n) => id(n * 20 + 2)),
        id(2),
        'bad-url',
        'no-such-tenant',
        id(50),
        't-dotted',
      ];
      const selector = { ids };
      const got = await collect(opened.registry, selector);
      expect(sorted(got.map(canon))).toEqual(expected(selector));
      expect(got.filter((r) => r.tenantId === id(2))).toHaveLength(subject.holds.duplicateIds ? 2 : 1);
      expect(got.find((r) => r.tenantId === id(50))?.status).toBe('suspended');
      expect(await collect(opened.registry, { ids: ['no-such-tenant'] })).toEqual([]);
    });

    it.each<[string, Record<string, string>]>([
      ['one tag', { region: 'eu' }],
      ['two tags', { region: 'eu', tier: 'gold' }],
      ['a key with a dot', { 'app.kind': 'worker' }],
      ['no match', { region: 'mars' }],
    ])('selects by tags: %s', async (_, tags) => {
      const got = await collect(opened.registry, { tags });
      expect(sorted(got.map(canon))).toEqual(expected({ tags }));
      expect(got.some((r) => r.tenantId === 'array-tag')).toBe(false);
    });

    it('yields suspended tenants (the planner counts them as skipped)', async () => {
      const suspended = (list: RegistryRow[]) => list.filter((r) => r.status === 'suspended').length;
      expect(suspended(await collect(opened.registry))).toBe(FLEET / 50);
      expect(suspended(await collect(opened.registry, { tags: { region: 'eu', tier: 'gold' } }))).toBe(FLEET / 150);
    });

    it('yields bad rows as they are, for the planner to report', async () => {
      const all = await collect(opened.registry);
      const bad = all.filter(plannerRejects);
      const expectedBad = rows.filter((r) => !isObject(r) || plannerRejects(r));
      expect(sorted(bad.map(canon))).toEqual(sorted(expectedBad.map(canon)));
      expect(bad.map((r) => r.tenantId)).toEqual(
        expect.arrayContaining(['bad-url', 'bad-scheme', 'bad-status', 'bad-tags', 'array-tag']),
      );
      if (subject.holds.untypedIds)
        expect(bad.filter((r) => !('__invalid' in r) && typeof r.tenantId !== 'string')).toHaveLength(2);
      if (subject.holds.nonObjects) expect(bad.filter((r) => typeof r.__invalid === 'string')).toHaveLength(3);
    });

    it('is lazy: the first row arrives when little of the store has been read', async () => {
      const before = opened.served();
      let atFirst: number | undefined;
      let count = 0;
      for await (const _ of opened.registry.list()) {
        atFirst ??= opened.served() - before;
        count += 1;
      }
      const total = opened.served() - before;
      expect(count).toBe(rows.length);
      // A reader that loads everything first would stand at total here.
      expect(atFirst).toBeLessThan(total / 2);
    });

    it('stops early without harm, and lists again from the start', async () => {
      let n = 0;
      for await (const _ of opened.registry.list()) if (++n === 10) break;
      const again = await collect(opened.registry, { tags: { tier: 'gold' } });
      expect(sorted(again.map(canon))).toEqual(expected({ tags: { tier: 'gold' } }));
    });

    const unreachable = subject.unreachable;
    if (unreachable)
      it('throws RegistryUnavailableError when the store cannot be reached', async () => {
        const registry = unreachable();
        try {
          await expect(collect(registry)).rejects.toBeInstanceOf(RegistryUnavailableError);
          await expect(collect(registry)).rejects.toMatchObject({ transient: true, code: 'registry_unavailable' });
        } finally {
          await registry.close();
        }
      });
  });
}
