import { z } from 'zod';

import { RunIdSchema, VersionSchema } from './request.js';

/**
 * Where a tenant stands, as its last journal read told:
 * - `current`: it holds the target of the last run that read its journal;
 * - `behind`: a dry run (or a run to an older target) found versions still to apply;
 * - `failed`: its last run failed (SQL error, unreachable host, …);
 * - `dirty`: a `no-transaction` file failed midway (needs `sluice repair`);
 * - `drift`: its journal and the migration files disagree.
 */
export const FLEET_STATUSES = ['current', 'behind', 'failed', 'dirty', 'drift'] as const;
export const FleetStatusSchema = z.enum(FLEET_STATUSES);
export type FleetStatus = z.infer<typeof FleetStatusSchema>;

/** Longest error message kept in a fleet record (the run's outcome has the whole one). */
export const FLEET_ERROR_MAX = 200;

/**
 * One tenant's fleet state, the value of its key in the `sluice_fleet` bucket. Kept small (one per
 * tenant, a million of them): empty fields are left out.
 */
export const FleetRecordSchema = z.object({
  tenantId: z.string().min(1).max(200),
  /** `host:port` of its database. */
  host: z.string().optional(),
  /** Its registry tags, as the last task carried them. */
  tags: z.record(z.string(), z.string()).optional(),
  /** Highest version applied (null: none, or not known yet). */
  version: VersionSchema.nullable(),
  /** Digest of the migration set its journal was last found to agree with. */
  digest: z.string().optional(),
  status: FleetStatusSchema,
  /** The last run that read its journal. */
  run: RunIdSchema.optional(),
  /** What the last failure was (code and the start of its message). */
  error: z.object({ code: z.string(), message: z.string().max(FLEET_ERROR_MAX) }).optional(),
  /** When that journal read finished (the outcome's `finishedAt`): newer news wins. */
  at: z.string(),
  /** Who wrote it: a run's outcome (absent), or an audit run, `verify` or `rebuild`. */
  by: z.enum(['verify', 'rebuild']).optional(),
  /** Set by a `verify` run that found the tenant elsewhere than its record said: what the record said. */
  was: z.object({ status: FleetStatusSchema, version: VersionSchema.nullable() }).optional(),
});
export type FleetRecord = z.infer<typeof FleetRecordSchema>;

const CountsByStatusSchema = z.object({
  current: z.number().int(),
  behind: z.number().int(),
  failed: z.number().int(),
  dirty: z.number().int(),
  drift: z.number().int(),
});
export type FleetStatusCounts = z.infer<typeof CountsByStatusSchema>;

/**
 * The fleet at a glance, maintained as records change (the `summary` key of the `sluice_fleet`
 * bucket): tenants by status, by applied version (`none` for no version), and by host.
 */
export const FleetSummarySchema = z.object({
  total: z.number().int(),
  statuses: CountsByStatusSchema,
  /** Version (as a string, `none` for no version) → tenants. */
  versions: z.record(z.string(), z.number().int()),
  /** Host → tenants by status. */
  hosts: z.record(z.string(), CountsByStatusSchema),
  updatedAt: z.string(),
});
export type FleetSummary = z.infer<typeof FleetSummarySchema>;

/** The key of the fleet summary in the `sluice_fleet` bucket. */
export const FLEET_SUMMARY_KEY = 'summary';
const FLEET_TENANT_PREFIX = 't.';

// A KV key holds only `-/_=.` and word characters. Tenant ids may hold more (`#`, `:`, `@`), so
// anything else is escaped as `=xx` (hex bytes); `=` itself is escaped, so the mapping reverses.
const SAFE_KEY_CHAR = /[A-Za-z0-9_-]/;

