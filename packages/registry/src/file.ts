import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';

import type { TenantSelector } from '@sluice/contracts';

import { type RegistryRow, RegistryUnavailableError, rowMatches, type TenantRegistry } from './registry.js';

/**
 * A registry in a file: a JSON array, or NDJSON (one tenant object per line), told apart by the
 * first character. NDJSON is streamed line by line; a JSON array is read whole, so large fleets
 * belong in NDJSON. A line that is not JSON becomes a row the planner reports as invalid.
 */
export function createFileRegistry(path: string): TenantRegistry {
  return {
    async *list(selector?: TenantSelector) {
      const ids = selector && 'ids' in selector ? new Set(selector.ids) : undefined;
      let first: string;
      try {
        const handle = await open(path, 'r');
        try {
          const { buffer, bytesRead } = await handle.read(Buffer.alloc(64), 0, 64, 0);
          first = buffer.subarray(0, bytesRead).toString('utf8').trimStart()[0] ?? '';
        } finally {
          await handle.close();
        }
      } catch (error) {
        throw new RegistryUnavailableError(`cannot read the tenants file ${path} (SLUICE_TENANTS_FILE): ${(error as Error).message}`, { cause: error });
      }
      if (first === '[') {
        const { readFile } = await import('node:fs/promises');
        let rows: unknown;
        try {
          rows = JSON.parse(await readFile(path, 'utf8'));
        } catch (error) {
          throw new RegistryUnavailableError(`the tenants file ${path} is not valid JSON: ${(error as Error).message}`, { cause: error });
        }
        for (const row of rows as unknown[]) {
          const r = asRow(row);
          if (rowMatches(r, selector, ids)) yield r;
        }
        return;
      }
      const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
      let lineNo = 0;
      for await (const line of lines) {
        lineNo += 1;
        if (line.trim() === '') continue;
        let row: RegistryRow;
        try {
          row = asRow(JSON.parse(line));
        } catch {
          row = { __invalid: `line ${lineNo} of ${path} is not JSON` };
        }
        if (rowMatches(row, selector, ids) || '__invalid' in row) yield row;
      }
    },
    close: () => Promise.resolve(),
  };
}

function asRow(value: unknown): RegistryRow {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as RegistryRow) : { __invalid: 'registry row is not an object' };
}
