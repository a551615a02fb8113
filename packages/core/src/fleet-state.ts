import {
  FLEET_ERROR_MAX,
  FLEET_STATUSES,
  type FleetRecord,
  type FleetStatus,
  type FleetStatusCounts,
  type FleetSummary,
  isTenantId,
  type OutcomeError,
  type TenantOutcome,
} from '@sluice/contracts';

/** What a fleet record needs to know of the run an outcome belongs to (from its `accepted` event). */
export interface FleetRunContext {
  /** Digest of the run's migration set. */
  digest: string;
  /** The version the run was taking tenants to. */
  targetVersion: number;
  /** An audit run (`verify`, `rebuild`): its records say so, and `verify` keeps what a changed record said. */
  audit?: 'verify' | 'rebuild';
}

/**
 * Error codes that say nothing new about the tenant: a registry row or a requested id that is no
 * tenant, and a target behind what the tenant holds (its journal is fine; the run asked too little).
 */
const NO_NEWS = new Set(['invalid_tenant', 'not_found', 'invalid_target']);

/**
 * The tenant's next fleet record after an outcome, or undefined when the outcome changes nothing:
 * a `skipped` tenant (its journal was not read), one settled from the fleet state itself, a row
 * that is no tenant, or news older than the record (a replayed run). Pure.
 *
 * - `migrated`/`upToDate`: the version the journal holds now; `current` at or past the run's
 *   target, `behind` below it; the run's digest (the journal was checked against that set).
 * - `pending` (dry run): the version it holds, `behind`, the run's digest.
 * - `failed`: `dirty` or `drift` by the error's code, else `failed` (`invalid_target`, a target
 *   behind the tenant, changes nothing). The version stays the known
 *   one, except after a SQL error at version v: every version below v is applied then (files run
 *   in order and stop at the first failure). The digest stays the last one verified.
 */
export function nextFleetRecord(
  prev: FleetRecord | undefined,
  outcome: TenantOutcome,
  run: FleetRunContext,
): FleetRecord | undefined {
  const next = recordAfter(prev, outcome, run);
  if (!next || !run.audit) return next;
  const moved = prev !== undefined && (prev.status !== next.status || prev.version !== next.version);
  return {
    ...next,
    by: run.audit,
    ...(moved && run.audit === 'verify' ? { was: { status: prev.status, version: prev.version } } : {}),
  };
}

/** Whether a record says a `verify` run found the tenant elsewhere than the record before it. */
export function isVerifyDifference(record: FleetRecord, runId: string): boolean {
  return record.run === runId && record.was !== undefined;
}

function recordAfter(
  prev: FleetRecord | undefined,
  outcome: TenantOutcome,
  run: FleetRunContext,
): FleetRecord | undefined {
  if (outcome.status === 'skipped' || outcome.from === 'fleet-state') return undefined;
  if (!isTenantId(outcome.tenantId)) return undefined;
  if (outcome.error && NO_NEWS.has(outcome.error.code)) return undefined;
  if (prev && isOlderNews(prev, outcome)) return undefined;
  const base = {
    tenantId: outcome.tenantId,
    ...hostOf(prev, outcome),
    ...tagsOf(prev, outcome),
    run: outcome.runId,
    at: outcome.finishedAt,
  };
  switch (outcome.status) {
    case 'migrated':
    case 'upToDate': {
      const version = outcome.toVersion ?? prev?.version ?? null;
      const status: FleetStatus = version !== null && version >= run.targetVersion ? 'current' : 'behind';
      return { ...base, version, digest: run.digest, status };
    }
    case 'pending':
      return { ...base, version: outcome.fromVersion ?? prev?.version ?? null, digest: run.digest, status: 'behind' };
    case 'failed': {
      const error: OutcomeError = outcome.error ?? { code: 'internal', message: 'failed', transient: false };
      const status: FleetStatus = error.code === 'dirty' ? 'dirty' : error.code === 'drift' ? 'drift' : 'failed';
      const known = prev?.version ?? null;
      const below = error.code === 'sql_error' && error.version !== undefined ? error.version - 1 : 0;
      const version = below >= 1 ? Math.max(known ?? 0, below) : known;
      return {
        ...base,
        version,
        ...(prev?.digest ? { digest: prev.digest } : {}),
        status,
        error: { code: error.code, message: error.message.slice(0, FLEET_ERROR_MAX) },
      };
    }
  }
}

/** True when the record already holds this outcome, or something that finished later. */
function isOlderNews(prev: FleetRecord, outcome: TenantOutcome): boolean {
  if (prev.run === outcome.runId && prev.at === outcome.finishedAt) return true;
  return Date.parse(prev.at) > Date.parse(outcome.finishedAt);
}

function hostOf(prev: FleetRecord | undefined, outcome: TenantOutcome): { host?: string } {
  const host = outcome.host || prev?.host;
  return host ? { host } : {};
}

function tagsOf(prev: FleetRecord | undefined, outcome: TenantOutcome): { tags?: Record<string, string> } {
  const tags = outcome.tags ?? prev?.tags;
  return tags && Object.keys(tags).length > 0 ? { tags } : {};
}

/**
 * Whether a `trust: "fleet-state"` run may settle a tenant from its record: the record shows the
 * run's target applied, with the run's set digest, status `current`, on the host the registry names
 * now (a tenant moved to another host is read again).
 */