function escapeKey(tenantId: string): string {
  let out = '';
  for (const ch of tenantId) {
    if (SAFE_KEY_CHAR.test(ch)) out += ch;
    else for (const byte of new TextEncoder().encode(ch)) out += `=${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** The key of a tenant's record in the `sluice_fleet` bucket (`t.<escaped tenantId>`). */
export function fleetKey(tenantId: string): string {
  return `${FLEET_TENANT_PREFIX}${escapeKey(tenantId)}`;
}

const FLEET_ATTENTION_PREFIX = 'a.';

/**
 * The key of a tenant's entry in the attention index (`a.<escaped tenantId>`): a copy of the
 * record of every tenant that is not `current`, so the tenants that need a look are listed
 * without scanning a fleet of healthy ones.
 */
export function fleetAttentionKey(tenantId: string): string {
  return `${FLEET_ATTENTION_PREFIX}${escapeKey(tenantId)}`;
}

/** Every attention index key of the bucket. */
export const ALL_FLEET_ATTENTION_KEYS = `${FLEET_ATTENTION_PREFIX}>`;

/** The tenantId of a fleet key, or undefined for another key. */
export function parseFleetKey(key: string): string | undefined {
  if (!key.startsWith(FLEET_TENANT_PREFIX) || key.length === FLEET_TENANT_PREFIX.length) return undefined;
  return unescapeKey(key.slice(FLEET_TENANT_PREFIX.length));
}

function unescapeKey(token: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '=') {
      bytes.push(Number.parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(token.charCodeAt(i));
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** Every tenant key of the bucket (a KV watch or stream filter). */
export const ALL_FLEET_KEYS = `${FLEET_TENANT_PREFIX}>`;

// The fleet index: pointer keys (empty values) whose tokens are what a listing filters on, so
// nats-server picks the matching ones by subject and a listing reads only those:
//   i.<host>.<status>.<version>.<tenantId>            one per tenant;
//   g.<tag name>.<tag value>.<host>.<status>.<tenantId>  one per tag of the tenant.
// A tag key leaves the version out: a migration changes a tenant's version, and its tag keys stay.
const FLEET_INDEX_PREFIX = 'i';
const FLEET_TAG_INDEX_PREFIX = 'g';
/** The token of a value that may be empty or absent: a lone `=`, which escaping never writes. */
const EMPTY_TOKEN = '=';
const NO_VERSION_TOKEN = 'none';

const tokenOf = (value: string | undefined): string => (value ? escapeKey(value) : EMPTY_TOKEN);
const valueOf = (token: string): string => (token === EMPTY_TOKEN ? '' : unescapeKey(token));
const versionToken = (version: number | null): string => (version === null ? NO_VERSION_TOKEN : String(version));

/** What the fleet index keys a tenant by (a record holds all of it). */
export type FleetIndexed = Pick<FleetRecord, 'tenantId' | 'host' | 'status' | 'version'>;

/** A tenant's key in the fleet index (`i.<host>.<status>.<version>.<tenantId>`; `none` for no version). */
export function fleetIndexKey(record: FleetIndexed): string {
  return [
    FLEET_INDEX_PREFIX,
    tokenOf(record.host),
    record.status,
    versionToken(record.version),
    escapeKey(record.tenantId),
  ].join('.');
}

/** A tenant's key in the index of one of its tags (`g.<name>.<value>.<host>.<status>.<tenantId>`). */
export function fleetTagIndexKey(record: Omit<FleetIndexed, 'version'>, name: string, value: string): string {
  return [
    FLEET_TAG_INDEX_PREFIX,
    tokenOf(name),
    tokenOf(value),
    tokenOf(record.host),
    record.status,
    escapeKey(record.tenantId),
  ].join('.');
}

/** Every index key a record has: its `i.` key and one `g.` key per tag. */
export function fleetIndexKeys(record: FleetRecord): string[] {
  const keys = [fleetIndexKey(record)];
  for (const [name, value] of Object.entries(record.tags ?? {})) keys.push(fleetTagIndexKey(record, name, value));
  return keys;
}

/**
 * Which index keys a listing reads: the dimensions given are fixed, the others any. With `tag`,
 * the tag index (which holds no version); without, the main one.
 */
export type FleetIndexSelector =
  | { tag?: undefined; host?: string; status?: FleetStatus; version?: number | null }
  | { tag: { name: string; value: string }; host?: string; status?: FleetStatus; version?: undefined };

/** The KV key filter (with `*` wildcards) of the index keys a selector picks. */
export function fleetIndexFilter(selector: FleetIndexSelector): string {
  const host = selector.host !== undefined ? tokenOf(selector.host) : '*';
  const status = selector.status ?? '*';
  if (selector.tag)
    return [FLEET_TAG_INDEX_PREFIX, tokenOf(selector.tag.name), tokenOf(selector.tag.value), host, status, '*'].join(
      '.',
    );
  const version = selector.version !== undefined ? versionToken(selector.version) : '*';
  return [FLEET_INDEX_PREFIX, host, status, version, '*'].join('.');
}

/** What an index key says of its tenant (`version` only in the main index, `tag` only in a tag's). */
export interface FleetIndexPointer {
  tenantId: string;
  /** Absent: the record has no host. */
  host?: string;
  status: FleetStatus;
  version?: number | null;
  tag?: { name: string; value: string };
}

/** The pointer an index key holds, or undefined for another key. */
export function parseFleetIndexKey(key: string): FleetIndexPointer | undefined {
  const tokens = key.split('.');
  let pointer: FleetIndexPointer;
  if (tokens.length === 5 && tokens[0] === FLEET_INDEX_PREFIX) {
    const [, host, status, version, tenant] = tokens as [string, string, string, string, string];
    if (version !== NO_VERSION_TOKEN && !/^\d+$/.test(version)) return undefined;
    pointer = {
      tenantId: unescapeKey(tenant),
      status: status as FleetStatus,
      version: version === NO_VERSION_TOKEN ? null : Number(version),
      ...(host !== EMPTY_TOKEN ? { host: unescapeKey(host) } : {}),
    };
  } else if (tokens.length === 6 && tokens[0] === FLEET_TAG_INDEX_PREFIX) {
    const [, name, value, host, status, tenant] = tokens as [string, string, string, string, string, string];
    pointer = {
      tenantId: unescapeKey(tenant),
      status: status as FleetStatus,
      tag: { name: valueOf(name), value: valueOf(value) },
      ...(host !== EMPTY_TOKEN ? { host: unescapeKey(host) } : {}),
    };
  } else {
    return undefined;
  }
  return (FLEET_STATUSES as readonly string[]).includes(pointer.status) && pointer.tenantId !== ''
    ? pointer
    : undefined;
}
