import type { TenantSelector } from '@sluice/contracts';

import { asRow, rowMatcher, type TenantRegistry } from './registry.js';

/** A registry over rows in memory, for unit tests of the planner. Read as the caller pulls. */
export function createMemoryRegistry(rows: Iterable<unknown>): TenantRegistry {
  return {
    async *list(selector?: TenantSelector) {
      const matches = rowMatcher(selector);
      for (const value of rows) {
        const row = asRow(value);
        if ('__invalid' in row ? !selector : matches(row)) yield row;
      }
      await Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
}
