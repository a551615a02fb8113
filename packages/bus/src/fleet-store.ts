import { DeliverPolicy, JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import {
  ALL_FLEET_KEYS,
  BUCKETS,
  FLEET_STATUSES,
  FLEET_SUMMARY_KEY,
  fleetKey,
  type FleetRecord,
  FleetRecordSchema,
  type FleetSummary,
  FleetSummarySchema,
} from '@sluice/contracts';
import { emptyFleetSummary, type FleetQuery, type FleetSummaryDelta, matchesFleetQuery } from '@sluice/core';

import type { Bus } from './bus.js';
import { decodeJson, encodeJson } from './codec.js';

/** What a record update did: the record before and after (absent before: a new tenant). */
export interface FleetChange {
  prev?: FleetRecord;
  next: FleetRecord;
}

/** Where a scan stopped, for the next page. */
export interface FleetScanResult {
  /** Records read. */
  scanned: number;
  /** The stream sequence to start the next page at; undefined when the scan reached the end. */
  nextSeq?: number;
}

/**
 * The fleet state in the `sluice_fleet` KV bucket: one key per tenant and a summary key. Every
 * write is compare-and-set, so replicas racing on one tenant (two reporters folding the same
 * outcome) make one change between them.
 */
export interface FleetStore {
  /** A tenant's record, or undefined when it has none. */
  get(tenantId: string): Promise<FleetRecord | undefined>;
  /**
   * Replaces a tenant's record with what `change` makes of it (undefined: leave it), compare-and-set,
   * trying again on a race. Resolves with the change made, or undefined when none was.
   */
  update(
    tenantId: string,
    change: (prev: FleetRecord | undefined) => FleetRecord | undefined,
  ): Promise<FleetChange | undefined>;
  /** The maintained summary (empty for a new bucket). */
  summary(): Promise<FleetSummary>;
  /** Adds a delta to the summary (compare-and-set), or replaces it (`set`: a recount). */
  adjustSummary(change: { delta: FleetSummaryDelta } | { set: FleetSummary }): Promise<void>;
  /**
   * Streams the records from stream sequence `fromSeq` (1: the start) up to what the bucket holds
   * now, in key-write order, without holding them: `onRecord` returns false to stop (a full page).
   */
  scan(fromSeq: number, onRecord: (record: FleetRecord, seq: number) => boolean | void): Promise<FleetScanResult>;
}

const CAS_ATTEMPTS = 20;

/** Opens (creating it if needed) the fleet state bucket. Works on nats-server 2.9 (plain KV, history 1). */
export async function openFleetStore(bus: Bus, options: { replicas?: number } = {}): Promise<FleetStore> {
  const kv: KV = await new Kvm(bus.nc).create(BUCKETS.fleet, { history: 1, replicas: options.replicas ?? 1 });
  const stream = `KV_${BUCKETS.fleet}`;
  const keysFilter = `$KV.${BUCKETS.fleet}.${ALL_FLEET_KEYS}`;

  /** The key's value and revision (revision 0: no key; a deleted key keeps its tombstone's revision). */
  async function read(key: string): Promise<{ value?: unknown; revision: number }> {
    const entry = await kv.get(key);
    if (!entry) return { revision: 0 };
    if (entry.operation !== 'PUT') return { revision: entry.revision };
    return { value: decodeJson(entry.value), revision: entry.revision };
  }

  /** Writes `key` only if it is still at `revision`; false when someone wrote it in between. */
  async function compareAndSet(key: string, data: unknown, revision: number): Promise<boolean> {
    try {
      await kv.put(key, encodeJson(data), { previousSeq: revision });
      return true;
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamWrongLastSequence) return false;
      throw error;
    }
  }

  async function casLoop<T>(key: string, step: (value: unknown) => T | undefined): Promise<T | undefined> {
    for (let attempt = 1; ; attempt++) {
      const { value, revision } = await read(key);
      const next = step(value);
      if (next === undefined) return undefined;
      if (await compareAndSet(key, next, revision)) return next;
      if (attempt >= CAS_ATTEMPTS) throw new Error(`fleet state: ${key} kept changing under ${attempt} writes`);
    }
  }

  const recordOf = (value: unknown): FleetRecord | undefined => {
    const parsed = FleetRecordSchema.safeParse(value);
    return parsed.success ? parsed.data : undefined;
  };
  const summaryOf = (value: unknown): FleetSummary => {
    const parsed = FleetSummarySchema.safeParse(value);
    return parsed.success ? parsed.data : emptyFleetSummary();
  };

  return {
    async get(tenantId) {
      return recordOf((await read(fleetKey(tenantId))).value);
    },
    async update(tenantId, change) {
      let made: FleetChange | undefined;
      await casLoop(fleetKey(tenantId), (value) => {
        const prev = recordOf(value);
        const next = change(prev);
        made = next ? { ...(prev ? { prev } : {}), next } : undefined;
        return next;
      });
      return made;
    },
    async summary() {
      return summaryOf((await read(FLEET_SUMMARY_KEY)).value);
    },
    async adjustSummary(change) {
      const at = new Date().toISOString();
      await casLoop(FLEET_SUMMARY_KEY, (value) =>
        'set' in change ? change.set : change.delta.applyTo(summaryOf(value), at),
      );
    },
    async scan(fromSeq, onRecord) {
      const info = await bus.jsm.streams.info(stream);
      const stopAt = info.state.last_seq;
      if (info.state.messages === 0 || fromSeq > stopAt) return { scanned: 0 };
      const consumer = await bus.js.consumers.get(stream, {
        filter_subjects: keysFilter,
        ...(fromSeq > 1
          ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq }
          : { deliver_policy: DeliverPolicy.All }),
      });
      // Nothing under the filter from there on: a consume would wait for new writes.
      if ((await consumer.info()).num_pending === 0) return { scanned: 0 };
      const messages = await consumer.consume({ max_messages: 10_000 });
      let scanned = 0;
      let nextSeq: number | undefined;
      try {
        for await (const msg of messages) {
          if (msg.seq > stopAt) break;
          const deleted = msg.headers?.get('KV-Operation');
          const record = deleted ? undefined : scannedRecordOf(msg.data);
          if (record) {
            scanned += 1;
            if (onRecord(record, msg.seq) === false) {
              if (msg.info.pending > 0 && msg.seq < stopAt) nextSeq = msg.seq + 1;
              break;
            }
          }
          if (msg.seq >= stopAt || msg.info.pending === 0) break;
        }
      } finally {
        await messages.close();
      }
      return { scanned, ...(nextSeq !== undefined ? { nextSeq } : {}) };
    },
  };
}

