import type { TenantSelector } from '@sluice/contracts';
import { type Filter, MongoClient, type MongoClientOptions } from 'mongodb';

import { RegistryUnavailableError, rowMatcher, type TenantRegistry } from './registry.js';

/** Where the tenants live in MongoDB. */
export interface MongoRegistrySettings {
  /** `MONGODB_URI`: a connection string whose path names the database. */
  uri: string;
  /** `SLUICE_TENANTS_COLLECTION`: the collection of tenant documents. */
  collection: string;
  /** `SLUICE_REGISTRY_PAGE_SIZE`: documents per round trip (the cursor's batch size). */
  pageSize: number;
}

/** Only what the planner reads travels; `_id` stays behind. */
const PROJECTION = { _id: 0, tenantId: 1, databaseUrl: 1, tags: 1, status: 1 } as const;

/**
 * Tenants from a MongoDB collection, through one cursor per `list()`: the selector becomes the
 * query filter, and the cursor fetches a batch at a time as the planner pulls.
 */
export function createMongoRegistry(settings: MongoRegistrySettings, options?: MongoClientOptions): TenantRegistry {
  const client = new MongoClient(settings.uri, options);
  const tenants = client.db().collection(settings.collection);
  return {
    async *list(selector?: TenantSelector) {
      const matches = rowMatcher(selector);
      const cursor = tenants.find(filterFor(selector), { projection: PROJECTION, batchSize: settings.pageSize });
      try {
        for await (const row of cursor) if (matches(row)) yield row;
      } catch (error) {
        throw new RegistryUnavailableError(
          `cannot read the tenants collection ${settings.collection} (MONGODB_URI): ${(error as Error).message}`,
          { cause: error },
        );
      } finally {
        await cursor.close();
      }
    },
    close: () => client.close(),
  };
}

/**
 * The selector as a query filter. A tag key with a dot or a leading `$` cannot be a query path; it
 * is left to {@link rowMatcher}, which checks every row again anyway.
 */
function filterFor(selector: TenantSelector | undefined): Filter<Record<string, unknown>> {
  if (!selector) return {};
  if ('ids' in selector) return { tenantId: { $in: [...new Set(selector.ids)] } };
  return Object.fromEntries(
    Object.entries(selector.tags)
      .filter(([k]) => !/^\$|[.\0]/.test(k))
      .map(([k, v]) => [`tags.${k}`, v]),
  );
}
