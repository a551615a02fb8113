import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import {
  ALL_FLEET_ATTENTION_KEYS,
  ALL_FLEET_KEYS,
  BUCKETS,
  FLEET_STATUSES,
  FLEET_SUMMARY_KEY,
  fleetAttentionKey,
  fleetIndexFilter,
  fleetIndexKeys,
  type FleetIndexPointer,
  type FleetIndexSelector,
  fleetKey,
  type FleetRecord,
  FleetRecordSchema,
  type FleetSummary,
  FleetSummarySchema,
  parseFleetIndexKey,
} from '@sluice/contracts';
import {
  emptyFleetSummary,
  type FleetQuery,
  FleetSummaryBuilder,
  type FleetSummaryDelta,
  matchesFleetQuery,
} from '@sluice/core';

import { BulkWriter } from './bulk-writer.js';
import type { Bus } from './bus.js';
import { decodeJson, encodeJson } from './codec.js';
import { scanSubject } from './subject-scan.js';

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
 * The fleet state in the `sluice_fleet` KV bucket: one key per tenant, a summary key, an
 * attention index (a copy of each record that is not `current`) and the fleet index (pointer keys
 * by host, status, version and tag: `fleetIndexKeys`). Every record write is compare-and-set, so
 * replicas racing on one tenant (two reporters folding the same outcome) make one change between
 * them. The indexes and the summary follow the records and are put right by a recount (`recount`),
 * the one operation that reads every record.
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
  /**
   * The maintained summary (empty for a new bucket); with a change, after adding its delta
   * (compare-and-set, trying again on a race) or replacing it (`set`: a recount).
   */
  summary(change?: { delta: FleetSummaryDelta } | { set: FleetSummary }): Promise<FleetSummary>;
  /**
   * Streams the records from stream sequence `fromSeq` (1: the start) up to what the bucket holds
   * now, in key-write order, without holding them: `onRecord` returns false to stop (a full page),
   * or a promise to hold the scan until it settles. `attention`: only the attention index.
   * `query`: only the records that match it (`matchesFleetQuery`); the others are counted in
   * `scanned` but skipped, most without being decoded.
   */
  scan(
    fromSeq: number,
    onRecord: (record: FleetRecord, seq: number) => boolean | void | Promise<boolean | void>,
    options?: { attention?: boolean; query?: FleetQuery },
  ): Promise<FleetScanResult>;
  /**
   * Streams the fleet index keys `selector` picks, from stream sequence `fromSeq` up to what the
   * bucket holds now, as `scan` streams records (`onPointer` returns false to stop, or a promise to
   * hold the scan). nats-server picks the keys by subject: only those are read.
   */
  scanIndex(
    selector: FleetIndexSelector,
    fromSeq: number,
    onPointer: (pointer: FleetIndexPointer, seq: number) => boolean | void | Promise<boolean | void>,
  ): Promise<FleetScanResult>;
  /** Counts every record into a fresh summary, and rebuilds the attention index and the fleet index from the records. */
  recount(): Promise<FleetSummary>;
}

const CAS_ATTEMPTS = 20;
/** An index key's value: the key says it all. */
const NO_VALUE = new Uint8Array(0);

/** A fleet key changed under every one of a writer's compare-and-set attempts. Transient: the next outcome tries again. */
export class FleetContentionError extends Error {
  override readonly name = 'FleetContentionError';
  readonly transient = true;
  constructor(
    readonly key: string,
    attempts: number,
  ) {
    super(`fleet state: ${key} changed under each of ${attempts} compare-and-set writes`);
  }
}

