import { type Bus, decodeJson, type JsMsg, publishIfLast, type RunControlStore } from '@sluice/bus';
import {
  isRunEventName,
  isRunId,
  parseLedgerSubject,
  parseRunEventSubject,
  RunAcceptedEventSchema,
  RunCompletedEventSchema,
  RunControlEventSchema,
  type RunEventName,
  runEventSubject,
  type RunLostEvent,
  RunLostEventSchema,
  RunPlannedEventSchema,
  STREAMS,
  TaskLedgerEntrySchema,
  tenantLedgerEntries,
  TenantOutcomeSchema,
} from '@sluice/contracts';
import type { Logger } from '@sluice/telemetry';

import { createCompletion } from './completion.js';
import { createControlRejecter } from './control-rejections.js';
import { createControlSync } from './control-sync.js';
import type { FleetWriter } from './fleet-writer.js';
import { createFlushQueue } from './flush-queue.js';
import { createParkedRelease } from './parked-release.js';
import { createRolloutDecisions } from './rollout-decisions.js';
import { RunBook } from './run-book.js';
import { RunTraces } from './run-trace.js';
import { progressMoved } from './run-verdicts.js';
import { createTaskReleaser } from './task-releaser.js';

export interface ReporterOptions {
  /** A queued task with no outcome for this long is looked up in the work queue, and published again if it is gone. */
  reconcileAfterMs?: number;
  /** Most work-queue look-ups per run and sweep. */
  reconcileBatch?: number;
  /** Least time between two progress events of a run (also the bucket of their message ids). */
  progressIntervalMs?: number;
  /** Malformed controls from this SLUICE_RUNS sequence on are answered with `rejected` (older ones were answered before). */
  rejectControlsFrom?: number;
}

export interface ReporterDeps {
  bus: Bus;
  logger: Logger;
  /** Where run control states are written for executors (none: executors are not told). */
  controls?: RunControlStore;
  book?: RunBook;
  /** Where tenants' fleet records are written as outcomes arrive (none: no fleet state). */
  fleet?: FleetWriter;
  options?: ReporterOptions;
  /**
   * Runs lost with the JetStream store, with their `lost` events (read from the stream, or the
   * reporter's own for the runs in flight when it saw the store reset): late outcomes and ledger
   * entries of theirs are not counted, and the HTTP API shows them as lost.
   */
  lostRuns?: Map<string, RunLostEvent>;
  now?: () => number;
}

/**
 * Feeds run events, outcomes and task ledger entries into the run book, and runs what falls due
 * for each run they touch, through one flush queue, in this order: sync its control state to the
 * bucket executors obey (control-sync.ts); publish its completion (completion.ts) — and then
 * nothing else; publish a rollout decision (rollout-decisions.ts); release or skip its parked
 * tasks (parked-release.ts). Every publication is safe with several replicas: `completed` is
 * stored only if the run has none yet, and progress only on top of the run's last progress event
 * (expected last subject sequence); rollout decisions and re-published tasks carry deterministic
 * message ids; control states are written compare-and-set, never backwards. Nothing is published
 * until the replay has caught up (`goLive`).
 */
