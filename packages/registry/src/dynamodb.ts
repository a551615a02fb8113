import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, DynamoDBDocumentClient, ScanCommand, type ScanCommandInput } from '@aws-sdk/lib-dynamodb';
import type { TenantSelector } from '@sluice/contracts';

import { type RegistryRow, RegistryUnavailableError, rowMatcher, type TenantRegistry } from './registry.js';

/** Where the tenants live in DynamoDB; region, credentials and endpoint come from the AWS SDK's own configuration. */
export interface DynamoRegistrySettings {
  /** `SLUICE_TENANTS_TABLE`: a table whose partition key is `tenantId` (a string). */
  table: string;
  /** `SLUICE_DYNAMODB_SEGMENTS`: parallel Scan segments for a whole-table or tags read. */
  segments: number;
  /** `SLUICE_REGISTRY_PAGE_SIZE`: items a Scan page evaluates (DynamoDB also stops a page at 1 MB). */
  pageSize: number;
  /** `SLUICE_DYNAMODB_THROTTLE_ATTEMPTS`: tries of a throttled request (each with the SDK's own retries inside) before giving up. */
  throttleAttempts: number;
}

export interface DynamoRegistryOptions {
  /** Merged over the SDK's standard configuration (tests point it at a local endpoint). */
  client?: DynamoDBClientConfig;
  /** Wait before the n-th retry of a throttled request; exponential with full jitter by default. */
  backoff?: (attempt: number) => number;
}

const THROTTLING = new Set(['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded']);
/** BatchGetItem takes at most 100 keys. */
const BATCH_GET_KEYS = 100;
const PROJECTION = {
  ProjectionExpression: '#id, #url, #tags, #status',
  ExpressionAttributeNames: { '#id': 'tenantId', '#url': 'databaseUrl', '#tags': 'tags', '#status': 'status' },
};
const fullJitter = (attempt: number): number => Math.random() * Math.min(5_000, 50 * 2 ** attempt);
/** A connection failure may carry only a code (an AggregateError from happy eyeballs has no message). */
const describe = (error: unknown): string => {
  const e = error as Error & { code?: string };
  return e.message || e.code || e.name;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Tenants from a DynamoDB table: ids through BatchGetItem, tags through a filtered Scan, the
 * whole table through a parallel Scan whose segments are read page by page as the planner pulls.
 * Throttling is retried with backoff; any other failure is {@link RegistryUnavailableError}.
 */
export function createDynamoRegistry(
  settings: DynamoRegistrySettings,
  options: DynamoRegistryOptions = {},
): TenantRegistry {
  const { table } = settings;
  const backoff = options.backoff ?? fullJitter;
  const base = new DynamoDBClient({
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
    ...options.client,
  });
  // A number beyond double precision in a bad row must not abort the read: wrapNumbers keeps it.
  const client = DynamoDBDocumentClient.from(base, { unmarshallOptions: { wrapNumbers: true } });

  const unavailable = (why: string, cause?: unknown) =>
    new RegistryUnavailableError(`cannot read the tenants table ${table} (SLUICE_TENANTS_TABLE): ${why}`, { cause });

  async function send<T>(call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        const throttled = THROTTLING.has((error as Error).name);
        if (!throttled || attempt >= settings.throttleAttempts)
          throw unavailable(throttled ? `throttled ${attempt} times` : describe(error), error);
        await sleep(backoff(attempt));
      }
    }
  }

  async function* scan(input: Omit<ScanCommandInput, 'TableName'>): AsyncGenerator<RegistryRow[]> {
    let start: ScanCommandInput['ExclusiveStartKey'];
    do {
      const page = await send(() =>
        client.send(
          new ScanCommand({ TableName: table, Limit: settings.pageSize, ...input, ExclusiveStartKey: start }),
        ),
      );
      yield page.Items ?? [];
      start = page.LastEvaluatedKey;
    } while (start);
  }

  function parallelScan(input: Omit<ScanCommandInput, 'TableName'>): AsyncGenerator<RegistryRow[]> {
    const n = settings.segments;
    return n === 1
      ? scan(input)
      : mergePages(Array.from({ length: n }, (_, Segment) => scan({ ...input, Segment, TotalSegments: n })));
  }

  async function* batchGet(ids: string[]): AsyncGenerator<RegistryRow[]> {
    for (let i = 0; i < ids.length; i += BATCH_GET_KEYS) {
      let keys: Array<Record<string, unknown>> = ids.slice(i, i + BATCH_GET_KEYS).map((tenantId) => ({ tenantId }));
      // Unprocessed keys are DynamoDB asking us to slow down: back off, and give up only when
      // request after request gets no key through.
      let stalls = 0;
      for (let round = 0; keys.length > 0; round++) {
        if (round > 0) await sleep(backoff(stalls + 1));
        const out = await send(() =>
          client.send(new BatchGetCommand({ RequestItems: { [table]: { Keys: keys, ...PROJECTION } } })),
        );
        const left = out.UnprocessedKeys?.[table]?.Keys ?? [];
        stalls = left.length < keys.length ? 0 : stalls + 1;
        if (stalls >= settings.throttleAttempts)
          throw unavailable(`${left.length} keys still unprocessed after ${stalls} requests`);
        keys = left;
        yield out.Responses?.[table] ?? [];
      }
    }
  }

  return {
    async *list(selector?: TenantSelector) {
      const matches = rowMatcher(selector);
      let pages: AsyncGenerator<RegistryRow[]>;
      if (!selector) pages = parallelScan(PROJECTION);
      else if ('ids' in selector) pages = batchGet([...new Set(selector.ids)]);
      else {
        const tags = Object.entries(selector.tags);
        pages = parallelScan({
          ...PROJECTION,
          FilterExpression: tags.map((_, i) => `#tags.#k${i} = :v${i}`).join(' AND '),
          ExpressionAttributeNames: {
            ...PROJECTION.ExpressionAttributeNames,
            ...Object.fromEntries(tags.map(([k], i) => [`#k${i}`, k])),
          },
          ExpressionAttributeValues: Object.fromEntries(tags.map(([, v], i) => [`:v${i}`, v])),
        });
      }
      for await (const page of pages) for (const row of page) if (matches(row)) yield row;
    },
    close() {
      base.destroy();
      return Promise.resolve();
    },
  };
}

/**
 * Pages from several segments as they arrive, holding at most one unread page per segment: each
 * segment fetches its next page while the caller works through the one it was given.
 */
async function* mergePages<T>(sources: Array<AsyncGenerator<T>>): AsyncGenerator<T> {
  const pending = new Map<number, Promise<{ i: number; result: IteratorResult<T> }>>();
  const pull = (i: number) =>
    pending.set(
      i,
      sources[i]!.next().then((result) => ({ i, result })),
    );
  sources.forEach((_, i) => pull(i));
  try {
    while (pending.size > 0) {
      const { i, result } = await Promise.race(pending.values());
      if (result.done) {
        pending.delete(i);
        continue;
      }
      pull(i);
      yield result.value;
    }
  } finally {
    // A caller that stops early, or a segment that failed, ends the others (after their request in flight).
    await Promise.allSettled(sources.map((source) => source.return(undefined)));
  }
}
