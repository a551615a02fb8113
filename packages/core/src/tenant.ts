import { TenantIdSchema } from '@sluice/contracts';

import { InvalidTenantError } from './errors.js';

/** A tenant as the planner publishes it: never with a password. */
export interface Tenant {
  tenantId: string;
  /** `postgres://user@host:port/db` with any password removed. */
  databaseUrl: string;
  /** `host:port`: the unit of flow control. */
  host: string;
  database: string;
  tags: Record<string, string>;
  status: 'active' | 'suspended';
}

const DEFAULT_PORT = '5432';
/** Query parameters through which libpq accepts secrets. */
export const PASSWORD_PARAMS = new Set(['password', 'sslpassword']);

/** Removes a password from a postgres URL; leaves anything that does not parse unchanged. */
export function redactDatabaseUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password === '') return value;
    url.password = '';
    return url.toString();
  } catch {
    // Up to the last '@': a password may itself contain '@'.
    return value.replace(/(\/\/[^:/@]*):.*@/, '$1@');
  }
}

/**
 * Validates one registry row and turns it into a {@link Tenant}. Throws {@link InvalidTenantError}
 * with the reason (the password, if any, never appears in it). A row may carry `tenantId`,
 * `databaseUrl`, `tags` and `status`; other fields are ignored.
 */
export function parseTenantRow(row: unknown): Tenant {
  if (typeof row !== 'object' || row === null || Array.isArray(row)) {
    throw new InvalidTenantError('registry row is not an object');
  }
  const r = row as Record<string, unknown>;
  const tenantId = r.tenantId;
  if (typeof tenantId !== 'string' || tenantId.trim() === '') {
    throw new InvalidTenantError('registry row has no tenantId');
  }
  // The id travels in NATS message ids: a bad one is this row's problem, never the run's. The reason
  // names the rule, not the id (it may hold CR/LF or be 2,000 characters long).
  const idCheck = TenantIdSchema.safeParse(tenantId);
  if (!idCheck.success) throw new InvalidTenantError(idCheck.error.issues[0]?.message ?? 'tenantId is not usable');
  const raw = r.databaseUrl;
  if (typeof raw !== 'string' || raw === '') throw new InvalidTenantError(`tenant ${tenantId} has no databaseUrl`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidTenantError(`tenant ${tenantId} has a malformed databaseUrl`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new InvalidTenantError(`tenant ${tenantId} has a databaseUrl that is not postgres:// (${url.protocol})`);
  }
  let database: string;
  try {
    database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  } catch {
    throw new InvalidTenantError(`tenant ${tenantId} has a databaseUrl with a malformed database name`);
  }
  // A host name goes into subjects (escaped) and consumer names: letters, digits, `.-_`, or an IPv6 literal.
  if (url.hostname !== '' && !/^([a-zA-Z0-9._-]+|\[[0-9a-fA-F:.]+\])$/.test(url.hostname)) {
    throw new InvalidTenantError(`tenant ${tenantId} has a databaseUrl whose host is not a host name or address`);
  }
  if (url.hostname === '' || database === '' || database.includes('/')) {
    throw new InvalidTenantError(`tenant ${tenantId} has a databaseUrl without a host or a database name`);
  }
  const status = r.status ?? 'active';
  if (status !== 'active' && status !== 'suspended') {
    throw new InvalidTenantError(
      `tenant ${tenantId} has an unknown status ${JSON.stringify(status)?.slice(0, 40) ?? 'undefined'}`,
    );
  }
  const tags: Record<string, string> = {};
  if (r.tags !== undefined && r.tags !== null) {
    if (typeof r.tags !== 'object' || Array.isArray(r.tags))
      throw new InvalidTenantError(`tenant ${tenantId} has tags that are not a string map`);
    for (const [k, v] of Object.entries(r.tags as Record<string, unknown>)) {
      if (typeof v !== 'string')
        throw new InvalidTenantError(`tenant ${tenantId} has a tag "${k.slice(0, 40)}" that is not a string`);
      tags[k] = v;
    }
  }
  url.password = '';
  // libpq also takes passwords as query parameters: they never travel either.
  for (const key of [...url.searchParams.keys()])
    if (PASSWORD_PARAMS.has(key.toLowerCase())) url.searchParams.delete(key);
  return {
    tenantId,
    databaseUrl: url.toString(),
    // postgres: is not a "special" URL scheme, so the host keeps its case; DNS names do not care.
    host: `${url.hostname.toLowerCase()}:${url.port || DEFAULT_PORT}`,
    database,
    tags,
    status,
  };
}

/** Whether a tenant matches a selector (used by adapters that cannot filter in the store). */
export function matchesSelector(
  tenant: Pick<Tenant, 'tenantId' | 'tags'>,
  selector?: { ids: string[] } | { tags: Record<string, string> },
): boolean {
  if (!selector) return true;
  if ('ids' in selector) return selector.ids.includes(tenant.tenantId);
  return Object.entries(selector.tags).every(([k, v]) => tenant.tags[k] === v);
}