export function createReporter(deps: ReporterDeps) {
  const { bus, logger } = deps;
  const now = deps.now ?? Date.now;
  const book = deps.book ?? new RunBook(now);
  const options = { reconcileAfterMs: 120_000, reconcileBatch: 1_000, progressIntervalMs: 1_000, ...deps.options };
  const traces = new RunTraces();
  const controlRejecter = createControlRejecter({ bus, logger, fromSeq: options.rejectControlsFrom ?? 0 });
  const releaser = createTaskReleaser({ bus, logger, book, now });
  const controlSync = createControlSync({ ...(deps.controls ? { controls: deps.controls } : {}), now });
  const completion = createCompletion({ bus, logger, book, traces });
  const rollout = createRolloutDecisions({ bus, logger, now });
  const parked = createParkedRelease({ controlSync, releaser, now });
  const queue = createFlushQueue({ logger, flushRun });
  const lostRuns = deps.lostRuns ?? new Map<string, RunLostEvent>();
  let live = false;

  /** The effects due for one run, in order. */
  async function flushRun(runId: string): Promise<void> {
    const run = book.get(runId);
    if (!run) return;
    await controlSync.sync(run);
    if (completion.isClosing(runId)) return;
    // A run's fleet records are written before its completion: `completed` means the state shows it.
    if (deps.fleet && book.completionDue(runId)) await deps.fleet.settled(runId);
    if (await completion.completeIfDue(runId)) return;
    await rollout.decide(run);
    await parked.release(run);
  }

  function decode(msg: JsMsg): unknown {
    try {
      return decodeJson(msg.data);
    } catch {
      logger.warn({ subject: msg.subject }, 'ignoring a message that is not JSON');
      return undefined;
    }
  }

  function onRunEvent(msg: JsMsg): void {
    if (controlRejecter.check(msg, (runId) => book.get(runId)?.accepted !== undefined)) return;
    const address = parseRunEventSubject(msg.subject);
    if (!address || !isRunId(address.runId)) return;
    const { runId, event } = address;
    // Progress is ours and says nothing new: not even decoded (most of the stream on replay).
    if (!isRunEventName(event) || event === 'progress') return;
    if (event === 'lost') {
      // Not a run of the book: its other events went with the old store. Remembered so that its
      // late outcomes (tenants that were being migrated) do not open a run that can never complete.
      // The stream's copy wins over this reporter's own: another replica's may have been stored first.
      const lost = RunLostEventSchema.safeParse(decode(msg));
      if (lost.success && lost.data.runId === runId) lostRuns.set(runId, lost.data);
      return;
    }
    // A planner that was mid-plan may still publish the run's `planned` into the new store: the run
    // stays lost (its outcomes are not counted) until `sluice runs recover` publishes `completed` —
    // or the runId is requested again (a new `accepted`): then it is a run like any other.
    if (lostRuns.has(runId) && event === 'accepted') lostRuns.delete(runId);
    else if (lostRuns.has(runId) && event !== 'completed') return;
    const data = decode(msg);
    if (data === undefined) return;
    if (!foldRunEvent(runId, event, data, msg)) {
      logger.warn({ subject: msg.subject }, 'ignoring a malformed run event');
      return;
    }
    queue.mark(runId);
  }

  /** Folds one run event into the book; false when it is malformed or names another run. */
  function foldRunEvent(
    runId: string,
    event: Exclude<RunEventName, 'progress' | 'lost'>,
    data: unknown,
    msg: JsMsg,
  ): boolean {
    switch (event) {
      case 'accepted': {
        const parsed = RunAcceptedEventSchema.safeParse(data);
        if (!parsed.success || parsed.data.runId !== runId) return false;
        book.onAccepted(parsed.data, msg.seq);
        deps.fleet?.onAccepted(parsed.data);
        traces.onAccepted(runId, msg);
        return true;
      }
      case 'planned': {
        const parsed = RunPlannedEventSchema.safeParse(data);
        if (!parsed.success || parsed.data.runId !== runId) return false;
        book.onPlanned(parsed.data);
        return true;
      }
      case 'completed': {
        const parsed = RunCompletedEventSchema.safeParse(data);
        if (!parsed.success || parsed.data.runId !== runId) return false;
        book.onCompleted(parsed.data, msg.seq);
        completion.onCompleted(runId);
        traces.forget(runId);
        return true;
      }
      case 'control': {
        const parsed = RunControlEventSchema.safeParse(data);
        if (!parsed.success || parsed.data.runId !== runId) return false;
        const control = parsed.data;
        if (book.onControl(control, msg.seq))
          logger.info(
            { runId, action: control.action, reason: control.reason, requestedBy: control.requestedBy },
            `run ${control.action}`,
          );
        return true;
      }
    }
  }

  function onOutcome(msg: JsMsg): void {
    const data = decode(msg);
    if (data === undefined) return;
    const parsed = TenantOutcomeSchema.safeParse(data);
    if (!parsed.success) {
      logger.warn({ subject: msg.subject }, 'ignoring a malformed outcome');
      return;
    }
    if (lostRuns.has(parsed.data.runId)) return;
    traces.onOutcome(parsed.data, msg);
    deps.fleet?.onOutcome(parsed.data);
    if (book.onOutcome(parsed.data)) queue.mark(parsed.data.runId);
  }

  function onLedger(msg: JsMsg): void {
    const runId = parseLedgerSubject(msg.subject);
    const data = runId !== undefined && isRunId(runId) ? decode(msg) : undefined;
    if (runId === undefined || data === undefined || lostRuns.has(runId)) return;
    const parsed = TaskLedgerEntrySchema.safeParse(data);
    if (!parsed.success) {
      logger.warn({ subject: msg.subject }, 'ignoring a malformed task ledger entry');
      return;
    }
    const at = Math.floor(msg.info.timestampNanos / 1e6);
    // A batch is its tasks' `planned` entries, all at the batch's sequence (where each is found again).
    let moved = false;
    for (const e of tenantLedgerEntries(parsed.data)) moved = book.onLedger(runId, e, msg.seq, at) || moved;
    if (moved) queue.mark(runId);
  }

  /** Called once the streams are replayed: from now on, what falls due is published. */
  async function goLive(): Promise<void> {
    live = true;
    for (const run of book.list()) if (!run.completed) queue.mark(run.runId);
    await queue.goLive();
    // Completed runs only need their final control state in the KV (in case the reporter that
    // completed them died first): checked in the background, ready does not wait for history.
    if (deps.controls) for (const run of book.list()) if (run.completed) queue.mark(run.runId);
  }

  /**
   * Publishes a progress event for each run that moved — unless the run's last progress event, by
   * whichever replica, is younger than the interval. The publish expects that last event to still
   * be the last, so replicas racing for the same interval publish one event between them.
   */
  async function publishProgress(): Promise<void> {
    if (!live) return;
    for (const run of book.list()) {
      if (!progressMoved(run)) continue;
      const subject = runEventSubject(run.runId, 'progress');
      const last = await bus.jsm.streams.getMessage(STREAMS.runs.name, { last_by_subj: subject });
      if (last && now() - last.time.getTime() < options.progressIntervalMs) continue;
      const event = book.progressDue(run.runId);
      if (!event) continue;
      book.onProgress(event);
      await publishIfLast(bus, subject, event, last?.seq ?? 0, { attempts: 2 });
    }
  }

  /**
   * Looks for lost tasks of every unfinished run and publishes them again; and looks at each
   * unfinished run's due effects once more (a decision or a release whose message was lost).
   */
  async function reconcile(): Promise<number> {
    let republished = 0;
    for (const run of book.list()) {
      if (run.completed) continue;
      queue.mark(run.runId);
      if (run.control.state === 'paused') continue;
      republished += await releaser.reconcile(run, options.reconcileAfterMs, options.reconcileBatch);
    }
    return republished;
  }

  /** Settles outstanding effects (tests and shutdown). */
  async function idle(): Promise<void> {
    await queue.idle();
    await controlRejecter.idle();
    await deps.fleet?.idle();
  }

  return { book, onRunEvent, onOutcome, onLedger, goLive, publishProgress, reconcile, idle };
}

export type Reporter = ReturnType<typeof createReporter>;
