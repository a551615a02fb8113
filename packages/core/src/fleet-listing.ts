import {
  FLEET_STATUSES,
  type FleetIndexPointer,
  type FleetIndexSelector,
  type FleetRecord,
  type FleetStatus,
  type FleetSummary,
} from '@sluice/contracts';

import { type FleetQuery, matchesFleetQuery } from './fleet-state.js';

/**
 * One read of the fleet index: the keys nats-server picks for it (or `attention`: the attention
 * index, the copies of every tenant not current), and its place in a listing.
 */
export interface FleetIndexPass {
  selector: FleetIndexSelector | 'attention';
  /** Names the pass in a cursor (`<status index>.<version | none | all>`); passes are listed in its order. */
  key: string;
}

/**
 * How a listing reads the fleet: the attention index (the tenants that need a look, with no
 * target), or passes over the fleet index, one per status and version it asks for.
 */
export type FleetListingPlan = { kind: 'attention' } | { kind: 'index'; passes: FleetIndexPass[] };

const ALL_VERSIONS = 'all';
const NEEDS_A_LOOK = FLEET_STATUSES.filter((s) => s !== 'current');

/**
 * The plan of a listing. Each pass fixes the status, and the version when the query has a target,
 * so nats-server hands over only the keys that can match; the host is fixed when asked. A pass
 * without a version reads the index of the query's first tag when it has one (the tag index holds
 * no version); the other filters are tested on the pointer, then on the record. The tenants that
 * need a look below a target are those current below it (a pass a version) and every other one
 * (one pass over the attention index).
 *
 * Each pass costs nats-server a look at every key of the bucket (nats-server 2.9 matches a filter
 * against each subject), so passes `summary` counts no tenant in are left out: a status (on the
 * host asked), a version. With a target, the versions below it are those of the histogram (`none`
 * included). A summary short of a change (a reporter killed before its summary write; a recount
 * puts it right) can hide that change's tenant from a listing until then.
 */
export function planFleetListing(
  query: FleetQuery,
  summary?: Pick<FleetSummary, 'versions' | 'statuses' | 'hosts'>,
): FleetListingPlan {
  const asked =
    query.statuses && query.statuses.length > 0 ? FLEET_STATUSES.filter((s) => query.statuses!.includes(s)) : undefined;
  if (!asked && query.target === undefined) return { kind: 'attention' };
  const host = query.host !== undefined ? { host: query.host } : {};
  const firstTag = Object.entries(query.tags ?? {})[0];
  const tag = firstTag ? { tag: { name: firstTag[0], value: firstTag[1] } } : {};
  const passes: FleetIndexPass[] = [];
  /** Tenants in a status (on the host asked), as the summary counts them; Infinity without one. */
  const counted = (status: FleetStatus): number =>
    !summary
      ? Infinity
      : query.host !== undefined
        ? (summary.hosts[query.host]?.[status] ?? 0)
        : summary.statuses[status];
  const anyVersion = (status: FleetStatus): void => {
    if (counted(status) > 0) passes.push({ selector: { ...tag, ...host, status }, key: passKey(status, ALL_VERSIONS) });
  };
  const below = query.target !== undefined ? versionsBelow(summary?.versions ?? {}, query.target) : [];
  const eachVersionBelow = (status: FleetStatus): void => {
    if (counted(status) > 0)
      for (const version of below)
        passes.push({
          selector: { ...host, status, version },
          key: passKey(status, version === null ? 'none' : String(version)),
        });
  };
  if (asked) {
    for (const status of asked) (query.target === undefined ? anyVersion : eachVersionBelow)(status);
  } else {
    // The tenants that need a look below the target: current below it, and every other one.
    eachVersionBelow('current');
    if (NEEDS_A_LOOK.some((status) => counted(status) > 0))
      passes.push({ selector: 'attention', key: passKey(NEEDS_A_LOOK[0]!, ALL_VERSIONS) });
  }
  return { kind: 'index', passes };
}

function passKey(status: FleetStatus, version: string): string {
  return `${FLEET_STATUSES.indexOf(status)}.${version}`;
}

