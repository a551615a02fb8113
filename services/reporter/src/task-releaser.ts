import { appendLedger, type Bus, decodeJson, publishOutcome, publishReliably, PublishWindow } from '@sluice/bus';
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
    cause: 'lost' | 'parked',
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

  /**
   * Looks up, in the work queue, queued tasks that have shown no outcome for `afterMs` (at most
   * `limit` per run and sweep). A task still there is waiting or being worked on: it is left
   * alone and looked at again after another `afterMs`. A task that is gone without an outcome —
   * still, `graceMs` after it was first found gone (an outcome may be on its way: it is published
   * before the task is acknowledged) — was lost, or its outcome was: it is published again.
   * Returns how many were.
   */
  async function reconcile(
    run: RunState,
    afterMs: number,
    limit: number,
    graceMs = Math.min(afterMs, 5_000),
  ): Promise<number> {
    let republished = 0;
    for (const tenant of run.tenants.overdue(now(), afterMs, limit)) {
      if (tenant.copy.kind === 'skipping') {
        const decision = gateDecision(run.control, {});
        if (decision.action === 'skip') await publishSkipped(run.runId, tenant, decision.code, decision.reason);
        run.tenants.markAlive(tenant.tenantId, now());
        continue;
      }
      if (tenant.copy.kind !== 'queued') continue;
      const inQueue = await bus.jsm.streams.getMessage(STREAMS.tasks.name, { seq: tenant.copy.taskSeq });
      // Settled, parked or published again while we looked: nothing to do.
      if (run.tenants.get(tenant.tenantId) !== tenant) continue;
      if (inQueue) {
        run.tenants.markAlive(tenant.tenantId, now());
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
        { runId: run.runId, tenantId: tenant.tenantId, host: tenant.host, lostSeq: tenant.copy.taskSeq },
        'task lost without an outcome; published again',
      );
    }
    return republished;
  }

  return { releaseParked, reconcile, publishSkipped };
}

export type TaskReleaser = ReturnType<typeof createTaskReleaser>;
