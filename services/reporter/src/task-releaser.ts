import {
  appendLedger,
  type Bus,
  deadTaskSeqs,
  decodeJson,
  hostConsumerView,
  publishOutcome,
  publishReliably,
  PublishWindow,
  stepDownHostConsumer,
} from '@sluice/bus';
import {
  gateDecision,
  LEDGER_STREAM,
  plannedTasksOf,
  republishedTaskMsgId,
  type SkipCode,
  skippedOutcome,
  STREAMS,
  type TaskLedgerEntry,
  TaskLedgerEntrySchema,
  taskSubject,
  type TenantTask,
} from '@sluice/contracts';
import { type ConsumerView, queuedTaskVerdict } from '@sluice/core';
import type { Logger } from '@sluice/telemetry';

import type { RunBook } from './run-book.js';
import type { RunState } from './run-state.js';
import type { TrackedTenant } from './tenant-tracker.js';

export interface TaskReleaserDeps {
  bus: Bus;
  logger: Logger;
  book: RunBook;
  now: () => number;
}

/** The `executorId` of outcomes the reporter publishes itself. */
export const REPORTER_ID = 'sluice-reporter';

/** Publishes in flight at once when many parked tasks are released (a resume, a promotion). */
const RELEASE_WINDOW = 256;

/**
 * Puts tasks back to work: parked ones once their run may go on (or `skipped` outcomes once it
 * is cancelled), lost ones after a look in the work queue. Every task published again gets a
 * fresh message id derived from the ledger entry it replaces, `<runId>:<tenantId>:x<seq>`: new
 * to the work queue's duplicate window, and the same on every replica, so two reporters doing
 * this at once publish it once.
 */
