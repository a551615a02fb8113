import { createReadStream } from 'node:fs';

import type { TenantSelector } from '@sluice/contracts';

import { jsonEntries } from './json-entries.js';
import { asRow, RegistryUnavailableError, rowMatcher, type TenantRegistry } from './registry.js';

/**
 * A registry in a file: a JSON array, or NDJSON (one tenant object per line), both streamed one
 * entry at a time. An entry that is not JSON is yielded whatever the selector (it might have been
 * a selected tenant) as a row the planner reports as invalid; a file that cannot be read, or an
 * array that breaks off, fails the read.
 */
export function createFileRegistry(path: string): TenantRegistry {
  return {
    async *list(selector?: TenantSelector) {
      const matches = rowMatcher(selector);
      const chunks = readChunks(path);
      try {
        let n = 0;
        for await (const entry of jsonEntries(chunks, `the tenants file ${path}`)) {
          n += 1;
          if (entry.trim() === '') continue;
          let value: unknown;
          try {
            value = JSON.parse(entry);
          } catch {
            yield { __invalid: `entry ${n} of ${path} is not JSON` };
            continue;
          }
          const row = asRow(value, `entry ${n} of ${path}`);
          if ('__invalid' in row ? !selector : matches(row)) yield row;
        }
      } finally {
        // A caller that stops early closes the file now, not when the stream is collected.
        await chunks.return(undefined);
      }
    },
    close: () => Promise.resolve(),
  };
}

async function* readChunks(path: string): AsyncGenerator<string> {
  try {
    for await (const chunk of createReadStream(path, { encoding: 'utf8' })) yield chunk as string;
  } catch (error) {
    throw new RegistryUnavailableError(
      `cannot read the tenants file ${path} (SLUICE_TENANTS_FILE): ${(error as Error).message}`,
      { cause: error },
    );
  }
}
