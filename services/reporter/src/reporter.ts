import { type Bus, decodeJson, type JsMsg, publishIfLast, publishOnce, type RunControlStore } from '@sluice/bus';
import {
  isRunId,
  parseLedgerSubject,
  parseRunEventSubject,
  rolloutMsgId,
  RunAcceptedEventSchema,
  RunCompletedEventSchema,
  RunControlEventSchema,
  runEventMsgId,
  runEventSubject,
  RunPlannedEventSchema,
  STREAMS,
  TaskLedgerEntrySchema,
  TenantOutcomeSchema,
} from '@sluice/contracts';
import type { Logger } from '@sluice/telemetry';

import { createControlRejecter } from './control-rejections.js';
import { RunBook } from './run-book.js';
import { RunTraces } from './run-trace.js';
import { progressMoved, rolloutVerdict } from './run-verdicts.js';
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
  options?: ReporterOptions;
  now?: () => number;
}

const DECISION_RETRY_MS = 30_000;
const CONTROL_SETTLE_MS = 200;

/**
 * Feeds run events, outcomes and task ledger entries into the run book, and publishes what falls
 * due. Every publication is safe with several replicas: `completed` is stored only if the run has
 * none yet, and progress only on top of the run's last progress event (expected last subject
 * sequence); rollout decisions and re-published tasks carry deterministic message ids; control
 * states are written compare-and-set, never backwards. Nothing is published until the replay has
 * caught up (`goLive`).
 */
