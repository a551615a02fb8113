import type { FleetStore } from '@sluice/bus';
import {
  type FleetRecord,
  type FleetSummary,
  type RunAcceptedEvent,
  type TenantOutcome,
  tenantOutcome,
} from '@sluice/contracts';
import { emptyFleetSummary, matchesFleetQuery } from '@sluice/core';
import { createLogger } from '@sluice/telemetry';
import { describe, expect, it } from 'vitest';

import { createFleetWriter } from '../src/fleet-writer.js';

const logger = createLogger({ service: 'fleet-writer-test', level: 'silent' });

/** The fleet store port in memory, compare-and-set like the KV one (an await between read and write). */
function memoryFleetStore(): FleetStore & { records: Map<string, FleetRecord>; writes: number } {
  const records = new Map<string, FleetRecord>();
  let summary: FleetSummary = emptyFleetSummary();
  const store = {
    records,
    writes: 0,
    get: (id: string) => Promise.resolve(records.get(id)),
    async update(id: string, change: (prev: FleetRecord | undefined) => FleetRecord | undefined) {
      for (;;) {
        const prev = records.get(id);
        await Promise.resolve();
        const next = change(prev);
        if (!next) return undefined;
        if (records.get(id) !== prev) continue;
        records.set(id, next);
        store.writes += 1;
        return { ...(prev ? { prev } : {}), next };
      }
    },
    summary(change?: Parameters<FleetStore['summary']>[0]) {
      if (change) summary = 'set' in change ? change.set : change.delta.applyTo(summary, 'now');
      return Promise.resolve(summary);
    },
    recount: () => Promise.resolve(summary),
    // The writer never lists: its index keys are the store's business (packages/bus tests them).
    scanIndex: () => Promise.resolve({ scanned: 0 }),
    scan(
      _from: number,
      onRecord: (r: FleetRecord, seq: number) => boolean | void,
      options?: Parameters<FleetStore['scan']>[2],
    ) {
      let scanned = 0;
      for (const r of records.values()) {
        scanned += 1;
        if (options?.query && !matchesFleetQuery(r, options.query)) continue;
        if (onRecord(r, scanned) === false) break;
      }
      return Promise.resolve({ scanned });
    },
  };
  return store;
}

const accepted = (runId: string): RunAcceptedEvent => ({
  runId,
  target: 'latest',
  targetVersion: 6,
  digest: 'a'.repeat(64),
  dryRun: false,
  acceptedAt: '2026-11-30T00:00:00.000Z',
});

const outcome = (runId: string, tenantId: string, result: Partial<TenantOutcome> = {}): TenantOutcome => ({
  ...tenantOutcome(
    { runId, tenantId, host: 'db1:5432', attempts: 1, finishedAt: '2026-11-30T00:00:01.000Z' },
    { status: 'migrated', applied: [6], fromVersion: 5, toVersion: 6 },
  ),
  ...result,
});

describe('fleet writer', () => {
  it('writes a record per outcome and the summary, and settles a run once both are written', async () => {
    const store = memoryFleetStore();
    const writer = createFleetWriter({ store, logger, options: { flushMs: 10_000 } });
    // An outcome before its run's accepted event waits for it.
    writer.onOutcome(outcome('r1', 'a'));
    writer.onAccepted(accepted('r1'));
    writer.onOutcome(
      outcome('r1', 'b', {
        status: 'failed',
        error: { code: 'sql_error', message: 'x', transient: false, version: 6 },
      }),
    );
    writer.onOutcome(outcome('r1', 'c', { status: 'skipped' }));
    await writer.settled('r1');
    expect([...store.records.keys()].sort()).toEqual(['a', 'b']);
    expect(store.records.get('b')).toMatchObject({ status: 'failed', version: 5 });
    expect(await store.summary()).toMatchObject({ total: 2, statuses: { current: 1, failed: 1 } });
    expect([...store.records.values()].filter((r) => matchesFleetQuery(r, {}))).toHaveLength(1);
  });

  it('outcomes that arrive within the linger are written together, a full window at once', async () => {
    const store = memoryFleetStore();
    let started = 0;
    let running = 0;
    let mostAtOnce = 0;
    const update = store.update.bind(store);
    store.update = async (id, change) => {
      started += 1;
      running += 1;
      mostAtOnce = Math.max(mostAtOnce, running);
      try {
        return await update(id, change);
      } finally {
        running -= 1;
      }
    };
    // A linger no test outlives: only a full window or the run's settling starts the writes.
    const writer = createFleetWriter({ store, logger, options: { lingerMs: 60_000, concurrency: 4 } });
    writer.onAccepted(accepted('r3'));
    for (const id of ['a', 'b', 'c']) {
      writer.onOutcome(outcome('r3', id));
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(started).toBe(0);
    // The fourth fills the window: all four go out together.
    writer.onOutcome(outcome('r3', 'd'));
    expect(started).toBe(4);
    writer.onOutcome(outcome('r3', 'e'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toBe(4);
    // The run settling does not wait out the linger.
    await writer.settled('r3');
    expect(started).toBe(5);
    expect(mostAtOnce).toBe(4);
    expect([...store.records.keys()].sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(await store.summary()).toMatchObject({ total: 5, statuses: { current: 5 } });

    // Without a linger each outcome is written as it comes.
    const eager = memoryFleetStore();
    const now = createFleetWriter({ store: eager, logger, options: { lingerMs: 0 } });
    now.onAccepted(accepted('r4'));
    now.onOutcome(outcome('r4', 'a'));
    await now.idle();
    expect(eager.writes).toBe(1);
  });

  it('two replicas folding the same outcomes change each record once and count it once', async () => {
    const store = memoryFleetStore();
    const writers = [1, 2].map(() => createFleetWriter({ store, logger }));
    for (const w of writers) w.onAccepted(accepted('r2'));
    for (const id of ['a', 'b', 'c']) for (const w of writers) w.onOutcome(outcome('r2', id));
    for (const w of writers) await w.idle();
    expect(store.writes).toBe(3);
    expect(await store.summary()).toMatchObject({ total: 3, statuses: { current: 3 }, versions: { '6': 3 } });
  });
});