export function createTaskReleaser(deps: TaskReleaserDeps) {
  const { bus, logger, book, now } = deps;

  async function republish(
    run: RunState,
    tenant: TrackedTenant,
    task: TenantTask,
    cause: 'lost' | 'parked' | 'stranded',
  ): Promise<void> {
    if (tenant.copy.kind === 'skipping') return;
    const supersedes = tenant.copy.entrySeq;
    const ack = await publishReliably(bus, taskSubject(task.host), task, {
      msgId: republishedTaskMsgId(run.runId, task.tenantId, supersedes),
    });
    const entry: TaskLedgerEntry = {
      kind: 'republished',
      tenantId: task.tenantId,
      taskSeq: ack.seq,
      supersedes,
      cause,
      at: new Date(now()).toISOString(),
    };
    const ledgerAck = await appendLedger(bus, run.runId, entry);
    book.onLedger(run.runId, entry, ledgerAck.seq, now());
  }

  async function publishSkipped(
    runId: string,
    tenant: Pick<TrackedTenant, 'tenantId' | 'host'>,
    code: SkipCode,
    reason: string,
  ): Promise<void> {
    const source = {
      runId,
      tenantId: tenant.tenantId,
      host: tenant.host,
      executorId: REPORTER_ID,
      attempts: 0,
      finishedAt: new Date(now()).toISOString(),
    };
    // Under the tenant's outcome id, as the executors publish: whichever comes first counts.
    await publishOutcome(bus, skippedOutcome(source, { code, message: reason }));
  }

  /** Releases the run's parked tasks that may now start, and skips those its state says to skip. */
  async function releaseParked(run: RunState): Promise<void> {
    if (run.tenants.parkedCount === 0) return;
    const parked = run.tenants.parked();
    const window = new PublishWindow(RELEASE_WINDOW);
    let released = 0;
    let skipped = 0;
    for (const tenant of parked) {
      const decision = gateDecision(run.control, tenant.copy.task);
      if (decision.action === 'park') continue;
      if (decision.action === 'skip') {
        skipped += 1;
        run.tenants.markSkipping(tenant.tenantId, now());
        await window.submit(() => publishSkipped(run.runId, tenant, decision.code, decision.reason));
      } else {
        released += 1;
        await window.submit(() => republish(run, tenant, tenant.copy.task, 'parked'));
      }
    }
    await window.drain();
    if (released + skipped > 0) logger.info({ runId: run.runId, released, skipped }, 'parked tasks settled');
  }

  /** The tenant's task from the ledger entry that carries it (a `planned`, `plannedBatch` or `parked` entry). */
  async function loadTask(runId: string, payloadSeq: number, tenantId: string): Promise<TenantTask | undefined> {
    const stored = await bus.jsm.streams.getMessage(LEDGER_STREAM.name, { seq: payloadSeq });
    if (!stored) return undefined;
    const parsed = TaskLedgerEntrySchema.safeParse(decodeJson(stored.data));
    if (!parsed.success) return undefined;
    const entry = parsed.data;
    const task =
      entry.kind === 'parked' ? entry.task : plannedTasksOf(entry).find((p) => p.task.tenantId === tenantId)?.task;
    return task?.runId === runId && task.tenantId === tenantId ? task : undefined;
  }

  /** When each host consumer's leader was last asked to step down (at most one ask per `afterMs`). */
  const steppedDownAt = new Map<string, number>();

  /**
   * A task still in the work queue that its host consumer will not deliver (see
   * `queuedTaskVerdict`): a stranded copy is published again and removed; a consumer whose leader
   * does not see the queue is asked to step down (the task is delivered once another replica
   * leads). True when the task was published again.
   */
  async function unstick(
    run: RunState,
    tenant: TrackedTenant,
    taskSeq: number,
    consumer: ConsumerView,
    afterMs: number,
    deadOf: (host: string) => Promise<Set<number> | undefined>,
  ): Promise<boolean> {
    const verdict = queuedTaskVerdict(taskSeq, consumer);
    if (verdict === 'leaderBehind') {
      const last = steppedDownAt.get(tenant.host);
      if (last !== undefined && now() - last < Math.max(afterMs, 5_000)) return false;
      steppedDownAt.set(tenant.host, now());
      const stepped = await stepDownHostConsumer(bus.nc, tenant.host).catch(() => false);
      logger.warn(
        { runId: run.runId, host: tenant.host, taskSeq, consumer, stepped },
        'host consumer reports nothing pending while tasks wait in the queue; asked its leader to step down',
      );
      return false;
    }
    if (verdict !== 'stranded') return false;
    // A task that ran out of deliveries sits below the floor too: it is the dead-task path's.
    // Advisories that cannot be read: whether it is dead is unknown, so it is left as it is.
    const deadSeqs = await deadOf(tenant.host);
    if (!deadSeqs || deadSeqs.has(taskSeq)) return false;
    const task = await loadTask(run.runId, tenant.payloadSeq, tenant.tenantId);
    if (!task) return false;
    await republish(run, tenant, task, 'stranded');
    // The stranded copy would run the tenant twice if a new consumer ever delivered it.
    await bus.jsm.streams.deleteMessage(STREAMS.tasks.name, taskSeq, false).catch(() => undefined);
    logger.warn(
      {
        runId: run.runId,
        tenantId: tenant.tenantId,
        host: tenant.host,
        strandedSeq: taskSeq,
        ackFloor: consumer.ackFloorSeq,
      },
      "task queued below its host consumer's ack floor (never to be delivered); published again",
    );
    return true;
  }

  /**
   * Looks up, in the work queue, queued tasks that have shown no outcome for `afterMs` (at most
   * `limit` per run and sweep). A task still there is waiting or being worked on — unless its
   * host consumer's state says it will never be delivered (`unstick`). A task that is gone
   * without an outcome — still, `graceMs` after it was first found gone (an outcome may be on its
   * way: it is published before the task is acknowledged) — was lost, or its outcome was: it is
   * published again. Returns how many were.
   */
  async function reconcile(
    run: RunState,
    afterMs: number,
    limit: number,
    graceMs = Math.min(afterMs, 5_000),
  ): Promise<number> {
    let republished = 0;
    /** Each host consumer's view, asked once per sweep. */
    const consumers = new Map<string, Promise<ConsumerView | undefined>>();
    const consumerOf = (host: string) => {
      let view = consumers.get(host);
      if (!view) consumers.set(host, (view = hostConsumerView(bus.jsm, host).catch(() => undefined)));
      return view;
    };
    const dead = new Map<string, Promise<Set<number> | undefined>>();
    const deadOf = (host: string): Promise<Set<number> | undefined> => {
      const known = dead.get(host);
      if (known) return known;
      const seqs = deadTaskSeqs(bus, host).catch(() => undefined);
      dead.set(host, seqs);
      return seqs;
    };
    for (const tenant of run.tenants.overdue(now(), afterMs, limit)) {
      if (tenant.copy.kind === 'skipping') {
        const decision = gateDecision(run.control, {});
        if (decision.action === 'skip') await publishSkipped(run.runId, tenant, decision.code, decision.reason);
        run.tenants.markAlive(tenant.tenantId, now());
        continue;
      }
      if (tenant.copy.kind !== 'queued') continue;
      const taskSeq = tenant.copy.taskSeq;
      const inQueue = await bus.jsm.streams.getMessage(STREAMS.tasks.name, { seq: taskSeq });
      // Settled, parked or published again while we looked: nothing to do.
      if (run.tenants.get(tenant.tenantId) !== tenant) continue;
      if (inQueue) {
        const consumer = await consumerOf(tenant.host);
        if (run.tenants.get(tenant.tenantId) !== tenant) continue;
        if (consumer && (await unstick(run, tenant, taskSeq, consumer, afterMs, deadOf))) republished += 1;
        else run.tenants.markAlive(tenant.tenantId, now());
        continue;
      }
      if (now() - run.tenants.markMissing(tenant.tenantId, now()) < graceMs) continue;
      const task = await loadTask(run.runId, tenant.payloadSeq, tenant.tenantId);
      if (!task) {
        logger.warn(
          { runId: run.runId, tenantId: tenant.tenantId, payloadSeq: tenant.payloadSeq },
          'lost task cannot be published again: its ledger entry is gone',
        );
        run.tenants.markAlive(tenant.tenantId, now());
        continue;
      }
      await republish(run, tenant, task, 'lost');
      republished += 1;
      logger.warn(
        { runId: run.runId, tenantId: tenant.tenantId, host: tenant.host, lostSeq: taskSeq },
        'task lost without an outcome; published again',
      );
    }
    return republished;
  }

  return { releaseParked, reconcile, publishSkipped };
}

export type TaskReleaser = ReturnType<typeof createTaskReleaser>;