export function trustsFleetRecord(
  record: FleetRecord | undefined,
  run: FleetRunContext & { host: string },
): record is FleetRecord {
  return (
    record !== undefined &&
    record.status === 'current' &&
    record.version === run.targetVersion &&
    record.digest === run.digest &&
    record.host === run.host
  );
}

/** An empty summary. */
export function emptyFleetSummary(at = new Date(0).toISOString()): FleetSummary {
  return { total: 0, statuses: zeroCounts(), versions: {}, hosts: {}, updatedAt: at };
}

function zeroCounts(): FleetStatusCounts {
  return { current: 0, behind: 0, failed: 0, dirty: 0, drift: 0 };
}

/** The histogram key of a version (`none` for no version). */
export function versionKey(version: number | null): string {
  return version === null ? 'none' : String(version);
}

/**
 * A change to the summary: what a record change takes out and puts in. Kept as signed counts so
 * that many changes add up before one compare-and-set of the summary.
 */
export class FleetSummaryDelta {
  total = 0;
  readonly statuses = new Map<FleetStatus, number>();
  readonly versions = new Map<string, number>();
  readonly hosts = new Map<string, Map<FleetStatus, number>>();

  /** Records the change from `prev` to `next` (either may be absent). */
  change(prev: FleetRecord | undefined, next: FleetRecord | undefined): this {
    if (prev) this.count(prev, -1);
    if (next) this.count(next, +1);
    return this;
  }

  /** Adds another delta's counts to this one (a flush that failed goes back into the next). */
  merge(other: FleetSummaryDelta): this {
    this.total += other.total;
    for (const [s, n] of other.statuses) add(this.statuses, s, n);
    for (const [v, n] of other.versions) add(this.versions, v, n);
    for (const [h, byStatus] of other.hosts) {
      let mine = this.hosts.get(h);
      if (!mine) this.hosts.set(h, (mine = new Map<FleetStatus, number>()));
      for (const [s, n] of byStatus) add(mine, s, n);
    }
    return this;
  }

  get empty(): boolean {
    return this.total === 0 && [...this.statuses.values(), ...this.versions.values()].every((n) => n === 0);
  }

  private count(record: FleetRecord, sign: 1 | -1): void {
    this.total += sign;
    add(this.statuses, record.status, sign);
    add(this.versions, versionKey(record.version), sign);
    const host = record.host ?? 'unknown';
    let byStatus = this.hosts.get(host);
    if (!byStatus) this.hosts.set(host, (byStatus = new Map<FleetStatus, number>()));
    add(byStatus, record.status, sign);
  }

  /** The summary with this delta added (a new object; zero entries are dropped). */
  applyTo(summary: FleetSummary, at: string): FleetSummary {
    const statuses = { ...summary.statuses };
    for (const [s, n] of this.statuses) statuses[s] += n;
    const versions = { ...summary.versions };
    for (const [v, n] of this.versions) {
      const next = (versions[v] ?? 0) + n;
      if (next === 0) delete versions[v];
      else versions[v] = next;
    }
    const hosts = { ...summary.hosts };
    for (const [h, byStatus] of this.hosts) {
      const counts = { ...(hosts[h] ?? zeroCounts()) };
      for (const [s, n] of byStatus) counts[s] += n;
      if (FLEET_STATUSES.every((s) => counts[s] === 0)) delete hosts[h];
      else hosts[h] = counts;
    }
    return { total: summary.total + this.total, statuses, versions, hosts, updatedAt: at };
  }
}

function add<K>(map: Map<K, number>, key: K, n: number): void {
  map.set(key, (map.get(key) ?? 0) + n);
}

/**
 * Which tenants a fleet listing shows. Host and tags narrow it. With `statuses`, tenants in those
 * statuses (and below `target` when one is given); without, the tenants that need a look: not
 * `current`, or below `target` when one is given.
 */
export interface FleetQuery {
  host?: string;
  /** `name=value` pairs the tenant's tags must all hold. */
  tags?: Record<string, string>;
  statuses?: readonly FleetStatus[];
  /** The version tenants should hold: those below it (or with none) are behind it. */
  target?: number;
}

/** Whether a record is below a version (no version at all is below every one). */
export function isBelow(record: FleetRecord, target: number): boolean {
  return record.version === null || record.version < target;
}

/** Whether a listing shows a record (see {@link FleetQuery}). */
export function matchesFleetQuery(record: FleetRecord, query: FleetQuery): boolean {
  if (query.host !== undefined && record.host !== query.host) return false;
  if (query.tags) for (const [k, v] of Object.entries(query.tags)) if (record.tags?.[k] !== v) return false;
  const below = query.target !== undefined && isBelow(record, query.target);
  if (query.statuses && query.statuses.length > 0)
    return query.statuses.includes(record.status) && (query.target === undefined || below);
  return record.status !== 'current' || below;
}

/** Tenants below `target` by the summary's version histogram (no version counts as below). */
export function countBelow(summary: FleetSummary, target: number): number {
  let n = 0;
  for (const [version, count] of Object.entries(summary.versions))
    if (version === 'none' || Number(version) < target) n += count;
  return n;
}

/** A summary folded from records one at a time (a recount, or a filtered view). */
export class FleetSummaryBuilder {
  private readonly delta = new FleetSummaryDelta();

  add(record: FleetRecord): void {
    this.delta.change(undefined, record);
  }

  build(at = new Date().toISOString()): FleetSummary {
    return this.delta.applyTo(emptyFleetSummary(at), at);
  }
}