const textDecoder = new TextDecoder();
const STATUSES: ReadonlySet<string> = new Set(FLEET_STATUSES);

/**
 * A record read by a scan. A scan reads every record of the fleet, so it checks only what the
 * readers rely on (id, status, version) rather than running the full schema: that check was most
 * of the time of a million-record scan. Reads through `get` use the schema.
 */
function scannedRecordOf(data: Uint8Array): FleetRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(textDecoder.decode(data));
  } catch {
    return undefined;
  }
  const r = value as Partial<FleetRecord> | null;
  if (typeof r !== 'object' || r === null || typeof r.tenantId !== 'string' || typeof r.at !== 'string')
    return undefined;
  if (!STATUSES.has(r.status as string) || (r.version !== null && typeof r.version !== 'number')) return undefined;
  return r as FleetRecord;
}

/** One page of a fleet listing. */
export interface FleetPage {
  tenants: FleetRecord[];
  /** Pass it back as `cursor` for the next page; absent on the last page. */
  nextCursor?: string;
  /** Records read to fill this page. */
  scanned: number;
}

/**
 * One page of the tenants a query shows, scanning the records from `cursor` on and holding only the
 * page: memory stays flat whatever the fleet's size. The cursor is a stream position, so a page
 * never repeats a tenant written before the first page was read.
 */
export async function pageFleet(
  store: FleetStore,
  query: FleetQuery,
  page: { cursor?: string; limit: number },
): Promise<FleetPage> {
  const from = page.cursor !== undefined && /^\d+$/.test(page.cursor) ? Math.max(1, Number(page.cursor)) : 1;
  const tenants: FleetRecord[] = [];
  const result = await store.scan(from, (record) => {
    if (!matchesFleetQuery(record, query)) return true;
    tenants.push(record);
    return tenants.length < page.limit;
  });
  return {
    tenants,
    scanned: result.scanned,
    ...(result.nextSeq !== undefined ? { nextCursor: String(result.nextSeq) } : {}),
  };
}
