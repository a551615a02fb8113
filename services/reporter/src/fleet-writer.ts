import type { FleetStore } from '@sluice/bus';
import type { RunAcceptedEvent, TenantOutcome } from '@sluice/contracts';
import { type FleetRunContext, FleetSummaryDelta, nextFleetRecord } from '@sluice/core';
import type { Logger } from '@sluice/telemetry';

/** Outcomes held for runs whose `accepted` event has not been seen, at most. */
const MAX_WAITING = 100_000;

export interface FleetWriterOptions {
  /** Record updates in flight at once. */
  concurrency?: number;
  /** Longest time a summary change waits to be added (changes in between are added as one). */
  flushMs?: number;
  /**
   * How long an outcome waits before its record is written, so the outcomes that arrive meanwhile
   * go out together (0: at once). At the tens of tenants a second of a real run each outcome
   * otherwise costs its own round trips — a get and a put, each its own socket write and its own
   * wake-up for the reply (500 tenants at 0 ms: 2.9–3.0 reporter writes a tenant at once, 1.8–1.9
   * with 20 ms). A full window (`concurrency` queued) goes out at once.
   */
  lingerMs?: number;
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
  const lingerMs = deps.options?.lingerMs ?? 20;
  let lingerTimer: NodeJS.Timeout | undefined;
  /** Runs' contexts by runId (from `accepted`); outcomes of a run not seen yet wait for it. */
  const runs = new Map<string, FleetRunContext>();
  const waiting = new Map<string, TenantOutcome[]>();
  let waitingCount = 0;
  const queue: Array<{ outcome: TenantOutcome; run: FleetRunContext }> = [];
  /** Outcomes of each run queued or being written. */
  const perRun = new Map<string, number>();
  let inFlight = 0;
  let pending = new FleetSummaryDelta();
  let flushTimer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> | undefined;
  const idleWaiters: Array<() => void> = [];

  function onAccepted(event: RunAcceptedEvent): void {
    if (runs.has(event.runId)) return;
    const run: FleetRunContext = {
      digest: event.digest,
      targetVersion: event.targetVersion,
      ...(event.audit ? { audit: event.audit } : {}),
    };
    runs.set(event.runId, run);
    const early = waiting.get(event.runId) ?? [];
    for (const outcome of early) enqueue(outcome, run);
    waiting.delete(event.runId);
    waitingCount -= early.length;
    pumpSoon();
  }

  function onOutcome(outcome: TenantOutcome): void {
    // Nothing for the fleet state in these: no journal was read.
    if (outcome.status === 'skipped' || outcome.from === 'fleet-state') return;
    const run = runs.get(outcome.runId);
    if (!run) {
      // Outcomes of a run whose `accepted` never comes (a malformed one) must not pile up forever.
      if (waitingCount >= MAX_WAITING) {
        logger.warn(
          { runId: outcome.runId, tenantId: outcome.tenantId },
          'fleet state: outcome of an unknown run dropped',
        );
        return;
      }
      const list = waiting.get(outcome.runId) ?? [];
      list.push(outcome);
      waiting.set(outcome.runId, list);
      waitingCount += 1;
      return;
    }
    enqueue(outcome, run);
    pumpSoon();
  }

  function enqueue(outcome: TenantOutcome, run: FleetRunContext): void {
    queue.push({ outcome, run });
    perRun.set(outcome.runId, (perRun.get(outcome.runId) ?? 0) + 1);
  }

  /** Starts the queued writes once the linger is over, or now when a window's worth is waiting. */
  function pumpSoon(): void {
    if (lingerMs <= 0 || queue.length >= concurrency) return pump();
    lingerTimer ??= setTimeout(() => {
      lingerTimer = undefined;
      pump();
    }, lingerMs);
  }

  function pump(): void {
    clearTimeout(lingerTimer);
    lingerTimer = undefined;
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
          const left = (perRun.get(item.outcome.runId) ?? 1) - 1;
          if (left > 0) perRun.set(item.outcome.runId, left);
          else perRun.delete(item.outcome.runId);
          pumpSoon();
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
      .summary({ delta })
      .then(() => undefined)
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

  /** Wakes every waiter to look at its condition again (a write or a flush ended). */
  function settleIdle(): void {
    for (const resolve of idleWaiters.splice(0)) resolve();
  }

  /**
   * Resolves once every queued outcome has been written (or failed to be) and the summary has been
   * written once more (tests, shutdown). One summary attempt: with NATS gone, shutdown must not spin.
   */
  async function idle(): Promise<void> {
    pump();
    while (inFlight > 0 || queue.length > 0) await new Promise<void>((resolve) => idleWaiters.push(resolve));
    if (flushing) await flushing;
    clearTimeout(flushTimer);
    flushTimer = undefined;
    await flush();
  }

  /**
   * Resolves once every outcome of the run seen so far is in the fleet state and the summary holds
   * it: the reporter waits for this before it publishes the run's `completed`, so a reader of the
   * fleet state after `completed` sees the run.
   */
  async function settled(runId: string): Promise<void> {
    // The run's last outcome is in: its completion need not wait out the linger.
    if (perRun.has(runId)) pump();
    while (perRun.has(runId) || waiting.has(runId)) {
      if (waiting.has(runId) && !perRun.has(runId)) return; // its accepted event never came: nothing to write with
      await new Promise<void>((resolve) => idleWaiters.push(resolve));
    }
    if (flushing) await flushing;
    if (!pending.empty) {
      clearTimeout(flushTimer);
      flushTimer = undefined;
      await flush();
    }
  }

  return { onAccepted, onOutcome, idle, settled };
}

export type FleetWriter = ReturnType<typeof createFleetWriter>;