/** The versions of a histogram below `target`, no version (`null`) first, then ascending. */
function versionsBelow(versions: Record<string, number>, target: number): Array<number | null> {
  const below: Array<number | null> = [];
  for (const [version, count] of Object.entries(versions)) {
    if (count <= 0) continue;
    if (version === 'none') below.push(null);
    else if (/^\d+$/.test(version) && Number(version) < target) below.push(Number(version));
  }
  return below.sort((a, b) => (a ?? -1) - (b ?? -1));
}

/** Where an index listing goes on: the pass (by key) and the stream sequence within it. */
export interface FleetIndexCursor {
  pass: string;
  seq: number;
}

const INDEX_CURSOR = /^([0-4]\.(?:all|none|\d{1,15}))\.(\d{1,15})$/;
const SCAN_CURSOR = /^\d{1,15}$/;

/** The cursor of an index listing's next page (`<pass key>.<seq>`). */
export function formatFleetIndexCursor(cursor: FleetIndexCursor): string {
  return `${cursor.pass}.${cursor.seq}`;
}

/** An index listing's cursor, or undefined for anything else. */
export function parseFleetIndexCursor(cursor: string): FleetIndexCursor | undefined {
  const match = INDEX_CURSOR.exec(cursor);
  return match ? { pass: match[1]!, seq: Math.max(1, Number(match[2])) } : undefined;
}

/** Whether a string is a listing's cursor: a stream sequence (attention index) or an index listing's. */
export function isFleetCursor(cursor: string): boolean {
  return SCAN_CURSOR.test(cursor) || INDEX_CURSOR.test(cursor);
}

/**
 * The passes a page reads, from the cursor on: the cursor's pass from its sequence, the passes after
 * it from the start. A pass the cursor named may be gone (its version left the histogram): the
 * listing goes on with the passes after where it was.
 */
export function passesFrom(
  passes: readonly FleetIndexPass[],
  cursor: FleetIndexCursor | undefined,
): Array<{ pass: FleetIndexPass; fromSeq: number }> {
  if (!cursor) return passes.map((pass) => ({ pass, fromSeq: 1 }));
  return passes
    .filter((pass) => comparePassKeys(pass.key, cursor.pass) >= 0)
    .map((pass) => ({ pass, fromSeq: pass.key === cursor.pass ? cursor.seq : 1 }));
}

function comparePassKeys(a: string, b: string): number {
  const rank = (key: string): [number, number] => {
    const [status, version] = key.split('.') as [string, string];
    return [Number(status), version === ALL_VERSIONS ? -2 : version === 'none' ? -1 : Number(version)];
  };
  const [sa, va] = rank(a);
  const [sb, vb] = rank(b);
  return sa !== sb ? sa - sb : va - vb;
}

/** Whether a pointer can be one the query lists, by what its key says (the record decides). */
export function pointerMayMatch(pointer: FleetIndexPointer, query: FleetQuery): boolean {
  if (query.host !== undefined && pointer.host !== query.host) return false;
  if (pointer.tag && query.tags?.[pointer.tag.name] !== pointer.tag.value) return false;
  if (query.statuses && query.statuses.length > 0 && !query.statuses.includes(pointer.status)) return false;
  return true;
}

/**
 * Whether a listed pointer's record is shown: the pointer must say what the record says (a race
 * between two writers can leave a stale one behind, which is skipped: the record has its own
 * pointer), and the record must match the query.
 */
export function pointedRecordMatches(
  pointer: FleetIndexPointer,
  record: FleetRecord | undefined,
  query: FleetQuery,
): record is FleetRecord {
  if (!record || record.tenantId !== pointer.tenantId) return false;
  if ((record.host || undefined) !== pointer.host || record.status !== pointer.status) return false;
  if (pointer.version !== undefined && record.version !== pointer.version) return false;
  if (pointer.tag && record.tags?.[pointer.tag.name] !== pointer.tag.value) return false;
  return matchesFleetQuery(record, query);
}
