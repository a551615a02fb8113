import { type JetStreamClient, type JetStreamManager, StorageType } from '@nats-io/jetstream';
import { type ObjectStore, Objm } from '@nats-io/obj';
import { BUCKETS } from '@sluice/contracts';
import {
  BundleDigestMismatchError,
  BundleUnavailableError,
  createMigrationSet,
  type MigrationSet,
  type MigrationSource,
  type SqlParser,
} from '@sluice/core';
import { loadSqlParser } from '@sluice/sql-parser';

/** The Object Store bucket holding migration sets, one object per set, named by its digest. */
const BUNDLE_BUCKET = BUCKETS.bundles;

const FORMAT = 'sluice-migration-bundle/1';

/** A run's migration set in the JetStream Object Store, content-addressed by its digest. */
export interface BundleStore {
  /**
   * Stores `set` under its digest. An intact copy already there is left as it is (`present`); a
   * copy that does not hash to its name is overwritten with the real set (`replaced`).
   */
  put(set: MigrationSet): Promise<'stored' | 'present' | 'replaced'>;
  /**
   * The set stored under `digest`, rebuilt and checked: its recomputed digest must be `digest`
   * (else {@link BundleDigestMismatchError}). Undefined when nothing is stored under it;
   * {@link BundleUnavailableError} when the store cannot be read.
   */
  get(digest: string): Promise<MigrationSet | undefined>;
}

/** The bytes stored for a set: its files as they are, so that any executor can rebuild the same set. */
export function encodeBundle(set: MigrationSet): Uint8Array {
  // Down files travel with their up files: they are part of the set and its digest.
  const files: MigrationSource[] = set.migrations.flatMap((m) => [
    { file: m.file, sql: m.sql },
    ...(m.down ? [{ file: m.down.file, sql: m.down.sql }] : []),
  ]);
  return new TextEncoder().encode(JSON.stringify({ format: FORMAT, digest: set.digest, files }));
}

/**
 * Rebuilds the set stored under `digest` with core's own parser and checks that it is that set.
 * The `digest` field inside the bundle is not trusted: only the recomputed one counts.
 */
export function decodeBundle(digest: string, data: Uint8Array, parser: SqlParser): MigrationSet {
  let files: MigrationSource[];
  try {
    const parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data)) as {
      format?: unknown;
      files?: unknown;
    };
    if (parsed.format !== FORMAT || !Array.isArray(parsed.files)) throw new Error(`not a ${FORMAT} document`);
    files = parsed.files.map((f: unknown) => {
      const { file, sql } = (f ?? {}) as Partial<MigrationSource>;
      if (typeof file !== 'string' || typeof sql !== 'string') throw new Error('a file entry lacks its name or text');
      return { file, sql };
    });
  } catch (error) {
    throw new BundleDigestMismatchError(
      `bundle ${digest} is unreadable (${(error as Error).message}); nothing from it is applied`,
      { cause: error },
    );
  }
  let set: MigrationSet;
  try {
    set = createMigrationSet(files, parser);
  } catch (error) {
    throw new BundleDigestMismatchError(
      `bundle ${digest} is not a valid migration set (${(error as Error).message}); nothing from it is applied`,
      { cause: error },
    );
  }
  if (set.digest !== digest) {
    throw new BundleDigestMismatchError(
      `bundle ${digest} holds migration set ${set.digest}: it was altered; nothing from it is applied`,
    );
  }
  return set;
}

/** Creates the bundle bucket if it is missing (idempotent, safe to race). */
export async function ensureBundleBucket(
  js: JetStreamClient,
  options: { replicas?: number } = {},
): Promise<ObjectStore> {
  const objm = new Objm(js);
  try {
    return await objm.create(BUNDLE_BUCKET, {
      storage: StorageType.File,
      replicas: options.replicas ?? 1,
      description: 'Sluice migration sets by digest',
    });
  } catch (error) {
    // Another service may have created it in between.
    return objm.open(BUNDLE_BUCKET).catch(() => {
      throw error;
    });
  }
}

/** Opens (creating if needed) the bundle store of a connection. */
export async function openBundleStore(
  bus: { js: JetStreamClient } | { jsm: JetStreamManager },
  options: { replicas?: number } = {},
): Promise<BundleStore> {
  const os = await ensureBundleBucket('js' in bus ? bus.js : bus.jsm.jetstream(), options);
  return bundleStoreOver(os, await loadSqlParser());
}

/** The corruption the Object Store itself detects (chunks that do not hash to the object's info). */
const CORRUPT = /corrupt object|digests do not match/i;

function bundleStoreOver(os: ObjectStore, parser: SqlParser): BundleStore {
  async function read(digest: string): Promise<Uint8Array | null> {
    try {
      return await os.getBlob(digest);
    } catch (error) {
      if (CORRUPT.test((error as Error).message)) {
        throw new BundleDigestMismatchError(
          `bundle ${digest} is corrupt in ${BUNDLE_BUCKET}; nothing from it is applied`,
          { cause: error },
        );
      }
      throw new BundleUnavailableError(
        `cannot read bundle ${digest} from ${BUNDLE_BUCKET}: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  return {
    async put(set) {
      let existing: Uint8Array | null = null;
      let damaged = false;
      try {
        existing = await read(set.digest);
        if (existing) decodeBundle(set.digest, existing, parser);
      } catch (error) {
        if (!(error instanceof BundleDigestMismatchError)) throw error;
        damaged = true;
      }
      if (existing && !damaged) return 'present';
      await os.putBlob(
        { name: set.digest, description: `migration set, ${set.migrations.length} files, latest ${set.latest}` },
        encodeBundle(set),
      );
      return damaged ? 'replaced' : 'stored';
    },
    async get(digest) {
      const data = await read(digest);
      return data ? decodeBundle(digest, data, parser) : undefined;
    },
  };
}
