import type { TenantSelector } from '@sluice/contracts';

import { type RegistryRow, rowMatches, type TenantRegistry } from './registry.js';

/** An in-memory registry for unit tests of the planner. */
export function createMemoryRegistry(rows: readonly RegistryRow[]): TenantRegistry {
  return {
    async *list(selector?: TenantSelector) {
      const ids = selector && 'ids' in selector ? new Set(selector.ids) : undefined;
      for (const row of rows) if (rowMatches(row, selector, ids)) yield row;
      await Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
}
