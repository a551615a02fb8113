import type { BundleStore } from '@sluice/bus';
import { DigestMismatchError, type MigrationSet } from '@sluice/core';
import type { Logger } from '@sluice/telemetry';

/** Where a task's migration set comes from: the set with the run's digest, or an error saying why not. */
export interface MigrationSets {
  /**
   * The set whose digest is `digest`. Throws {@link DigestMismatchError} (transient) when no such
   * set is known, `BundleDigestMismatchError` (permanent) when the stored bundle was altered, and
   * `BundleUnavailableError` (transient) when the store cannot be read.
   */
  forDigest(digest: string): Promise<MigrationSet>;
}

/** Sets kept in memory: a few runs' worth (each is the size of its SQL files). */
const CACHE_SIZE = 16;

/**
 * The executor's migration sets: the run's bundle from the store, checked against the run's
 * digest and cached by it; the local folder (`SLUICE_MIGRATIONS_DIR`), when there is one, serves
 * its own digest without a fetch and covers runs planned before bundles were stored.
 */
export function createMigrationSets(deps: {
  bundles: BundleStore;
  local?: MigrationSet;
  logger: Logger;
  executorId: string;
}): MigrationSets {
  const { bundles, local, logger, executorId } = deps;
  const cache = new Map<string, Promise<MigrationSet>>();

  async function load(digest: string): Promise<MigrationSet> {
    const set = await bundles.get(digest);
    if (!set) {
      throw new DigestMismatchError(
        `executor ${executorId} has no migration set ${digest.slice(0, 12)}: no bundle is stored under it${local ? ` and its local set is ${local.digest.slice(0, 12)}` : ''}`,
      );
    }
    logger.info({ digest, migrations: set.migrations.length, latest: set.latest }, 'migration set loaded from bundle');
    return set;
  }

  return {
    async forDigest(digest) {
      if (local?.digest === digest) return local;
      let pending = cache.get(digest);
      if (!pending) {
        pending = load(digest);
        cache.set(digest, pending);
        // A failure is not kept: the bundle may be stored (or repaired) in a moment.
        pending.catch(() => cache.delete(digest));
        if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value!);
      } else {
        // Most recently used last.
        cache.delete(digest);
        cache.set(digest, pending);
      }
      return pending;
    },
  };
}

/** Only one set: a task planned with another digest is refused as before bundles existed. */
export function singleMigrationSet(set: MigrationSet, executorId: string): MigrationSets {
  return {
    forDigest(digest) {
      if (digest === set.digest) return Promise.resolve(set);
      return Promise.reject(
        new DigestMismatchError(
          `executor ${executorId} has migration set ${set.digest.slice(0, 12)}, the run was planned with ${digest.slice(0, 12)}`,
        ),
      );
    },
  };
}
