import type { BundleStore } from '@sluice/bus';
import { BundleDigestMismatchError, createMigrationSet, DigestMismatchError, type MigrationSet } from '@sluice/core';
import { loadSqlParser } from '@sluice/sql-parser';
import { createLogger } from '@sluice/telemetry';
import { describe, expect, it } from 'vitest';

import { createMigrationSets, singleMigrationSet } from '../src/migration-sets.js';

const parser = await loadSqlParser();

const logger = createLogger({ service: 'migration-sets-test', level: 'silent' });
const setOf = (n: number): MigrationSet =>
  createMigrationSet([{ file: '0001_t.sql', sql: `CREATE TABLE t${n} (id int);\n` }], parser);

/** An in-memory bundle store (our own port) that counts reads and can hold a tampered entry. */
function memoryBundles() {
  const sets = new Map<string, MigrationSet>();
  const tampered = new Set<string>();
  const reads: string[] = [];
  const store: BundleStore = {
    put(set) {
      sets.set(set.digest, set);
      tampered.delete(set.digest);
      return Promise.resolve('stored');
    },
    get(digest) {
      reads.push(digest);
      if (tampered.has(digest))
        return Promise.reject(new BundleDigestMismatchError(`bundle ${digest} holds migration set x`));
      return Promise.resolve(sets.get(digest));
    },
  };
  return { store, reads, tampered };
}

describe('migration sets by digest', () => {
  it('serves the local set for its own digest without reading the store', async () => {
    const local = setOf(1);
    const bundles = memoryBundles();
    const sets = createMigrationSets({ bundles: bundles.store, local, logger, executorId: 'e1' });
    expect(await sets.forDigest(local.digest)).toBe(local);
    expect(bundles.reads).toEqual([]);
  });

  it("loads another run's set from the store once and keeps it", async () => {
    const planned = setOf(2);
    const bundles = memoryBundles();
    await bundles.store.put(planned);
    const sets = createMigrationSets({ bundles: bundles.store, local: setOf(1), logger, executorId: 'e1' });
    const [a, b] = await Promise.all([sets.forDigest(planned.digest), sets.forDigest(planned.digest)]);
    expect(a).toBe(planned);
    expect(b).toBe(planned);
    expect(await sets.forDigest(planned.digest)).toBe(planned);
    expect(bundles.reads).toEqual([planned.digest]);
  });

  it('works with no local set at all', async () => {
    const planned = setOf(3);
    const bundles = memoryBundles();
    await bundles.store.put(planned);
    const sets = createMigrationSets({ bundles: bundles.store, logger, executorId: 'e1' });
    expect((await sets.forDigest(planned.digest)).digest).toBe(planned.digest);
  });

  it('a digest with no bundle and no matching local set is a transient mismatch, tried again later', async () => {
    const planned = setOf(4);
    const bundles = memoryBundles();
    const sets = createMigrationSets({ bundles: bundles.store, local: setOf(1), logger, executorId: 'e1' });
    const error = await sets.forDigest(planned.digest).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DigestMismatchError);
    expect((error as DigestMismatchError).transient).toBe(true);
    expect((error as Error).message).toContain(planned.digest.slice(0, 12));
    await bundles.store.put(planned);
    expect(await sets.forDigest(planned.digest)).toBe(planned);
  });

  it('passes a tampered bundle on as a permanent error, and does not remember the failure', async () => {
    const planned = setOf(5);
    const bundles = memoryBundles();
    await bundles.store.put(planned);
    bundles.tampered.add(planned.digest);
    const sets = createMigrationSets({ bundles: bundles.store, logger, executorId: 'e1' });
    const error = await sets.forDigest(planned.digest).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BundleDigestMismatchError);
    expect((error as BundleDigestMismatchError).transient).toBe(false);
    await bundles.store.put(planned);
    expect(await sets.forDigest(planned.digest)).toBe(planned);
  });

  it('keeps at most 16 sets, dropping the least recently used', async () => {
    const bundles = memoryBundles();
    const all = Array.from({ length: 17 }, (_, i) => setOf(100 + i));
    for (const s of all) await bundles.store.put(s);
    const sets = createMigrationSets({ bundles: bundles.store, logger, executorId: 'e1' });
    for (const s of all.slice(0, 16)) await sets.forDigest(s.digest);
    await sets.forDigest(all[0]!.digest); // used again: now the most recent
    await sets.forDigest(all[16]!.digest); // evicts all[1]
    bundles.reads.length = 0;
    await sets.forDigest(all[0]!.digest);
    await sets.forDigest(all[1]!.digest);
    expect(bundles.reads).toEqual([all[1]!.digest]);
  });
});

describe('a single set (no bundle store)', () => {
  it('refuses any other digest as before', async () => {
    const set = setOf(1);
    const single = singleMigrationSet(set, 'e1');
    expect(await single.forDigest(set.digest)).toBe(set);
    await expect(single.forDigest(setOf(2).digest)).rejects.toThrow(DigestMismatchError);
  });
});