export function createReporter(deps: ReporterDeps) {
  const { bus, logger } = deps;
  const now = deps.now ?? Date.now;
  const book = deps.book ?? new RunBook(now);
  const options = { reconcileAfterMs: 120_000, reconcileBatch: 1_000, progressIntervalMs: 1_000, ...deps.options };
  const releaser = createTaskReleaser({ bus, logger, book, now });
  const controlRejecter = createControlRejecter({ bus, logger, fromSeq: options.rejectControlsFrom ?? 0 });
  const traces = new RunTraces();
  let live = false;
  const dirty = new Set<string>();
  let flushing: Promise<void> | undefined;
  /** Control state last written to the KV per run (its seq), and when. */
  const savedControl = new Map<string, { seq: number; at: number }>();
  /** Rollout decisions published (action and when), not published again for a while. */
  const decided = new Map<string, { action: string; at: number }>();
  /** Completions published or found, not yet folded back from the stream. */
  const completing = new Set<string>();

  function schedule(runId: string): void {
    dirty.add(runId);
    if (live) void flush();
  }

  /** Runs due effects of dirty runs, one pass at a time. Resolves when nothing is dirty. */
  function flush(): Promise<void> {
    // `finally` runs as a later microtask, so `flushing` is cleared only after it was set.
    flushing ??= drain().finally(() => (flushing = undefined));
    return flushing;
  }

  async function drain(): Promise<void> {
    while (dirty.size > 0) {
      const batch = [...dirty];
      dirty.clear();
      for (const runId of batch) {
        try {
          await settleRun(runId);
        } catch (error) {
          logger.warn({ err: error, runId }, 'run effects failed; trying again shortly');
          setTimeout(() => schedule(runId), 1_000).unref();
        }
      }
    }
  }

  async function settleRun(runId: string): Promise<void> {
    const run = book.get(runId);
    if (!run) return;
    if (deps.controls && run.control.seq > (savedControl.get(runId)?.seq ?? -1) && (run.accepted || run.completed)) {
      const seq = run.control.seq;
      await deps.controls.save(run.control);
      savedControl.set(runId, { seq, at: now() });
    }
    if (run.completed || completing.has(runId)) return;
    const completion = book.completionDue(runId);
    if (completion) {
      if (run.accepted?.traceId) completion.traceId ??= run.accepted.traceId;
      const recordTrace = traces.prepareCompletion(runId);
      completing.add(runId);
      let published: boolean;
      try {
        ({ published } = await publishOnce(bus, runEventSubject(runId, 'completed'), completion, { msgId: runEventMsgId(runId, 'completed') }));
      } catch (error) {
        completing.delete(runId);
        throw error;
      }
      if (published) {
        book.onCompleted(completion);
        recordTrace(completion);
        logger.info({ runId, status: completion.status, counts: completion.counts, durationMs: completion.durationMs }, 'run completed');
      } else {
        logger.info({ runId }, 'run already completed by another reporter');
      }
      return;
    }
    const verdict = rolloutVerdict(run);
    const last = decided.get(runId);
    // Published again if it has not come back after a while (a lost message); the message id absorbs repeats.
    if (verdict && (last?.action !== verdict.action || now() - last.at > DECISION_RETRY_MS)) {
      decided.set(runId, { action: verdict.action, at: now() });
      await bus.publish(
        runEventSubject(runId, 'control'),
        { runId, action: verdict.action, ...(verdict.action === 'stop' ? { reason: verdict.reason } : {}), requestedBy: 'sluice-reporter (rollout)', at: new Date(now()).toISOString() },
        { msgId: rolloutMsgId(runId, verdict.action) },
      );
      logger.info({ runId, ...verdict }, verdict.action === 'promote' ? 'canaries succeeded; fleet promoted' : 'rollout stopped the run');
    }
    if (run.tenants.parkedCount === 0) return;
    const saved = savedControl.get(runId);
    if (deps.controls) {
      // Parked tasks are released by the state executors obey: only once it is in the KV (a
      // control folded meanwhile brings another pass), and a moment later, as executors learn it
      // from a watch — a task released before that would only be parked again.
      if (!saved || saved.seq < run.control.seq) return;
      const wait = saved.at + CONTROL_SETTLE_MS - now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    await releaser.releaseParked(run);
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
    if (event === 'progress') return;
    const data = decode(msg);
    if (data === undefined) return;
    const schemas: Record<string, { safeParse(data: unknown): { success: boolean; data?: { runId: string } } }> = {
      accepted: RunAcceptedEventSchema,
      planned: RunPlannedEventSchema,
      completed: RunCompletedEventSchema,
      control: RunControlEventSchema,
    };
    const schema = Object.hasOwn(schemas, event) ? schemas[event] : undefined;
    if (!schema) return;
    const parsed = schema.safeParse(data);
    if (!parsed.success || parsed.data?.runId !== runId) {
      logger.warn({ subject: msg.subject }, 'ignoring a malformed run event');
      return;
    }
    if (event === 'accepted') {
      book.onAccepted(RunAcceptedEventSchema.parse(data), msg.seq);
      traces.onAccepted(runId, msg);
    }
    else if (event === 'planned') book.onPlanned(RunPlannedEventSchema.parse(data));
    else if (event === 'completed') {
      book.onCompleted(RunCompletedEventSchema.parse(data), msg.seq);
      completing.delete(runId);
      traces.forget(runId);
    }
    else {
      const control = RunControlEventSchema.parse(data);
      if (book.onControl(control, msg.seq)) logger.info({ runId, action: control.action, reason: control.reason, requestedBy: control.requestedBy }, `run ${control.action}`);
    }
    schedule(runId);
  }

  function onOutcome(msg: JsMsg): void {
    const data = decode(msg);
    if (data === undefined) return;
    const parsed = TenantOutcomeSchema.safeParse(data);
    if (!parsed.success) {
      logger.warn({ subject: msg.subject }, 'ignoring a malformed outcome');
      return;
    }
    traces.onOutcome(parsed.data, msg);
    if (book.onOutcome(parsed.data)) schedule(parsed.data.runId);
  }

  function onLedger(msg: JsMsg): void {
    const runId = parseLedgerSubject(msg.subject);
    const data = runId !== undefined && isRunId(runId) ? decode(msg) : undefined;
    if (runId === undefined || data === undefined) return;
    const parsed = TaskLedgerEntrySchema.safeParse(data);
    if (!parsed.success) {
      logger.warn({ subject: msg.subject }, 'ignoring a malformed task ledger entry');
      return;
    }
    if (book.onLedger(runId, parsed.data, msg.seq, Math.floor(msg.info.timestampNanos / 1e6))) schedule(runId);
  }

  /** Called once the streams are replayed: from now on, what falls due is published. */
  async function goLive(): Promise<void> {
    live = true;
    for (const run of book.list()) if (!run.completed) dirty.add(run.runId);
    await flush();
    // Completed runs only need their final control state in the KV (in case the reporter that
    // completed them died first): checked in the background, ready does not wait for history.
    if (deps.controls) for (const run of book.list()) if (run.completed) schedule(run.runId);
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
      if (event) await publishIfLast(bus, subject, event, last?.seq ?? 0, { attempts: 2 });
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
      schedule(run.runId);
      if (run.control.state === 'paused') continue;
      republished += await releaser.reconcile(run, options.reconcileAfterMs, options.reconcileBatch);
    }
    return republished;
  }

  /** Settles outstanding effects (tests and shutdown). */
  async function idle(): Promise<void> {
    while (flushing) await flushing;
    await controlRejecter.idle();
  }

  return { book, onRunEvent, onOutcome, onLedger, goLive, publishProgress, reconcile, idle };
}

export type Reporter = ReturnType<typeof createReporter>;
