import type { FleetStore } from '@sluice/bus';
import type { RunAcceptedEvent, TenantOutcome } from '@sluice/contracts';
import { type FleetRunContext, FleetSummaryDelta, nextFleetRecord } from '@sluice/core';
import type { Logger } from '@sluice/telemetry';

export interface FleetWriterOptions {
  /** Record updates in flight at once. */
  concurrency?: number;
  /** Longest time a summary change waits to be added (changes in between are added as one). */
  flushMs?: number;
}

/**
 * Writes each tenant's fleet record as its outcomes arrive, and keeps the summary in step. A record
 * is changed compare-and-set from the one read (see `nextFleetRecord`), so two reporters folding
 * the same outcome change it once and count it once; the summary gets the changes this replica
 * made, added together and written every `flushMs` (one compare-and-set for many tenants). A
 * reporter killed between a record write and the next summary write leaves the summary short by
 * those changes: `sluice fleet --recount` counts the records again.
 */
export function createFleetWriter(deps: { store: FleetStore; logger: Logger; options?: FleetWriterOptions }) {
  const { store, logger } = deps;
  const concurrency = deps.options?.concurrency ?? 32;
  const flushMs = deps.options?.flushMs ?? 200;
  /** Runs' contexts by runId (from `accepted`); outcomes of a run not seen yet wait for it. */
  const runs = new Map<string, FleetRunContext>();
  const waiting = new Map<string, TenantOutcome[]>();
  const queue: Array<{ outcome: TenantOutcome; run: FleetRunContext }> = [];
  let inFlight = 0;
  let pending = new FleetSummaryDelta();
  let flushTimer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> | undefined;
  const idleWaiters: Array<() => void> = [];

  function onAccepted(event: RunAcceptedEvent): void {
    if (runs.has(event.runId)) return;
    const run = { digest: event.digest, targetVersion: event.targetVersion };
    runs.set(event.runId, run);
    for (const outcome of waiting.get(event.runId) ?? []) queue.push({ outcome, run });
    waiting.delete(event.runId);
    pump();
  }

  function onOutcome(outcome: TenantOutcome): void {
    // Nothing for the fleet state in these: no journal was read.
    if (outcome.status === 'skipped' || outcome.from === 'fleet-state') return;
    const run = runs.get(outcome.runId);
    if (!run) {
      const list = waiting.get(outcome.runId) ?? [];
      list.push(outcome);
      waiting.set(outcome.runId, list);
      return;
    }
    queue.push({ outcome, run });
    pump();
  }

  function pump(): void {
    while (inFlight < concurrency && queue.length > 0) {
      const item = queue.shift()!;
      inFlight += 1;
      store
        .update(item.outcome.tenantId, (prev) => nextFleetRecord(prev, item.outcome, item.run))
        .then((change) => {
          if (!change) return;
          pending.change(change.prev, change.next);
          scheduleFlush();
        })
        .catch((error: unknown) =>
          logger.warn(
            { err: error, runId: item.outcome.runId, tenantId: item.outcome.tenantId },
            'fleet state not written',
          ),
        )
        .finally(() => {
          inFlight -= 1;
          pump();
          settleIdle();
        });
    }
  }

  function scheduleFlush(): void {
    flushTimer ??= setTimeout(() => {
      flushTimer = undefined;
      void flush();
    }, flushMs);
  }

  async function flush(): Promise<void> {
    if (flushing) return flushing;
    if (pending.empty) return;
    const delta = pending;
    pending = new FleetSummaryDelta();
    flushing = store
      .adjustSummary({ delta })
      .catch((error: unknown) => {
        logger.warn({ err: error }, 'fleet summary not written; kept for the next write');
        pending.merge(delta);
        scheduleFlush();
      })
      .finally(() => {
        flushing = undefined;
        settleIdle();
      });
    return flushing;
  }

  function busy(): boolean {
    return inFlight > 0 || queue.length > 0 || flushing !== undefined || !pending.empty;
  }

  function settleIdle(): void {
    if (busy()) return;
    for (const resolve of idleWaiters.splice(0)) resolve();
  }

  /** Resolves once every queued outcome is written and the summary holds it (tests, shutdown). */
  async function idle(): Promise<void> {
    while (busy()) {
      if (!pending.empty && inFlight === 0 && queue.length === 0 && !flushing) {
        clearTimeout(flushTimer);
        flushTimer = undefined;
        await flush();
        continue;
      }
      await new Promise<void>((resolve) => idleWaiters.push(resolve));
    }
  }

  return { onAccepted, onOutcome, idle };
}

export type FleetWriter = ReturnType<typeof createFleetWriter>;