/** Opens (creating them if needed) the fleet state and fleet index buckets. Works on nats-server 2.9 (plain KV, history 1). */
export async function openFleetStore(bus: Bus, options: { replicas?: number } = {}): Promise<FleetStore> {
  const kvm = new Kvm(bus.nc);
  const settings = { history: 1, replicas: options.replicas ?? 1 };
  const kv: KV = await kvm.create(BUCKETS.fleet, settings);
  const indexKv: KV = await kvm.create(BUCKETS.fleetIndex, settings);
  const stream = `KV_${BUCKETS.fleet}`;
  const indexStream = `KV_${BUCKETS.fleetIndex}`;
  const subjectOf = (key: string): string => `$KV.${BUCKETS.fleet}.${key}`;
  const indexSubjectOf = (key: string): string => `$KV.${BUCKETS.fleetIndex}.${key}`;
  // Every tenant key's subject starts so (`ALL_FLEET_KEYS` less its wildcard).
  const recordsFilter = subjectOf(ALL_FLEET_KEYS);
  const keysPrefix = recordsFilter.slice(0, -1);
  const attentionFilter = subjectOf(ALL_FLEET_ATTENTION_KEYS);
  const attentionPrefix = attentionFilter.slice(0, -1);

  /**
   * Keeps the attention index in step with a record change: a copy while the tenant is not
   * current, nothing once it is. Removed without a tombstone left behind to scan (`forget`). Two writers racing on one tenant may leave a stale copy: readers check each copy
   * against the record (`pageFleet`), and a recount rebuilds the index.
   */
  async function syncAttention(change: FleetChange): Promise<void> {
    const key = fleetAttentionKey(change.next.tenantId);
    if (change.next.status !== 'current') await kv.put(key, encodeJson(change.next));
    else if (change.prev && change.prev.status !== 'current') await forget(kv, stream, key);
  }

  /**
   * Keeps the fleet index in step with a record change: the keys the record had and has no more
   * are removed (`forget`: no tombstone), then the new ones written, with no value. A change that keeps the
   * host, status, version and tags (a re-run that finds the tenant as it was) writes nothing.
   * Removed before written, so two writers racing on one tenant leave at worst a stale key (readers
   * check each key against the record: `pointedRecordMatches`) — or, when the later one writes back
   * a key the earlier one is still removing, a missing one, until the tenant's next change or a
   * recount.
   */
  async function syncIndex(change: FleetChange): Promise<void> {
    const before = change.prev ? fleetIndexKeys(change.prev) : [];
    const after = fleetIndexKeys(change.next);
    await Promise.all(before.filter((key) => !after.includes(key)).map((key) => forget(indexKv, indexStream, key)));
    await Promise.all(after.filter((key) => !before.includes(key)).map((key) => indexKv.put(key, NO_VALUE)));
  }

  /**
   * Removes a key without leaving a tombstone: its message is deleted by sequence. Not a stream
   * purge by subject, which on nats-server 2.9 loads (and then drops) the cache of the block that
   * holds the key, under the stream's lock: ~80 ms a key once the bucket outgrows the blocks in
   * memory, against ~2 ms for a get and a delete. Gone already (a writer racing on the key): done.
   */
  async function forget(bucket: KV, bucketStream: string, key: string): Promise<void> {
    const entry = await bucket.get(key);
    if (!entry) return;
    try {
      await bus.jsm.streams.deleteMessage(bucketStream, entry.revision, false);
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.NoMessageFound) return;
      throw error;
    }
  }

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
      if (attempt >= CAS_ATTEMPTS) throw new FleetContentionError(key, attempt);
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
      if (made) await Promise.all([syncAttention(made), syncIndex(made)]);
      return made;
    },
    async summary(change) {
      if (!change) return summaryOf((await read(FLEET_SUMMARY_KEY)).value);
      const at = new Date().toISOString();
      const written = await casLoop(FLEET_SUMMARY_KEY, (value) =>
        'set' in change ? change.set : change.delta.applyTo(summaryOf(value), at),
      );
      return written ?? summaryOf(undefined);
    },
    async recount() {
      const builder = new FleetSummaryBuilder();
      await bus.jsm.streams.purge(stream, { filter: attentionFilter });
      await bus.jsm.streams.purge(indexStream);
      // Millions of index keys: written as core publishes with an ack per batch (`BulkWriter`),
      // a tenth of a KV put's cost; the scan waits only while two batches are unacknowledged.
      const index = await BulkWriter.open(bus, indexStream);
      const attention = await BulkWriter.open(bus, stream);
      await scan(1, (record) => {
        builder.add(record);
        const waits: Promise<void>[] = [];
        for (const key of fleetIndexKeys(record)) {
          const wait = index.put(indexSubjectOf(key), NO_VALUE);
          if (wait) waits.push(wait);
        }
        if (record.status !== 'current') {
          const wait = attention.put(subjectOf(fleetAttentionKey(record.tenantId)), encodeJson(record));
          if (wait) waits.push(wait);
        }
        return waits.length > 0 ? Promise.all(waits).then(() => true) : true;
      });
      await Promise.all([index.end(), attention.end()]);
      const summary = builder.build();
      await kv.put(FLEET_SUMMARY_KEY, encodeJson(summary));
      return summary;
    },
    scan,
    async scanIndex(selector, fromSeq, onPointer) {
      const filter = indexSubjectOf(fleetIndexFilter(selector));
      const keyAt = indexSubjectOf('').length;
      let scanned = 0;
      const end = await scanSubject(bus, indexStream, filter, fromSeq, (msg) => {
        if (msg.deleted) return;
        const pointer = parseFleetIndexKey(msg.subject.slice(keyAt));
        if (!pointer) return;
        scanned += 1;
        return onPointer(pointer, msg.seq);
      });
      return { scanned, ...(end.nextSeq !== undefined ? { nextSeq: end.nextSeq } : {}) };
    },
  };

  async function scan(
    fromSeq: number,
    onRecord: (record: FleetRecord, seq: number) => boolean | void | Promise<boolean | void>,
    options: { attention?: boolean; query?: FleetQuery } = {},
  ): Promise<FleetScanResult> {
    const { query } = options;
    const mayMatch = query ? fleetQueryPrefilter(query) : undefined;
    let scanned = 0;
    // The records are a third of the bucket (the fleet index is the rest): the server picks them.
    const filter = options.attention ? attentionFilter : recordsFilter;
    const end = await scanSubject(bus, stream, filter, fromSeq, (msg) => {
      if (msg.deleted || !msg.subject.startsWith(options.attention ? attentionPrefix : keysPrefix)) return;
      scanned += 1;
      if (mayMatch && !mayMatch(msg.data)) return;
      const record = scannedRecordOf(msg.data);
      if (!record) {
        scanned -= 1;
        return;
      }
      if (query && !matchesFleetQuery(record, query)) return;
      return onRecord(record, msg.seq);
    });
    return { scanned, ...(end.nextSeq !== undefined ? { nextSeq: end.nextSeq } : {}) };
  }
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

/**
 * A test on a record's bytes that is false only for records `query` cannot match, so a scan skips
 * most of a fleet without decoding it (decoding was half the time of a million-record scan). It
 * relies on records being written as `JSON.stringify` writes them (`encodeJson`, the only writer):
 * a field the query names then appears as `"host":"db1:5432"`, byte for byte, or the record does
 * not hold it. A match here is only a candidate: the decoded record is checked in full.
 */
export function fleetQueryPrefilter(query: FleetQuery): ((data: Uint8Array) => boolean) | undefined {
  const pair = (key: string, value: string): Buffer => Buffer.from(`${JSON.stringify(key)}:${JSON.stringify(value)}`);
  // Every group must be found; within a group, any one of its needles.
  const groups: Buffer[][] = [];
  if (query.host !== undefined) groups.push([pair('host', query.host)]);
  for (const [key, value] of Object.entries(query.tags ?? {})) groups.push([pair(key, value)]);
  if (query.statuses && query.statuses.length > 0) groups.push(query.statuses.map((s) => pair('status', s)));
  if (groups.length === 0) return undefined;
  return (data) => {
    const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return groups.every((group) => group.some((needle) => bytes.includes(needle)));
  };
}
