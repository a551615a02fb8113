import { type FleetPage, type FleetStore, pageFleet } from '@sluice/bus';
import { FLEET_STATUSES, type FleetStatus, type FleetSummary } from '@sluice/contracts';
import { countBelow, type FleetQuery, isFleetCursor } from '@sluice/core';

/** Most tenants on one page of `GET /fleet/tenants`. */
export const MAX_FLEET_PAGE = 1_000;
const DEFAULT_FLEET_PAGE = 100;

/**
 * The query of `GET /fleet` and `GET /fleet/tenants` from its parameters — `host`, `tag=k=v`
 * (repeatable), `status=s[,s]`, `target=V` — or the problem with them.
 */
export function parseFleetQuery(params: URLSearchParams): FleetQuery | { problem: string } {
  const query: FleetQuery = {};
  const host = params.get('host');
  if (host !== null) query.host = host;
  const tags = params.getAll('tag');
  if (tags.length > 0) {
    const pairs: Array<[string, string]> = [];
    for (const t of tags) {
      const eq = t.indexOf('=');
      if (eq <= 0) return { problem: `tag takes name=value, got "${t.slice(0, 100)}"` };
      pairs.push([t.slice(0, eq), t.slice(eq + 1)]);
    }
    query.tags = Object.fromEntries(pairs);
  }
  const status = params.get('status');
  if (status !== null) {
    const statuses = status.split(',').filter(Boolean);
    const unknown = statuses.find((s) => !(FLEET_STATUSES as readonly string[]).includes(s));
    if (unknown !== undefined || statuses.length === 0)
      return { problem: `status takes one or more of ${FLEET_STATUSES.join(', ')} (comma-separated)` };
    query.statuses = statuses as FleetStatus[];
  }
  const target = params.get('target');
  if (target !== null) {
    if (!/^\d{1,15}$/.test(target)) return { problem: 'target must be a version number' };
    query.target = Number(target);
  }
  return query;
}

/** `GET /fleet`: the maintained summary, and with `target` how many tenants are below it. */
export async function fleetOverview(
  store: FleetStore,
  query: FleetQuery,
): Promise<{ summary: FleetSummary; target?: number; behindTarget?: number }> {
  const summary = await store.summary();
  return query.target === undefined
    ? { summary }
    : { summary, target: query.target, behindTarget: countBelow(summary, query.target) };
}

/** `GET /fleet/tenants`: one page of the tenants the query shows, and the cursor of the next. */
export function fleetTenants(
  store: FleetStore,
  query: FleetQuery,
  params: URLSearchParams,
): Promise<FleetPage> | { problem: string } {
  const limitParam = params.get('limit');
  if (
    limitParam !== null &&
    (!/^\d+$/.test(limitParam) || Number(limitParam) < 1 || Number(limitParam) > MAX_FLEET_PAGE)
  )
    return { problem: `limit must be a whole number from 1 to ${MAX_FLEET_PAGE}` };
  const cursor = params.get('cursor');
  if (cursor !== null && !isFleetCursor(cursor)) return { problem: 'cursor must be the nextCursor of a page' };
  return pageFleet(store, query, {
    limit: limitParam === null ? DEFAULT_FLEET_PAGE : Number(limitParam),
    ...(cursor !== null ? { cursor } : {}),
  });
}
