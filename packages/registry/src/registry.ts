import type { TenantSelector } from '@sluice/contracts';
import { TransientError } from '@sluice/core';

/**
 * One tenant row as the store holds it; the planner validates it (a bad row becomes an `invalid`
 * outcome). An entry that is not even an object (a line that is not JSON, a `null` in an array)
 * travels as `{ __invalid: reason }`, so that one bad entry never stops a run.
 */
export type RegistryRow = Record<string, unknown>;

/** A stored entry as a row: objects as they are, anything else as an `__invalid` row. */
export function asRow(value: unknown, where?: string): RegistryRow {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as RegistryRow;
  return { __invalid: `registry row${where ? ` (${where})` : ''} is not an object` };
}

/**
 * The tenant registry, as the planner needs it. Adapters page through their store and never
 * hold the whole registry in memory.
 */
export interface TenantRegistry {
  /**
   * Rows that match the selector, suspended ones included (the planner counts them as skipped),
   * and bad rows as they are (the planner reports them). No selector: every tenant. Lazy: the
   * first row arrives after the first page, and the store is read as the caller pulls. Throws
   * {@link RegistryUnavailableError} when the store cannot be read.
   */
  list(selector?: TenantSelector): AsyncIterable<RegistryRow>;
  /** Releases connections and handles. */
  close(): Promise<void>;
}

/** A registry that cannot be read right now (the planner retries, then fails the run). */
export class RegistryUnavailableError extends TransientError {
  readonly code = 'registry_unavailable';
}

/**
 * The selector as a test on rows as they come from the store. File and memory filter with it
 * alone; the database adapters filter in the store and then with it too, so every adapter agrees
 * on the edges a query language sees differently (an array where a string belongs, a tag key with
 * a dot). A row that is not an object matches only "every tenant".
 */
export function rowMatcher(selector: TenantSelector | undefined): (row: unknown) => boolean {
  if (!selector) return () => true;
  const isRow = (row: unknown): row is RegistryRow => typeof row === 'object' && row !== null && !Array.isArray(row);
  if ('ids' in selector) {
    const ids = new Set(selector.ids);
    return (row) => isRow(row) && typeof row.tenantId === 'string' && ids.has(row.tenantId);
  }
  const wanted = Object.entries(selector.tags);
  return (row) => {
    const tags = isRow(row) ? row.tags : undefined;
    return isRow(tags) && wanted.every(([k, v]) => Object.hasOwn(tags, k) && tags[k] === v);
  };
}
