import type { FleetIndexPointer, FleetRecord } from '@sluice/contracts';
import {
  type FleetIndexPass,
  type FleetQuery,
  formatFleetIndexCursor,
  matchesFleetQuery,
  parseFleetIndexCursor,
  passesFrom,
  planFleetListing,
  pointedRecordMatches,
  pointerMayMatch,
} from '@sluice/core';

import type { FleetStore } from './fleet-store.js';

/** One page of a fleet listing. */
export interface FleetPage {
  tenants: FleetRecord[];
  /** Pass it back as `cursor` for the next page; absent on the last page. */
  nextCursor?: string;
  /** Index entries read to fill this page. */
  scanned: number;
}

/**
 * One page of the tenants a query shows, holding only the page: memory stays flat whatever the
 * fleet's size. Tenants that need a look (no status asked, no target) are read from the attention
 * index; every other listing from the fleet index, in the passes `planFleetListing` makes, so
 * nats-server hands over only the index keys of the statuses, versions, host and tag asked for.
 * Each listed tenant is read from its record and checked against it. The cursor is a stream
 * position (in the attention index) or a pass and a position in it, so a page never repeats a
 * tenant whose index entry was written before the first page was read.
 */
export async function pageFleet(
  store: FleetStore,
  query: FleetQuery,
  page: { cursor?: string; limit: number },
): Promise<FleetPage> {
  // Only the tenants that need a look (no status, no target) are listed without the summary.
  const indexed = (query.statuses ?? []).length > 0 || query.target !== undefined;
  const plan = planFleetListing(query, indexed ? await store.summary() : undefined);
  return plan.kind === 'attention' ? pageAttention(store, query, page) : pageIndex(store, query, plan.passes, page);
}

async function pageAttention(
  store: FleetStore,
  query: FleetQuery,
  page: { cursor?: string; limit: number },
): Promise<FleetPage> {
  const from = page.cursor !== undefined && /^\d+$/.test(page.cursor) ? Math.max(1, Number(page.cursor)) : 1;
  const copies: FleetRecord[] = [];
  const result = await store.scan(
    from,
    (record) => {
      copies.push(record);
      return copies.length < page.limit;
    },
    { attention: true, query },
  );
  // An index entry is a copy: each listed one is checked against its record (a race between two
  // writers can leave a stale copy), and shown as the record says.
  const tenants = (await Promise.all(copies.map((t) => store.get(t.tenantId)))).filter(
    (r): r is FleetRecord => r !== undefined && matchesFleetQuery(r, query),
  );
  return {
    tenants,
    scanned: result.scanned,
    ...(result.nextSeq !== undefined ? { nextCursor: String(result.nextSeq) } : {}),
  };
}

async function pageIndex(
  store: FleetStore,
  query: FleetQuery,
  passes: FleetIndexPass[],
  page: { cursor?: string; limit: number },
): Promise<FleetPage> {
  const tenants: FleetRecord[] = [];
  let scanned = 0;
  const todo = passesFrom(passes, page.cursor !== undefined ? parseFleetIndexCursor(page.cursor) : undefined);
  for (const [i, { pass, fromSeq }] of todo.entries()) {
    // The pointers that may match, read from their records a page's worth at once (pipelined).
    let candidates: FleetIndexPointer[] = [];
    const check = async (): Promise<void> => {
      const batch = candidates;
      candidates = [];
      const records = await Promise.all(batch.map((p) => store.get(p.tenantId)));
      batch.forEach((pointer, j) => {
        const record = records[j];
        if (pointedRecordMatches(pointer, record, query)) tenants.push(record);
      });
    };
    const onPointer = (pointer: FleetIndexPointer): boolean | Promise<boolean> => {
      if (!pointerMayMatch(pointer, query)) return true;
      candidates.push(pointer);
      if (tenants.length + candidates.length < page.limit) return true;
      return check().then(() => tenants.length < page.limit);
    };
    const result =
      pass.selector === 'attention'
        ? await store.scan(fromSeq, (copy) => onPointer(pointerOf(copy)), { attention: true, query })
        : await store.scanIndex(pass.selector, fromSeq, onPointer);
    await check();
    scanned += result.scanned;
    if (result.nextSeq !== undefined)
      return { tenants, scanned, nextCursor: formatFleetIndexCursor({ pass: pass.key, seq: result.nextSeq }) };
    const next = todo[i + 1];
    if (tenants.length >= page.limit)
      return {
        tenants,
        scanned,
        ...(next ? { nextCursor: formatFleetIndexCursor({ pass: next.pass.key, seq: 1 }) } : {}),
      };
  }
  return { tenants, scanned };
}

/** What an attention index copy says of its tenant, as an index key would. */
function pointerOf(copy: FleetRecord): FleetIndexPointer {
  return {
    tenantId: copy.tenantId,
    status: copy.status,
    version: copy.version,
    ...(copy.host ? { host: copy.host } : {}),
  };
}
