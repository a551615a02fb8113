import { type Bus, decodeJson, followStream, type JsMsg, publishOutcome, type StreamFollower } from '@sluice/bus';
import { ADVISORY_STREAM, failedOutcome, STREAMS, TenantTaskSchema } from '@sluice/contracts';
import type { Logger } from '@sluice/telemetry';

import type { RunBook } from './run-book.js';
import { REPORTER_ID } from './task-releaser.js';

/** The fields of a JetStream MAX_DELIVERIES advisory that matter here. */
interface MaxDeliveriesAdvisory {
  stream: string;
  consumer: string;
  stream_seq: number;
  deliveries: number;
}

/**
 * Fails the tenant of a task that ran out of deliveries without an outcome: its executor died
 * every time it handled it (an executor that lives publishes the outcome itself on its last
 * attempt). The server stops delivering such a task and keeps it in SLUICE_TASKS, where it can
 * be read (`nats stream get SLUICE_TASKS <seq>`); its advisory is kept in SLUICE_ADVISORIES, so
 * a reporter that was down meanwhile learns of it at start. The outcome carries the executor's
 * message id (`<runId>:<tenantId>`), so an outcome that did get out is never doubled.
 */
export async function followDeadTasks(deps: { bus: Bus; logger: Logger; book: RunBook }): Promise<StreamFollower> {
  const { bus, logger, book } = deps;
  return followStream(bus, ADVISORY_STREAM.name, logger, async (msg: JsMsg) => {
    const advisory = decodeJson(msg.data) as Partial<MaxDeliveriesAdvisory>;
    if (advisory.stream !== STREAMS.tasks.name || typeof advisory.stream_seq !== 'number') return;
    const stored = await bus.jsm.streams.getMessage(STREAMS.tasks.name, { seq: advisory.stream_seq }).catch(() => null);
    // Gone: acknowledged after all (a late ack), or removed by hand.
    if (!stored) return;
    const parsed = TenantTaskSchema.safeParse(stored.json());
    if (!parsed.success) return;
    const task = parsed.data;
    const run = book.get(task.runId);
    const tracked = run?.tenants.get(task.tenantId);
    // Only the tenant's current copy, of a run still going: a copy published again since is alive.
    if (
      !run ||
      run.completed ||
      !tracked ||
      tracked.copy.kind !== 'queued' ||
      tracked.copy.taskSeq !== advisory.stream_seq
    )
      return;
    const deliveries = advisory.deliveries ?? 0;
    const outcome = failedOutcome(
      { runId: task.runId, tenantId: task.tenantId, host: task.host, executorId: REPORTER_ID, attempts: deliveries },
      {
        code: 'max_deliveries',
        message: `the task was delivered ${deliveries} times and no executor finished it (each one stopped while handling it); it is kept in ${STREAMS.tasks.name} at sequence ${advisory.stream_seq} for inspection`,
        transient: false,
      },
    );
    await publishOutcome(bus, outcome);
    logger.warn(
      {
        runId: task.runId,
        tenantId: task.tenantId,
        deliveries,
        taskSeq: advisory.stream_seq,
        consumer: advisory.consumer,
      },
      'task ran out of deliveries; tenant failed',
    );
  });
}
