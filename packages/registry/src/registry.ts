import type { TenantSelector } from '@sluice/contracts';

/** One tenant row as the store holds it; the planner validates it (a bad row becomes an `invalid` outcome). */
export type RegistryRow = Record<string, unknown>;

/**
 * The tenant registry, as the planner needs it. Adapters page through their store and never
 * hold the whole registry in memory.
 */
export interface TenantRegistry {
  /**
   * Rows that match the selector, suspended ones included (the planner counts them as skipped).
   * No selector: every tenant.
   */
  list(selector?: TenantSelector): AsyncIterable<RegistryRow>;
  /** Releases connections and handles. */
  close(): Promise<void>;
}

/** A registry that cannot be read right now (the planner retries, then fails the run). */
export class RegistryUnavailableError extends Error {
  override readonly name = 'RegistryUnavailableError';
}

/** The selector test for adapters that filter after reading (file, memory). */
export function rowMatches(row: RegistryRow, selector: TenantSelector | undefined, ids: ReadonlySet<string> | undefined): boolean {
  if (!selector) return true;
  if ('ids' in selector) return typeof row.tenantId === 'string' && (ids?.has(row.tenantId) ?? false);
  const tags = row.tags as Record<string, unknown> | undefined;
  return typeof tags === 'object' && tags !== null && Object.entries(selector.tags).every(([k, v]) => tags[k] === v);
}
