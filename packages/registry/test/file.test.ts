import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { TenantSelector } from '@sluice/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createFileRegistry } from '../src/file.js';
import { type RegistryRow, RegistryUnavailableError } from '../src/registry.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sluice-file-registry-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function read(content: string, selector?: TenantSelector): Promise<RegistryRow[]> {
  const file = path.join(dir, `t-${Math.random().toString(36).slice(2)}`);
  await writeFile(file, content);
  const out: RegistryRow[] = [];
  for await (const row of createFileRegistry(file).list(selector)) out.push(row);
  return out;
}

describe('file registry on regular files', () => {
  it('splits a JSON array only at its own commas, whatever strings and nesting hold', async () => {
    const rows = [
      { tenantId: 'a,]"}', databaseUrl: 'postgres://h/a', tags: { x: '[{', 'y\\"': '\\' } },
      { tenantId: 'b', databaseUrl: 'postgres://h/b', extra: [[1, { z: [] }], 'q'] },
    ];
    expect(await read(`\uFEFF  ${JSON.stringify(rows, null, 2)}\n`)).toEqual(rows);
    expect(await read(JSON.stringify(rows))).toEqual(rows);
  });

  it('reads NDJSON with a byte order mark, CRLF line ends and blank lines', async () => {
    expect(await read('\uFEFF{"tenantId":"a"}\r\n\r\n{"tenantId":"b"}\r\n')).toEqual([
      { tenantId: 'a' },
      { tenantId: 'b' },
    ]);
  });

  it('reads an empty file and an empty array as no tenants', async () => {
    expect(await read('')).toEqual([]);
    expect(await read(' [ ]\n')).toEqual([]);
  });

  it('yields an entry that is not JSON as an invalid row whatever the selector, and goes on', async () => {
    const ndjson = await read('{"tenantId":"a"}\n{"tenantId": "b", oops\n{"tenantId":"c"}\n', { ids: ['c'] });
    expect(ndjson).toEqual([
      { __invalid: expect.stringMatching(/entry 2 of .* is not JSON/) as unknown },
      { tenantId: 'c' },
    ]);
    const array = await read('[{"tenantId":"a"}, nope, 7, {"tenantId":"c"}]');
    expect(array).toEqual([
      { tenantId: 'a' },
      { __invalid: expect.stringMatching(/entry 2 .* not JSON/) as unknown },
      { __invalid: expect.stringMatching(/entry 3 .* not an object/) as unknown },
      { tenantId: 'c' },
    ]);
  });

  it('fails a JSON array that breaks off, after the rows before the break', async () => {
    const file = path.join(dir, 'truncated.json');
    await writeFile(file, '[{"tenantId":"a"},{"tenantId":"b"},{"tenantId":"c", "data');
    const seen: unknown[] = [];
    const error = await (async () => {
      for await (const row of createFileRegistry(file).list()) seen.push(row.tenantId);
    })().catch((e: unknown) => e);
    expect(seen).toEqual(['a', 'b']);
    expect(error).toBeInstanceOf(RegistryUnavailableError);
    expect((error as Error).message).toMatch(/not a valid JSON array: it ends before the closing bracket/);
    await expect(read('[{"tenantId":"a"}] {"tenantId":"b"}')).rejects.toThrow(/text after the closing bracket/);
  });

  it('reports a missing file as unavailable, naming the setting', async () => {
    const registry = createFileRegistry(path.join(dir, 'missing.ndjson'));
    const error = await (async () => {
      for await (const _ of registry.list()) void _;
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryUnavailableError);
    expect((error as Error).message).toMatch(/SLUICE_TENANTS_FILE.*ENOENT/);
  });
});
